/*
 * context.c - the context agent and its device registry (see context.h).
 *
 * Input is checked before anything changes: a message with a wrong type
 * anywhere is refused whole (an ERROR message names the field), so the
 * registry never holds half an update. The registry is an array in
 * announcement order; ids are looked up linearly, which is fine for the
 * hundreds of devices a home has (a hash index can come when it matters).
 */
#include "agents/context/context.h"

#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/id.h"
#include "platform/json.h"
#include "platform/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

struct hearth_context {
	struct hearth_device **devs;
	int n, cap, max;
};

int
hearth_context_new(int max_devices, hearth_context **out)
{
	hearth_context *c = hearth_calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->max = max_devices > 0 ? max_devices : 1;
	*out = c;
	return 0;
}

static void
device_free(struct hearth_device *d)
{
	if (!d)
		return;
	hearth_free(d->name);
	hearth_free(d->room);
	hearth_free(d->room_key);
	hearth_free(d->kind);
	hearth_free(d->uri);
	cJSON_Delete(d->address);
	cJSON_Delete(d->state);
	hearth_free(d);
}

void
hearth_context_free(hearth_context *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->n; i++)
		device_free(c->devs[i]);
	hearth_free(c->devs);
	hearth_free(c);
}

void
hearth_room_key(const char *room, char *out, size_t len)
{
	size_t i;

	for (i = 0; room[i] && i + 1 < len; i++) {
		unsigned char ch = (unsigned char)room[i];

		out[i] = (ch == '-' || ch == ' ') ? '_' : (char)tolower(ch);
	}
	out[i] = '\0';
}

static int
find(const hearth_context *c, const char *id)
{
	for (int i = 0; i < c->n; i++)
		if (!strcmp(c->devs[i]->id, id))
			return i;
	return -1;
}

static struct hearth_device *
get_or_add(hearth_context *c, const char *id, const hearth_outbox *out, const char *topic)
{
	struct hearth_device *d;
	int i = find(c, id);

	if (i >= 0)
		return c->devs[i];
	if (c->n >= c->max) {
		char detail[128];

		snprintf(detail, sizeof(detail),
		         "the registry holds %d devices, its limit; %s ignored", c->max, id);
		hearth_post_error(out, "too_many_devices", topic, detail);
		return NULL;
	}
	if (c->n == c->cap) {
		int ncap = c->cap ? c->cap * 2 : 16;
		struct hearth_device **nd = hearth_realloc(c->devs, (size_t)ncap * sizeof(*nd));

		if (!nd)
			return NULL;
		c->devs = nd;
		c->cap = ncap;
	}
	d = hearth_calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	snprintf(d->id, sizeof(d->id), "%s", id);
	snprintf(d->transport, sizeof(d->transport), "mqtt");
	d->online = -1;
	c->devs[c->n++] = d;
	return d;
}

static void
remove_device(hearth_context *c, int i)
{
	device_free(c->devs[i]);
	memmove(&c->devs[i], &c->devs[i + 1], (size_t)(c->n - i - 1) * sizeof(c->devs[0]));
	c->n--;
}

static void
post_changed(const hearth_outbox *out, const struct hearth_device *d)
{
	hearth_msg m = {.type = HEARTH_MSG_DEVICE_CHANGED, .flag = d->online != 0};

	snprintf(m.id, sizeof(m.id), "%s", d->id);
	hearth_post(out, &m);
}

static void
post_save(const hearth_outbox *out, const char *id, const struct hearth_device *d)
{
	hearth_msg m = {.type = HEARTH_MSG_DEVICE_SAVE};

	snprintf(m.id, sizeof(m.id), "%s", id);
	m.body = d ? hearth_device_json(d) : NULL;
	hearth_post(out, &m);
}

/* ==== meta ==== */

struct meta {
	const char *name, *room, *kind, *transport, *uri;
	const cJSON *address;
	bool optimistic;
	hearth_capset caps;
};

static int
opt_str(const cJSON *o, const char *key, size_t max, const char **out, char *why, size_t wl)
{
	int rc = hearth_json_get_str(o, key, out);

	if (rc == -ENOENT) {
		*out = NULL;
		return 0;
	}
	if (rc) {
		snprintf(why, wl, "%s must be a string", key);
		return rc;
	}
	if (strlen(*out) == 0 || strlen(*out) > max) {
		snprintf(why, wl, "%s must be 1 to %zu characters", key, max);
		return HEARTH_E_INVALID;
	}
	return 0;
}

static int
parse_meta(const cJSON *b, struct meta *m, char *why, size_t wl)
{
	const cJSON *caps, *cap;
	int rc;

	memset(m, 0, sizeof(*m));
	if (!cJSON_IsObject(b)) {
		snprintf(why, wl, "meta must be a JSON object, not %s", hearth_json_type_name(b));
		return HEARTH_E_INVALID;
	}
	if ((rc = opt_str(b, "name", 128, &m->name, why, wl)) ||
	    (rc = opt_str(b, "room", 64, &m->room, why, wl)) ||
	    (rc = opt_str(b, "kind", 32, &m->kind, why, wl)) ||
	    (rc = opt_str(b, "transport", 7, &m->transport, why, wl)) ||
	    (rc = opt_str(b, "uri", 512, &m->uri, why, wl)))
		return rc;
	if (!m->transport)
		m->transport = "mqtt";
	if (strcmp(m->transport, "mqtt") && strcmp(m->transport, "coap") &&
	    strcmp(m->transport, "z2m") && strcmp(m->transport, "ha")) {
		snprintf(why, wl, "transport must be \"mqtt\", \"coap\", \"z2m\" or \"ha\"");
		return HEARTH_E_INVALID;
	}
	m->address = cJSON_GetObjectItemCaseSensitive(b, "address");
	if (m->address && !cJSON_IsObject(m->address)) {
		snprintf(why, wl, "address must be an object");
		return HEARTH_E_INVALID;
	}
	if (!strcmp(m->transport, "coap") &&
	    (!m->uri || (strncmp(m->uri, "coap://", 7) && strncmp(m->uri, "coaps://", 8)))) {
		snprintf(why, wl, "a coap device needs \"uri\": \"coap://host/path\"");
		return HEARTH_E_INVALID;
	}
	rc = hearth_json_get_bool(b, "optimistic", &m->optimistic);
	if (rc && rc != -ENOENT) {
		snprintf(why, wl, "optimistic must be true or false");
		return rc;
	}
	caps = cJSON_GetObjectItemCaseSensitive(b, "capabilities");
	if (!cJSON_IsArray(caps)) {
		snprintf(why, wl, "capabilities must be an array of capability names");
		return HEARTH_E_INVALID;
	}
	cJSON_ArrayForEach(cap, caps)
	{
		int i;

		if (!cJSON_IsString(cap)) {
			snprintf(why, wl, "capabilities must hold strings");
			return HEARTH_E_INVALID;
		}
		i = hearth_capability_find(cap->valuestring);
		if (i >= 0)
			m->caps |= 1u << i;
		/* Unknown capabilities (a newer device) are ignored, like unknown fields. */
	}
	return 0;
}

static int
set_str(char **dst, const char *src)
{
	char *s = NULL;

	if (src && !(s = hearth_strdup(src)))
		return -ENOMEM;
	hearth_free(*dst);
	*dst = s;
	return 0;
}

static int
set_meta(struct hearth_device *d, const struct meta *m)
{
	char key[72];

	if (set_str(&d->name, m->name) || set_str(&d->room, m->room) ||
	    set_str(&d->kind, m->kind) || set_str(&d->uri, m->uri))
		return -ENOMEM;
	hearth_free(d->room_key);
	d->room_key = NULL;
	if (m->room) {
		hearth_room_key(m->room, key, sizeof(key));
		if (!(d->room_key = hearth_strdup(key)))
			return -ENOMEM;
	}
	snprintf(d->transport, sizeof(d->transport), "%s", m->transport);
	cJSON_Delete(d->address);
	d->address = m->address ? cJSON_Duplicate(m->address, 1) : NULL;
	d->caps = m->caps;
	d->meta_optimistic = m->optimistic;
	d->has_meta = true;
	return 0;
}

int
hearth_context_restore(hearth_context *c, const cJSON *rec)
{
	static const hearth_outbox none = {0};
	struct hearth_device *d;
	const char *id;
	const cJSON *st;
	struct meta m;
	char why[160];
	int rc;

	if (hearth_json_get_str(rec, "id", &id) || !hearth_id_valid_str(id))
		return HEARTH_E_INVALID;
	if ((rc = parse_meta(rec, &m, why, sizeof(why))))
		return rc;
	if (find(c, id) < 0 && c->n >= c->max)
		return HEARTH_E_FULL;
	d = get_or_add(c, id, &none, NULL);
	if (!d)
		return -ENOMEM;
	if ((rc = set_meta(d, &m)))
		return rc;
	/* The last known state (so a step is not skipped or confirmed blindly);
	 * availability stays unknown until the device speaks again. */
	st = cJSON_GetObjectItemCaseSensitive(rec, "state");
	if (cJSON_IsObject(st) && !d->state)
		d->state = cJSON_Duplicate(st, 1);
	return 0;
}

static void
on_meta(hearth_context *c, hearth_msg *msg, const hearth_now *now, const hearth_outbox *out)
{
	char topic[128], why[160];
	struct hearth_device *d;
	struct meta m;
	int i;

	snprintf(topic, sizeof(topic), "device/%s/meta", msg->id);
	if (!msg->body) {
		/* An empty retained meta: the device was removed. */
		i = find(c, msg->id);
		if (i >= 0) {
			LOG_INFO("context", "device %s removed", msg->id);
			remove_device(c, i);
			post_save(out, msg->id, NULL);
		}
		return;
	}
	if (parse_meta(msg->body, &m, why, sizeof(why))) {
		hearth_post_error(out, "bad_request", topic, why);
		return;
	}
	d = get_or_add(c, msg->id, out, topic);
	if (!d)
		return;
	if (set_meta(d, &m)) {
		hearth_post_error(out, "internal", topic, "out of memory");
		return;
	}
	d->last_seen = now->wall_ms;
	LOG_DEBUG("context", "device %s announced (room %s)", d->id, d->room ? d->room : "-");
	post_save(out, d->id, d);
}

/* ==== state and availability ==== */

static void
on_state(hearth_context *c, hearth_msg *msg, const hearth_now *now, const hearth_outbox *out)
{
	char topic[128], why[160];
	struct hearth_device *d;
	const cJSON *p;

	if (!msg->body)
		return; /* a cleared retained state says nothing */
	snprintf(topic, sizeof(topic), "device/%s/state", msg->id);
	if (!cJSON_IsObject(msg->body)) {
		snprintf(why, sizeof(why), "state must be a JSON object, not %s",
		         hearth_json_type_name(msg->body));
		hearth_post_error(out, "bad_request", topic, why);
		return;
	}
	cJSON_ArrayForEach(p, msg->body)
	{
		if (hearth_capability_check_value(p->string, p, why, sizeof(why))) {
			hearth_post_error(out, "bad_request", topic, why);
			return;
		}
	}
	d = get_or_add(c, msg->id, out, topic);
	if (!d)
		return;
	if (!d->state) {
		d->state = msg->body;
		msg->body = NULL;
	} else {
		cJSON *q = msg->body->child;

		while (q) {
			cJSON *next = q->next;

			cJSON *old;

			cJSON_DetachItemViaPointer(msg->body, q);
			/* Swap the value in place: q keeps its key, the old item goes. */
			old = cJSON_GetObjectItemCaseSensitive(d->state, q->string);
			if (old)
				cJSON_ReplaceItemViaPointer(d->state, old, q);
			else
				cJSON_AddItemToObject(d->state, q->string, q);
			q = next;
		}
	}
	d->last_seen = now->wall_ms;
	if (d->online < 0)
		d->online = 1; /* a device that reports is alive until it says otherwise */
	post_changed(out, d);
	if (d->has_meta)
		post_save(out, d->id, d); /* the last known state survives a restart */
}

static void
on_avail(hearth_context *c, hearth_msg *msg, const hearth_now *now, const hearth_outbox *out)
{
	char topic[128];
	struct hearth_device *d;
	int online = msg->flag ? 1 : 0;

	snprintf(topic, sizeof(topic), "device/%s/availability", msg->id);
	d = get_or_add(c, msg->id, out, topic);
	if (!d)
		return;
	d->last_seen = now->wall_ms;
	if (d->online == online)
		return;
	d->online = online;
	LOG_INFO("context", "device %s is %s", d->id, online ? "online" : "offline");
	post_changed(out, d);
	if (d->has_meta)
		post_save(out, d->id, d);
}

void
hearth_context_handle(hearth_context *c, hearth_msg *m, const hearth_now *now,
                      const hearth_outbox *out)
{
	switch (m->type) {
	case HEARTH_MSG_DEVICE_META:
		on_meta(c, m, now, out);
		break;
	case HEARTH_MSG_DEVICE_STATE:
		on_state(c, m, now, out);
		break;
	case HEARTH_MSG_DEVICE_AVAIL:
		on_avail(c, m, now, out);
		break;
	default:
		break;
	}
}

/* ==== Queries ==== */

const struct hearth_device *
hearth_context_device(const hearth_context *c, const char *id)
{
	int i = find(c, id);

	return i >= 0 ? c->devs[i] : NULL;
}

int
hearth_context_count(const hearth_context *c)
{
	return c->n;
}

const struct hearth_device *
hearth_context_at(const hearth_context *c, int i)
{
	return i >= 0 && i < c->n ? c->devs[i] : NULL;
}

int
hearth_context_online_count(const hearth_context *c)
{
	int n = 0;

	for (int i = 0; i < c->n; i++)
		n += c->devs[i]->online == 1;
	return n;
}

bool
hearth_context_room_known(const hearth_context *c, const char *room)
{
	char key[72];

	hearth_room_key(room, key, sizeof(key));
	for (int i = 0; i < c->n; i++)
		if (c->devs[i]->room_key && !strcmp(c->devs[i]->room_key, key))
			return true;
	return false;
}

int
hearth_context_select(const hearth_context *c, const char *room, int cap, const char *kind,
                      const struct hearth_device **out, int max)
{
	char key[72];
	int n = 0;

	if (room)
		hearth_room_key(room, key, sizeof(key));
	for (int i = 0; i < c->n; i++) {
		const struct hearth_device *d = c->devs[i];

		if (!d->has_meta || !(d->caps & (1u << cap)))
			continue;
		if (room && (!d->room_key || strcmp(d->room_key, key)))
			continue;
		if (kind && (!d->kind || strcmp(d->kind, kind)))
			continue;
		if (n < max)
			out[n] = d;
		n++;
	}
	return n;
}

bool
hearth_device_optimistic(const struct hearth_device *d)
{
	return d->meta_optimistic || !d->state;
}

cJSON *
hearth_device_json(const struct hearth_device *d)
{
	cJSON *o = cJSON_CreateObject(), *caps;

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "id", d->id);
	if (d->name)
		cJSON_AddStringToObject(o, "name", d->name);
	if (d->room)
		cJSON_AddStringToObject(o, "room", d->room);
	if (d->kind)
		cJSON_AddStringToObject(o, "kind", d->kind);
	caps = cJSON_AddArrayToObject(o, "capabilities");
	for (int i = 0; caps && i < hearth_capability_count(); i++)
		if (d->caps & (1u << i))
			cJSON_AddItemToArray(caps,
			                     cJSON_CreateString(hearth_capability_at(i)->name));
	cJSON_AddStringToObject(o, "transport", d->transport);
	if (d->uri)
		cJSON_AddStringToObject(o, "uri", d->uri);
	if (d->address)
		cJSON_AddItemToObject(o, "address", cJSON_Duplicate(d->address, 1));
	if (d->meta_optimistic)
		cJSON_AddBoolToObject(o, "optimistic", true);
	if (d->online < 0)
		cJSON_AddNullToObject(o, "online");
	else
		cJSON_AddBoolToObject(o, "online", d->online == 1);
	if (d->state)
		cJSON_AddItemToObject(o, "state", cJSON_Duplicate(d->state, 1));
	cJSON_AddNumberToObject(o, "last_seen", (double)d->last_seen);
	return o;
}
