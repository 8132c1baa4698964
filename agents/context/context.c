/*
 * context.c - the context agent, its device registry and what it fuses from
 * it (see context.h; the fusion constants are in fusion.c).
 *
 * Input is checked before anything changes: a message with a wrong type
 * anywhere is refused whole (an ERROR message names the field), so the
 * registry never holds half an update. The registry owns every device: an
 * array in announcement order (what listings show), a hash index on the id,
 * and interned rooms, each with its devices per capability, plus the same
 * per-capability lists for the whole home; every list is kept in creation
 * order, so a select answers in announcement order without sorting. A
 * change of meta re-files the device; removal is the only O(n) step. Beside
 * each device it keeps when every property was last reported and whether
 * that was before an outage, and per room the time of the latest positive
 * occupancy event. It never reads a clock: time is the hearth_now handed in.
 */
#include "agents/context/context.h"

#include "agents/context/drift.h"
#include "agents/context/flags.h"
#include "agents/context/fusion.h"

#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/id.h"
#include "platform/json.h"
#include "platform/log.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* A device as the registry keeps it: the public part first, so a
 * struct hearth_device * handed out is a struct devrec *. */
struct devrec {
	struct hearth_device pub;
	uint64_t seq;          /* creation order: the order of every list */
	struct room *room;     /* its interned room while indexed, or NULL */
	hearth_capset indexed; /* the capability lists it is in */
	struct prop *props;    /* freshness of every property in pub.state */
	int nprops, capprops;
	bool in_presence; /* in the registry's list of presence-flag devices */
};

/* When a property was last reported; stale: before the device went offline. */
struct prop {
	char *name;
	int64_t ts;
	bool stale;
};

/* Devices in creation order (sorted by seq). */
struct devlist {
	struct devrec **v;
	int n, cap;
};

#define NCAPBITS 32

struct room {
	char key[72]; /* hearth_room_key of its name */
	struct devlist all;
	struct devlist bycap[NCAPBITS];
	int64_t last_event; /* wall ms of its latest positive occupancy event, 0: none */
	bool occupied;      /* as the flags last saw it (recomputed on its reports and each tick) */
};

/* An open-addressing hash table (linear probing) of pointers to records
 * whose key is the NUL-terminated string at key_off inside them. */
struct ptab {
	void **slot;
	size_t mask, n, key_off;
};

struct hearth_context {
	struct devrec **devs; /* announcement order */
	int n, cap, max;
	uint64_t next_seq;
	struct ptab by_id;              /* struct devrec, by pub.id */
	struct ptab rooms;              /* struct room, by key */
	struct devlist bycap[NCAPBITS]; /* announced devices per capability, any room */
	struct devlist presence;        /* devices that reported a "presence" flag */
	int64_t home_event;             /* wall ms of the latest positive event anywhere */
	int cap_motion, cap_occupancy, cap_contact, cap_media;
	hearth_flags *flags;     /* derived flags (flags.h) */
	hearth_drift *drift;     /* drift sentinel over sensor readings (drift.h) */
	hearth_privacy *privacy; /* who may read which data class (privacy.h) */
};

static struct devrec *
rec_of(const struct hearth_device *d)
{
	return (struct devrec *)d;
}

/* ==== Hash tables ==== */

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

static const char *
ptab_key(const struct ptab *t, const void *p)
{
	return (const char *)p + t->key_off;
}

static void *
ptab_get(const struct ptab *t, const char *key)
{
	size_t i;

	if (!t->slot)
		return NULL;
	for (i = hash_str(key) & t->mask; t->slot[i]; i = (i + 1) & t->mask)
		if (!strcmp(ptab_key(t, t->slot[i]), key))
			return t->slot[i];
	return NULL;
}

static void
ptab_put_slot(struct ptab *t, void *p)
{
	size_t i = hash_str(ptab_key(t, p)) & t->mask;

	while (t->slot[i])
		i = (i + 1) & t->mask;
	t->slot[i] = p;
}

/* Add p (its key not yet in t). Keeps the load at most 1/2. */
static int
ptab_add(struct ptab *t, void *p)
{
	if (!t->slot || (t->n + 1) * 2 > t->mask + 1) {
		size_t size = t->slot ? (t->mask + 1) * 2 : 64;
		void **old = t->slot, **ns = hearth_calloc(size, sizeof(*ns));
		size_t oldsize = old ? t->mask + 1 : 0;

		if (!ns)
			return -ENOMEM;
		t->slot = ns;
		t->mask = size - 1;
		for (size_t i = 0; i < oldsize; i++)
			if (old[i])
				ptab_put_slot(t, old[i]);
		hearth_free(old);
	}
	ptab_put_slot(t, p);
	t->n++;
	return 0;
}

/* Remove p if it is there (backward-shift deletion: no tombstones). */
static void
ptab_del(struct ptab *t, const void *p)
{
	size_t i, j;

	if (!t->slot)
		return;
	for (i = hash_str(ptab_key(t, p)) & t->mask; t->slot[i] != p; i = (i + 1) & t->mask)
		if (!t->slot[i])
			return;
	t->slot[i] = NULL;
	t->n--;
	for (j = (i + 1) & t->mask; t->slot[j]; j = (j + 1) & t->mask) {
		size_t home = hash_str(ptab_key(t, t->slot[j])) & t->mask;

		/* Move slot j into the hole at i unless its home lies in (i, j]. */
		if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
			t->slot[i] = t->slot[j];
			t->slot[j] = NULL;
			i = j;
		}
	}
}

/* ==== Device lists (sorted by creation) ==== */

static int
devlist_pos(const struct devlist *l, uint64_t seq)
{
	int lo = 0, hi = l->n;

	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (l->v[mid]->seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
devlist_add(struct devlist *l, struct devrec *r)
{
	int i = devlist_pos(l, r->seq);

	if (i < l->n && l->v[i] == r)
		return 0;
	if (l->n == l->cap) {
		int ncap = l->cap ? l->cap * 2 : 8;
		struct devrec **nv = hearth_realloc(l->v, (size_t)ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	memmove(&l->v[i + 1], &l->v[i], (size_t)(l->n - i) * sizeof(l->v[0]));
	l->v[i] = r;
	l->n++;
	return 0;
}

static void
devlist_del(struct devlist *l, const struct devrec *r)
{
	int i = devlist_pos(l, r->seq);

	if (i >= l->n || l->v[i] != r)
		return;
	memmove(&l->v[i], &l->v[i + 1], (size_t)(l->n - i - 1) * sizeof(l->v[0]));
	l->n--;
}

/* ==== Rooms and the capability index ==== */

static void
room_free(struct room *rm)
{
	hearth_free(rm->all.v);
	for (int k = 0; k < NCAPBITS; k++)
		hearth_free(rm->bycap[k].v);
	hearth_free(rm);
}

static struct room *
room_find(const hearth_context *c, const char *room)
{
	char key[72];

	hearth_room_key(room, key, sizeof(key));
	return ptab_get(&c->rooms, key);
}

/* Take d out of every list it is in; a room left empty goes. */
static void
unindex(hearth_context *c, struct devrec *r)
{
	struct room *rm = r->room;

	for (int k = 0; k < NCAPBITS; k++) {
		if (!(r->indexed & (1u << k)))
			continue;
		devlist_del(&c->bycap[k], r);
		if (rm)
			devlist_del(&rm->bycap[k], r);
	}
	r->indexed = 0;
	if (rm) {
		devlist_del(&rm->all, r);
		if (!rm->all.n) {
			ptab_del(&c->rooms, rm);
			room_free(rm);
		}
		r->room = NULL;
	}
}

/* List an announced device under its room and capabilities. */
static int
index_device(hearth_context *c, struct devrec *r)
{
	const struct hearth_device *d = &r->pub;
	struct room *rm = NULL;

	if (!d->has_meta)
		return 0;
	if (d->room_key) {
		rm = ptab_get(&c->rooms, d->room_key);
		if (!rm) {
			if (!(rm = hearth_calloc(1, sizeof(*rm))))
				return -ENOMEM;
			snprintf(rm->key, sizeof(rm->key), "%s", d->room_key);
			if (ptab_add(&c->rooms, rm)) {
				room_free(rm);
				return -ENOMEM;
			}
		}
		if (devlist_add(&rm->all, r)) {
			if (!rm->all.n) {
				ptab_del(&c->rooms, rm);
				room_free(rm);
			}
			return -ENOMEM;
		}
		r->room = rm;
	}
	for (int k = 0; k < NCAPBITS; k++) {
		if (!(d->caps & (1u << k)))
			continue;
		r->indexed |= 1u << k;
		if (devlist_add(&c->bycap[k], r) || (rm && devlist_add(&rm->bycap[k], r))) {
			unindex(c, r);
			return -ENOMEM;
		}
	}
	return 0;
}

/* ==== Registry ==== */

int
hearth_context_new(int max_devices, hearth_context **out)
{
	hearth_context *c = hearth_calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->max = max_devices > 0 ? max_devices : 1;
	c->by_id.key_off = offsetof(struct devrec, pub) + offsetof(struct hearth_device, id);
	c->rooms.key_off = offsetof(struct room, key);
	c->cap_motion = hearth_capability_find("sensor.motion");
	c->cap_occupancy = hearth_capability_find("sensor.occupancy");
	c->cap_contact = hearth_capability_find("sensor.contact");
	c->cap_media = hearth_capability_find("media.power");
	if (hearth_context_configure(c, NULL, NULL, "defaults", NULL, 0)) {
		hearth_context_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

static void
device_free(struct devrec *r)
{
	struct hearth_device *d;

	if (!r)
		return;
	d = &r->pub;
	hearth_free(d->name);
	hearth_free(d->room);
	hearth_free(d->room_key);
	hearth_free(d->kind);
	hearth_free(d->uri);
	cJSON_Delete(d->address);
	cJSON_Delete(d->state);
	for (int i = 0; i < r->nprops; i++)
		hearth_free(r->props[i].name);
	hearth_free(r->props);
	hearth_free(r);
}

void
hearth_context_free(hearth_context *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->n; i++)
		device_free(c->devs[i]);
	for (size_t i = 0; c->rooms.slot && i <= c->rooms.mask; i++)
		if (c->rooms.slot[i])
			room_free(c->rooms.slot[i]);
	for (int k = 0; k < NCAPBITS; k++)
		hearth_free(c->bycap[k].v);
	hearth_free(c->presence.v);
	hearth_free(c->by_id.slot);
	hearth_free(c->rooms.slot);
	hearth_free(c->devs);
	hearth_flags_free(c->flags);
	hearth_drift_free(c->drift);
	hearth_privacy_free(c->privacy);
	hearth_free(c);
}

/* ==== Flags, drift, privacy ==== */

int
hearth_context_configure(hearth_context *c, const cJSON *flags, const cJSON *drift,
                         const char *source, char *why, size_t wl)
{
	struct hearth_drift_config dc;
	hearth_flags *f = NULL;
	hearth_drift *d = NULL;
	int rc;

	hearth_drift_config_defaults(&dc);
	if ((rc = hearth_flags_load(flags, source, &f, why, wl)))
		return rc;
	if (drift && (rc = hearth_drift_config_parse(&dc, drift, source, why, wl))) {
		hearth_flags_free(f);
		return rc;
	}
	if ((rc = hearth_drift_new(&dc, &d))) {
		hearth_flags_free(f);
		return rc;
	}
	if (!c->privacy && !(c->privacy = hearth_privacy_new())) {
		hearth_flags_free(f);
		hearth_drift_free(d);
		return -ENOMEM;
	}
	hearth_flags_free(c->flags);
	hearth_drift_free(c->drift);
	c->flags = f;
	c->drift = d;
	return 0;
}

/* A device property as a flag condition sees it: unknown while the device
 * is offline, held while the reading drifts. */
static enum hearth_flag_input
flag_lookup(void *ud, const char *device, const char *property, const cJSON **value)
{
	const hearth_context *c = ud;
	const struct hearth_device *d = hearth_context_device(c, device);
	char feature[2 * HEARTH_ID_MAX + 2];

	if (!d || d->online == 0 || !d->state)
		return HEARTH_FLAG_INPUT_NONE;
	snprintf(feature, sizeof(feature), "%s/%s", device, property);
	if (hearth_drift_drifting(c->drift, feature))
		return HEARTH_FLAG_INPUT_HOLD;
	*value = cJSON_GetObjectItemCaseSensitive(d->state, property);
	return *value ? HEARTH_FLAG_INPUT_OK : HEARTH_FLAG_INPUT_NONE;
}

/* Re-evaluate the flags; every change is a FLAG_CHANGED message. */
static void
eval_flags(hearth_context *c, const hearth_now *now, const struct room *changed,
           const hearth_outbox *out)
{
	struct hearth_flag_room rooms[HEARTH_FLAGS_ROOMS_MAX];
	struct hearth_flag_change ch[HEARTH_FLAGS_MAX];
	struct hearth_flag_inputs in = {.minute = now->local_minute,
	                                .weekday = now->weekday,
	                                .rooms = rooms,
	                                .lookup = flag_lookup,
	                                .ud = c};
	int n;

	for (size_t i = 0; c->rooms.slot && i <= c->rooms.mask; i++) {
		struct room *rm = c->rooms.slot[i];

		if (!rm || in.nrooms >= HEARTH_FLAGS_ROOMS_MAX)
			continue;
		/* Occupancy decays with time: every room on a tick (changed NULL),
		 * only the reporting device's room on a report. */
		if (!changed || rm == changed)
			rm->occupied = hearth_context_room_occupancy(c, rm->key, now).occupied;
		rooms[in.nrooms].room = rm->key;
		rooms[in.nrooms++].occupied = rm->occupied;
	}
	n = hearth_flags_eval(c->flags, &in, ch, HEARTH_FLAGS_MAX);
	for (int i = 0; i < n; i++) {
		hearth_msg m = {.type = HEARTH_MSG_FLAG_CHANGED, .flag = ch[i].value};

		m.body = cJSON_CreateObject();
		if (!m.body)
			return;
		cJSON_AddStringToObject(m.body, "flag", ch[i].name);
		cJSON_AddBoolToObject(m.body, "value", ch[i].value);
		LOG_DEBUG("context", "flag %s is %s", ch[i].name, ch[i].value ? "on" : "off");
		hearth_post(out, &m);
	}
}

/* Sensor readings (not actuator values) feed the drift sentinel. */
static void
observe_drift(hearth_context *c, const char *device, const cJSON *body, const hearth_now *now)
{
	const cJSON *p;

	cJSON_ArrayForEach(p, body)
	{
		char feature[2 * HEARTH_ID_MAX + 2];
		bool sensor = false;

		if (!cJSON_IsNumber(p))
			continue;
		for (int i = 0; i < hearth_capability_count(); i++) {
			const struct hearth_capability *cap = hearth_capability_at(i);

			sensor = sensor || (!cap->actuator && !strcmp(cap->property, p->string));
		}
		if (!sensor)
			continue;
		snprintf(feature, sizeof(feature), "%s/%s", device, p->string);
		hearth_drift_observe(c->drift, feature, p->valuedouble, now->mono_ms);
	}
}

void
hearth_context_tick(hearth_context *c, const hearth_now *now, const hearth_outbox *out)
{
	struct hearth_drift_event ev[16];
	int n = hearth_drift_tick(c->drift, now->mono_ms, ev, 16);

	for (int i = 0; i < n; i++) {
		hearth_msg m = {.type = HEARTH_MSG_DRIFT,
		                .flag = ev[i].kind == HEARTH_DRIFT_STARTED};

		m.body = hearth_drift_event_json(&ev[i]);
		if (!m.body)
			continue;
		LOG_WARN("context", "drift %s on %s (std(z) %.2f)",
		         ev[i].kind == HEARTH_DRIFT_STARTED ? "started" : "cleared", ev[i].feature,
		         ev[i].score);
		hearth_post(out, &m);
	}
	eval_flags(c, now, NULL, out); /* time windows, decay, flags a cleared drift released */
}

int
hearth_context_flag(const hearth_context *c, const char *name)
{
	return hearth_flags_get(c->flags, name);
}

hearth_privacy *
hearth_context_privacy(hearth_context *c)
{
	return c->privacy;
}

const hearth_privacy *
hearth_context_guard(const hearth_context *c)
{
	return c->privacy;
}

bool
hearth_context_may_read(const hearth_context *c, enum hearth_consumer who, const char *what)
{
	return hearth_privacy_allowed(c->privacy, who, what);
}

cJSON *
hearth_context_health_json(const hearth_context *c)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddItemToObject(o, "flags", hearth_flags_json(c->flags));
	cJSON_AddItemToObject(o, "privacy", hearth_privacy_health_json(c->privacy));
	cJSON_AddItemToObject(o, "drift", hearth_drift_health_json(c->drift));
	return o;
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

static struct devrec *
find(const hearth_context *c, const char *id)
{
	return ptab_get(&c->by_id, id);
}

static struct hearth_device *
get_or_add(hearth_context *c, const char *id, const hearth_outbox *out, const char *topic)
{
	struct devrec *r = find(c, id);

	if (r)
		return &r->pub;
	if (c->n >= c->max) {
		char detail[128];

		snprintf(detail, sizeof(detail),
		         "the registry holds %d devices, its limit; %s ignored", c->max, id);
		hearth_post_error(out, "too_many_devices", topic, detail);
		return NULL;
	}
	if (c->n == c->cap) {
		int ncap = c->cap ? c->cap * 2 : 16;
		struct devrec **nd = hearth_realloc(c->devs, (size_t)ncap * sizeof(*nd));

		if (!nd)
			return NULL;
		c->devs = nd;
		c->cap = ncap;
	}
	r = hearth_calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	snprintf(r->pub.id, sizeof(r->pub.id), "%s", id);
	snprintf(r->pub.transport, sizeof(r->pub.transport), "mqtt");
	r->pub.online = -1;
	r->seq = c->next_seq++;
	if (ptab_add(&c->by_id, r)) {
		hearth_free(r);
		return NULL;
	}
	c->devs[c->n++] = r;
	return &r->pub;
}

/* Remove the device at i; the others keep their order. O(n) for the
 * ordered array, which removal (rare) can afford. */
static void
remove_device(hearth_context *c, int i)
{
	struct devrec *r = c->devs[i];

	unindex(c, r);
	if (r->in_presence)
		devlist_del(&c->presence, r);
	ptab_del(&c->by_id, r);
	device_free(r);
	memmove(&c->devs[i], &c->devs[i + 1], (size_t)(c->n - i - 1) * sizeof(c->devs[0]));
	c->n--;
}

static int
index_of(const hearth_context *c, const struct devrec *r)
{
	/* Creation order is array order: binary search by seq. */
	int lo = 0, hi = c->n;

	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (c->devs[mid]->seq < r->seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n && c->devs[lo] == r ? lo : -1;
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
	double power_w;
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
	rc = hearth_json_get_num(b, "power_w", &m->power_w);
	if ((rc && rc != -ENOENT) || m->power_w < 0 || m->power_w > 100000) {
		snprintf(why, wl, "power_w must be a number of watts from 0 to 100000");
		return HEARTH_E_INVALID;
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

/* Set d's announcement, and list it under its (new) room and capabilities. */
static int
set_meta(hearth_context *c, struct hearth_device *d, const struct meta *m)
{
	char key[72];
	int rc = -ENOMEM;

	unindex(c, rec_of(d));
	if (set_str(&d->name, m->name) || set_str(&d->room, m->room) ||
	    set_str(&d->kind, m->kind) || set_str(&d->uri, m->uri))
		goto reindex;
	hearth_free(d->room_key);
	d->room_key = NULL;
	if (m->room) {
		hearth_room_key(m->room, key, sizeof(key));
		if (!(d->room_key = hearth_strdup(key)))
			goto reindex;
	}
	snprintf(d->transport, sizeof(d->transport), "%s", m->transport);
	cJSON_Delete(d->address);
	d->address = m->address ? cJSON_Duplicate(m->address, 1) : NULL;
	d->caps = m->caps;
	d->meta_optimistic = m->optimistic;
	d->power_w = m->power_w;
	d->has_meta = true;
	rc = 0;
reindex:
	if (index_device(c, rec_of(d)))
		rc = -ENOMEM;
	return rc;
}

/* ==== Fusion: freshness of properties, occupancy events ==== */

static struct prop *
prop_find(const struct devrec *r, const char *name)
{
	for (int i = 0; i < r->nprops; i++)
		if (!strcmp(r->props[i].name, name))
			return &r->props[i];
	return NULL;
}

/* The freshness record of property name, added when missing (NULL: no memory). */
static struct prop *
prop_get(struct devrec *r, const char *name)
{
	struct prop *p = prop_find(r, name);

	if (p)
		return p;
	if (r->nprops == r->capprops) {
		int ncap = r->capprops ? r->capprops * 2 : 4;
		struct prop *np = hearth_realloc(r->props, (size_t)ncap * sizeof(*np));

		if (!np)
			return NULL;
		r->props = np;
		r->capprops = ncap;
	}
	p = &r->props[r->nprops];
	memset(p, 0, sizeof(*p));
	if (!(p->name = hearth_strdup(name)))
		return NULL;
	r->nprops++;
	return p;
}

/* The report time and staleness of d's property prop (last_seen when unknown). */
static void
prop_time(const struct devrec *r, const char *prop, int64_t *ts, bool *stale)
{
	const struct prop *p = prop_find(r, prop);

	*ts = p ? p->ts : r->pub.last_seen;
	*stale = p ? p->stale : false;
}

static bool
has_cap(const struct hearth_device *d, int cap)
{
	return cap >= 0 && (d->caps & (1u << cap));
}

/*
 * A positive occupancy event in body, judged against the state before it is
 * merged: motion or occupancy reported true, a contact that changed, media
 * switched on, a presence flag set.
 */
static bool
occupancy_event(const hearth_context *c, const struct hearth_device *d, const cJSON *body)
{
	const cJSON *p;

	cJSON_ArrayForEach(p, body)
	{
		const cJSON *old =
		        d->state ? cJSON_GetObjectItemCaseSensitive(d->state, p->string) : NULL;

		if ((!strcmp(p->string, "motion") && has_cap(d, c->cap_motion)) ||
		    (!strcmp(p->string, "occupancy") && has_cap(d, c->cap_occupancy)) ||
		    !strcmp(p->string, "presence")) {
			if (cJSON_IsTrue(p))
				return true;
		} else if (!strcmp(p->string, "contact") && has_cap(d, c->cap_contact)) {
			if (cJSON_IsBool(old) && cJSON_IsTrue(old) != cJSON_IsTrue(p))
				return true;
		} else if (!strcmp(p->string, "on") && has_cap(d, c->cap_media)) {
			if (cJSON_IsTrue(p) && !cJSON_IsTrue(old))
				return true;
		}
	}
	return false;
}

/* Stamp every property of body as reported at t, and note an occupancy event. */
static void
fuse_report(hearth_context *c, struct devrec *r, const cJSON *body, int64_t t)
{
	const cJSON *p;

	if (occupancy_event(c, &r->pub, body)) {
		if (r->room)
			r->room->last_event = t;
		c->home_event = t;
	}
	cJSON_ArrayForEach(p, body)
	{
		struct prop *pr = prop_get(r, p->string);

		if (!pr) {
			LOG_WARN("context", "out of memory: %s.%s has no freshness", r->pub.id,
			         p->string);
			continue;
		}
		pr->ts = t;
		pr->stale = false;
		if (!strcmp(p->string, "presence") && !r->in_presence &&
		    !devlist_add(&c->presence, r))
			r->in_presence = true;
	}
}

/* Signals that hold while true: the best of weight x confidence over list. */
static void
sustained(const struct devlist *l, const char *prop, double weight, const hearth_now *now,
          struct hearth_occupancy *o)
{
	for (int i = 0; i < l->n; i++) {
		const struct devrec *r = l->v[i];
		const cJSON *v =
		        r->pub.state ? cJSON_GetObjectItemCaseSensitive(r->pub.state, prop) : NULL;
		int64_t ts;
		bool stale;
		double s;

		if (!cJSON_IsTrue(v))
			continue;
		prop_time(r, prop, &ts, &stale);
		s = weight * hearth_fusion_confidence(prop, now->wall_ms - ts, stale);
		if (s > o->score)
			o->score = s;
		if (ts > o->last_signal)
			o->last_signal = ts;
	}
}

static void
event_score(int64_t event, int64_t half_life, const hearth_now *now, struct hearth_occupancy *o)
{
	double s;

	if (!event)
		return;
	s = hearth_fusion_decay(1.0, now->wall_ms - event, half_life);
	if (s > o->score)
		o->score = s;
	if (event > o->last_signal)
		o->last_signal = event;
}

static const struct devlist *
cap_list(const struct devlist *lists, int cap)
{
	static const struct devlist empty = {0};

	return cap >= 0 && cap < NCAPBITS ? &lists[cap] : &empty;
}

/* ==== Restore ==== */

/* Freshness of the restored state: the stored times (or the record's
 * last_seen), stale when the record said the device was offline since. */
static void
restore_freshness(struct devrec *r, const cJSON *rec)
{
	const cJSON *fr = cJSON_GetObjectItemCaseSensitive(rec, "freshness");
	const cJSON *seen = cJSON_GetObjectItemCaseSensitive(rec, "last_seen");
	const cJSON *p;

	cJSON_ArrayForEach(p, r->pub.state)
	{
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(fr, p->string);
		const cJSON *ts = cJSON_GetObjectItemCaseSensitive(f, "ts");
		const cJSON *conf = cJSON_GetObjectItemCaseSensitive(f, "confidence");
		struct prop *pr = prop_get(r, p->string);

		if (!pr)
			return;
		pr->ts = cJSON_IsNumber(ts)     ? (int64_t)ts->valuedouble
		         : cJSON_IsNumber(seen) ? (int64_t)seen->valuedouble
		                                : 0;
		pr->stale = cJSON_IsNumber(conf) && conf->valuedouble < 1.0;
	}
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
	if (!find(c, id) && c->n >= c->max)
		return HEARTH_E_FULL;
	d = get_or_add(c, id, &none, NULL);
	if (!d)
		return -ENOMEM;
	if ((rc = set_meta(c, d, &m)))
		return rc;
	/* The last known state (so a step is not skipped or confirmed blindly);
	 * availability stays unknown until the device speaks again. */
	st = cJSON_GetObjectItemCaseSensitive(rec, "state");
	if (cJSON_IsObject(st) && !d->state) {
		d->state = cJSON_Duplicate(st, 1);
		if (d->state)
			restore_freshness(rec_of(d), rec);
	}
	return 0;
}

/* ==== meta ==== */

static void
on_meta(hearth_context *c, hearth_msg *msg, const hearth_now *now, const hearth_outbox *out)
{
	char topic[128], why[160];
	struct hearth_device *d;
	struct devrec *r;
	struct meta m;

	snprintf(topic, sizeof(topic), "device/%s/meta", msg->id);
	if (!msg->body) {
		/* An empty retained meta: the device was removed. */
		r = find(c, msg->id);
		if (r) {
			LOG_INFO("context", "device %s removed", msg->id);
			remove_device(c, index_of(c, r));
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
	if (set_meta(c, d, &m)) {
		hearth_post_error(out, "internal", topic, "out of memory");
		return;
	}
	d->last_seen = now->wall_ms;
	LOG_DEBUG("context", "device %s announced (room %s)", d->id, d->room ? d->room : "-");
	post_save(out, d->id, d);
	eval_flags(c, now, rec_of(d)->room, out); /* a new room has a flag of its own */
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
	fuse_report(c, rec_of(d), msg->body, now->wall_ms);
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
	observe_drift(c, d->id, d->state, now);
	/* Flags see room occupancy (motion, occupancy, contact, media) and the
	 * devices their conditions name: other reports cannot change them. */
	if (d->caps & ((1u << c->cap_motion) | (1u << c->cap_occupancy) | (1u << c->cap_contact) |
	               (1u << c->cap_media)) ||
	    hearth_flags_uses_device(c->flags, d->id))
		eval_flags(c, now, rec_of(d)->room, out);
}

static void
on_avail(hearth_context *c, hearth_msg *msg, const hearth_now *now, const hearth_outbox *out)
{
	char topic[128];
	struct hearth_device *d;
	struct devrec *r;
	int online = msg->flag ? 1 : 0;

	snprintf(topic, sizeof(topic), "device/%s/availability", msg->id);
	d = get_or_add(c, msg->id, out, topic);
	if (!d)
		return;
	d->last_seen = now->wall_ms;
	if (d->online == online)
		return;
	d->online = online;
	/* What it said before an outage is believed less until it says it again
	 * (or is back online). */
	r = rec_of(d);
	for (int i = 0; i < r->nprops; i++)
		r->props[i].stale = !online;
	LOG_INFO("context", "device %s is %s", d->id, online ? "online" : "offline");
	post_changed(out, d);
	if (d->has_meta)
		post_save(out, d->id, d);
	eval_flags(c, now, rec_of(d)->room, out);
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
	struct devrec *r = find(c, id);

	return r ? &r->pub : NULL;
}

int
hearth_context_count(const hearth_context *c)
{
	return c->n;
}

const struct hearth_device *
hearth_context_at(const hearth_context *c, int i)
{
	return i >= 0 && i < c->n ? &c->devs[i]->pub : NULL;
}

int
hearth_context_online_count(const hearth_context *c)
{
	int n = 0;

	for (int i = 0; i < c->n; i++)
		n += c->devs[i]->pub.online == 1;
	return n;
}

bool
hearth_context_room_known(const hearth_context *c, const char *room)
{
	const struct room *rm = room_find(c, room);

	return rm && rm->all.n > 0;
}

int
hearth_context_select(const hearth_context *c, const char *room, int cap, const char *kind,
                      const struct hearth_device **out, int max)
{
	const struct devlist *l;
	int n = 0;

	if (cap < 0 || cap >= NCAPBITS)
		return 0;
	if (room) {
		const struct room *rm = room_find(c, room);

		if (!rm)
			return 0;
		l = &rm->bycap[cap];
	} else {
		l = &c->bycap[cap];
	}
	for (int i = 0; i < l->n; i++) {
		const struct hearth_device *d = &l->v[i]->pub;

		if (kind && (!d->kind || strcmp(d->kind, kind)))
			continue;
		if (n < max)
			out[n] = d;
		n++;
	}
	return n;
}

int
hearth_context_value(const hearth_context *c, const char *device, const char *property,
                     const hearth_now *now, struct hearth_value *out)
{
	const struct devrec *r = find(c, device);
	const cJSON *v;

	memset(out, 0, sizeof(*out));
	if (!r || !r->pub.state || !(v = cJSON_GetObjectItemCaseSensitive(r->pub.state, property)))
		return HEARTH_E_NOT_FOUND;
	out->value = v;
	prop_time(r, property, &out->ts, &out->stale);
	out->age_ms = now->wall_ms > out->ts ? now->wall_ms - out->ts : 0;
	out->confidence = hearth_fusion_confidence(property, out->age_ms, out->stale);
	return 0;
}

struct hearth_occupancy
hearth_context_room_occupancy(const hearth_context *c, const char *room, const hearth_now *now)
{
	struct hearth_occupancy o = {0};
	const struct room *rm = room_find(c, room);

	if (!rm)
		return o;
	event_score(rm->last_event, HEARTH_FUSION_ROOM_HALF_LIFE_MS, now, &o);
	sustained(cap_list(rm->bycap, c->cap_motion), "motion", 1.0, now, &o);
	sustained(cap_list(rm->bycap, c->cap_occupancy), "occupancy", 1.0, now, &o);
	sustained(cap_list(rm->bycap, c->cap_media), "on", HEARTH_FUSION_MEDIA_WEIGHT, now, &o);
	o.occupied = o.score >= HEARTH_FUSION_OCCUPIED;
	return o;
}

struct hearth_occupancy
hearth_context_home_presence(const hearth_context *c, const hearth_now *now)
{
	struct hearth_occupancy o = {0};

	/* Room events are home events too, and the home's decay is slower. */
	event_score(c->home_event, HEARTH_FUSION_HOME_HALF_LIFE_MS, now, &o);
	sustained(cap_list(c->bycap, c->cap_motion), "motion", 1.0, now, &o);
	sustained(cap_list(c->bycap, c->cap_occupancy), "occupancy", 1.0, now, &o);
	sustained(cap_list(c->bycap, c->cap_media), "on", HEARTH_FUSION_MEDIA_WEIGHT, now, &o);
	sustained(&c->presence, "presence", 1.0, now, &o);
	o.occupied = o.score >= HEARTH_FUSION_OCCUPIED;
	return o;
}

bool
hearth_device_optimistic(const struct hearth_device *d)
{
	return d->meta_optimistic || !d->state;
}

/* "freshness": {"<prop>": {"ts", "confidence" (as of ts), "half_life_ms"}}. */
static void
add_freshness(cJSON *o, const struct devrec *r)
{
	const cJSON *p;
	cJSON *fr;

	if (!r->pub.state || !r->nprops)
		return;
	fr = cJSON_AddObjectToObject(o, "freshness");
	cJSON_ArrayForEach(p, r->pub.state)
	{
		const struct prop *pr = prop_find(r, p->string);
		cJSON *f;

		if (!fr || !pr || !(f = cJSON_AddObjectToObject(fr, p->string)))
			continue;
		cJSON_AddNumberToObject(f, "ts", (double)pr->ts);
		cJSON_AddNumberToObject(f, "confidence",
		                        pr->stale ? HEARTH_FUSION_OFFLINE_FACTOR : 1.0);
		cJSON_AddNumberToObject(f, "half_life_ms",
		                        (double)hearth_fusion_half_life_ms(p->string));
	}
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
	if (d->power_w > 0)
		cJSON_AddNumberToObject(o, "power_w", d->power_w);
	if (d->online < 0)
		cJSON_AddNullToObject(o, "online");
	else
		cJSON_AddBoolToObject(o, "online", d->online == 1);
	if (d->state) {
		cJSON_AddItemToObject(o, "state", cJSON_Duplicate(d->state, 1));
		add_freshness(o, rec_of(d));
	}
	cJSON_AddNumberToObject(o, "last_seen", (double)d->last_seen);
	return o;
}
