/*
 * z2m.c - the Zigbee2MQTT binding (see z2m.h).
 *
 * The binding owns a table of the devices the last bridge/devices list gave:
 * for each, its hearth id, its friendly name (the topic it speaks on) and a
 * short list of properties, each naming the Zigbee2MQTT property
 * ("state_l1", "brightness", "occupied_heating_setpoint"...) that carries a
 * hearth property and how the value converts. Exposes decide everything, so
 * a multi-endpoint device's properties are found where its definition puts
 * them; the first expose of a hearth property wins (one hearth device per
 * Zigbee device). Messages for names not yet known (retained availability
 * often arrives before the retained device list) are kept, a few, and
 * replayed when the list names them. The binding never does I/O and never
 * keeps a payload it was handed.
 */
#include "runtime/z2m.h"

#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/id.h"
#include "platform/json.h"
#include "platform/log.h"
#include "recipes/capability.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define ZPROPS_MAX  10
#define PENDING_MAX 64
#define BASE_MAX    64

enum conv {
	C_BINARY,    /* value_on / value_off <-> true / false */
	C_SCALE,     /* 0..zmax <-> 0-100 % */
	C_MIRED,     /* mired <-> kelvin */
	C_PLAIN,     /* the same number or boolean */
	C_LOCKSTATE, /* lock_state "locked" / "unlocked" -> locked (read only) */
};

struct zprop {
	const char *hprop; /* hearth property (a constant string) */
	char *zprop;       /* Zigbee2MQTT property */
	enum conv conv;
	cJSON *von, *voff; /* C_BINARY */
	double zmax;       /* C_SCALE */
	bool writable;
};

struct zdev {
	char id[HEARTH_ID_MAX + 1];
	char *name; /* friendly name */
	struct zprop props[ZPROPS_MAX];
	int nprops;
	cJSON *meta; /* the meta last posted, so an unchanged list posts nothing */
	/* The last color temperature commanded: mireds are coarse (2700 K is
	 * 370 mired, which reads back as 2703 K), so a report of exactly the
	 * mired sent reads back as the kelvin asked for. */
	double cmd_kelvin;
	long cmd_mired;
	bool seen; /* in the list being read */
};

struct pending {
	char *topic;
	char *payload;
	int len;
};

struct hearth_z2m {
	char base[BASE_MAX];
	size_t base_len;
	char sub[BASE_MAX + 4];
	const char *subs[2];
	char devices_topic[BASE_MAX + 16];
	int max_payload, max_devices_payload;
	hearth_room_fn room;
	void *room_ud;
	const hearth_outbox *out;
	struct zdev **devs;
	int n, cap;
	struct pending pend[PENDING_MAX];
	int npend;
};

/* ==== Devices ==== */

static void
zdev_free(struct zdev *d)
{
	if (!d)
		return;
	for (int i = 0; i < d->nprops; i++) {
		hearth_free(d->props[i].zprop);
		cJSON_Delete(d->props[i].von);
		cJSON_Delete(d->props[i].voff);
	}
	hearth_free(d->name);
	cJSON_Delete(d->meta);
	hearth_free(d);
}

static void
pending_clear(hearth_z2m *z)
{
	for (int i = 0; i < z->npend; i++) {
		hearth_free(z->pend[i].topic);
		hearth_free(z->pend[i].payload);
	}
	z->npend = 0;
}

int
hearth_z2m_new(const struct hearth_z2m_opts *o, const hearth_outbox *out, hearth_z2m **zp)
{
	hearth_z2m *z;
	size_t n = o->base_topic ? strlen(o->base_topic) : 0;

	*zp = NULL;
	if (n == 0 || n >= BASE_MAX || strpbrk(o->base_topic, "+#") || o->base_topic[n - 1] == '/')
		return HEARTH_E_INVALID;
	z = hearth_calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	memcpy(z->base, o->base_topic, n + 1);
	z->base_len = n;
	snprintf(z->sub, sizeof(z->sub), "%s/#", z->base);
	z->subs[0] = z->sub;
	z->subs[1] = NULL;
	snprintf(z->devices_topic, sizeof(z->devices_topic), "%s/bridge/devices", z->base);
	z->max_payload = o->max_payload > 0 ? o->max_payload : 65536;
	z->max_devices_payload = o->max_devices_payload > 0 ? o->max_devices_payload : 1 << 22;
	z->room = o->room;
	z->room_ud = o->room_ud;
	z->out = out;
	*zp = z;
	return 0;
}

void
hearth_z2m_free(hearth_z2m *z)
{
	if (!z)
		return;
	for (int i = 0; i < z->n; i++)
		zdev_free(z->devs[i]);
	hearth_free(z->devs);
	pending_clear(z);
	hearth_free(z);
}

const char *const *
hearth_z2m_subscriptions(const hearth_z2m *z)
{
	return z->subs;
}

int
hearth_z2m_count(const hearth_z2m *z)
{
	return z->n;
}

bool
hearth_z2m_owns(const hearth_z2m *z, const char *topic)
{
	return !strncmp(topic, z->base, z->base_len) && topic[z->base_len] == '/';
}

static struct zdev *
by_id(const hearth_z2m *z, const char *id)
{
	for (int i = 0; i < z->n; i++)
		if (!strcmp(z->devs[i]->id, id))
			return z->devs[i];
	return NULL;
}

static struct zdev *
by_name(const hearth_z2m *z, const char *name, size_t len)
{
	for (int i = 0; i < z->n; i++)
		if (strlen(z->devs[i]->name) == len && !memcmp(z->devs[i]->name, name, len))
			return z->devs[i];
	return NULL;
}

/* ==== Exposes -> properties and capabilities ==== */

static struct zprop *
prop_of(struct zdev *d, const char *hprop)
{
	for (int i = 0; i < d->nprops; i++)
		if (!strcmp(d->props[i].hprop, hprop))
			return &d->props[i];
	return NULL;
}

/* Add a property unless one already carries hprop (first expose wins). */
static int
add_prop(struct zdev *d, const char *hprop, const cJSON *f, enum conv conv, hearth_capset *caps,
         const char *cap)
{
	struct zprop *p;
	const char *zp = NULL;
	double access = 7;
	int ci = hearth_capability_find(cap);

	if (hearth_json_get_str(f, "property", &zp) && hearth_json_get_str(f, "name", &zp))
		return 0;
	hearth_json_get_num(f, "access", &access);
	for (int i = 0; i < d->nprops && conv != C_LOCKSTATE; i++)
		if (!strcmp(d->props[i].hprop, hprop) && d->props[i].conv != C_LOCKSTATE)
			return 0;
	if (d->nprops >= ZPROPS_MAX)
		return 0;
	p = &d->props[d->nprops];
	memset(p, 0, sizeof(*p));
	p->hprop = hprop;
	p->conv = conv;
	p->writable = ((long)access & 2) && conv != C_LOCKSTATE;
	if (!(p->zprop = hearth_strdup(zp)))
		return -ENOMEM;
	d->nprops++;
	if (conv == C_BINARY) {
		const cJSON *on = cJSON_GetObjectItemCaseSensitive(f, "value_on");
		const cJSON *off = cJSON_GetObjectItemCaseSensitive(f, "value_off");

		p->von = on ? cJSON_Duplicate(on, 1) : cJSON_CreateTrue();
		p->voff = off ? cJSON_Duplicate(off, 1) : cJSON_CreateFalse();
		if (!p->von || !p->voff)
			return -ENOMEM;
	}
	if (conv == C_SCALE) {
		p->zmax = 254;
		hearth_json_get_num(f, "value_max", &p->zmax);
		if (p->zmax <= 0)
			p->zmax = 254;
	}
	if (ci >= 0)
		*caps |= 1u << ci;
	return 0;
}

static bool
named(const cJSON *f, const char *name)
{
	const char *s;

	return !hearth_json_get_str(f, "name", &s) && !strcmp(s, name);
}

static bool
typed(const cJSON *f, const char *type)
{
	const char *s;

	return !hearth_json_get_str(f, "type", &s) && !strcmp(s, type);
}

/* One feature of a specific expose (light, switch, lock, cover, climate). */
static int
add_feature(struct zdev *d, const char *type, const cJSON *f, hearth_capset *caps)
{
	if (!strcmp(type, "light") || !strcmp(type, "switch")) {
		if (named(f, "state") && typed(f, "binary"))
			return add_prop(d, "on", f, C_BINARY, caps,
			                type[0] == 'l' ? "light.on_off" : "switch.on_off");
		if (type[0] == 'l' && named(f, "brightness") && typed(f, "numeric"))
			return add_prop(d, "brightness", f, C_SCALE, caps, "light.brightness");
		if (type[0] == 'l' && named(f, "color_temp") && typed(f, "numeric"))
			return add_prop(d, "color_temp", f, C_MIRED, caps, "light.color_temp");
		return 0;
	}
	if (!strcmp(type, "lock")) {
		if (named(f, "state") && typed(f, "binary"))
			return add_prop(d, "locked", f, C_BINARY, caps, "lock.lock");
		if (named(f, "lock_state"))
			return add_prop(d, "locked", f, C_LOCKSTATE, caps, "lock.lock");
		return 0;
	}
	if (!strcmp(type, "cover")) {
		if (named(f, "position") && typed(f, "numeric"))
			return add_prop(d, "position", f, C_PLAIN, caps, "cover.position");
		return 0;
	}
	if (!strcmp(type, "climate")) {
		if ((named(f, "occupied_heating_setpoint") ||
		     named(f, "current_heating_setpoint")) &&
		    typed(f, "numeric"))
			return add_prop(d, "setpoint", f, C_PLAIN, caps, "climate.setpoint");
		if (named(f, "local_temperature") && typed(f, "numeric"))
			return add_prop(d, "temperature", f, C_PLAIN, caps, "sensor.temperature");
	}
	return 0;
}

/* A generic expose (binary, numeric) at the top level. */
static int
add_generic(struct zdev *d, const cJSON *e, hearth_capset *caps)
{
	/* Booleans as they are: Zigbee2MQTT exposes contact with value_on false
	 * (for Home Assistant's door "on" = open), yet reports contact=true when
	 * closed, which is the meaning hearth keeps. */
	if (typed(e, "binary")) {
		if (named(e, "occupancy") || named(e, "presence"))
			return add_prop(d, "occupancy", e, C_PLAIN, caps, "sensor.occupancy");
		if (named(e, "contact"))
			return add_prop(d, "contact", e, C_PLAIN, caps, "sensor.contact");
		return 0;
	}
	if (!typed(e, "numeric"))
		return 0;
	if (named(e, "temperature"))
		return add_prop(d, "temperature", e, C_PLAIN, caps, "sensor.temperature");
	if (named(e, "illuminance_lux")) {
		/* Zigbee2MQTT 1.x: "illuminance" is a raw value, "illuminance_lux" lux. */
		struct zprop *p = prop_of(d, "illuminance");
		const char *zp;

		if (p && !hearth_json_get_str(e, "property", &zp)) {
			char *s = hearth_strdup(zp);

			if (!s)
				return -ENOMEM;
			hearth_free(p->zprop);
			p->zprop = s;
			return 0;
		}
		return add_prop(d, "illuminance", e, C_PLAIN, caps, "sensor.illuminance");
	}
	if (named(e, "illuminance")) {
		struct zprop *p = prop_of(d, "illuminance");

		if (p && !strcmp(p->zprop, "illuminance_lux"))
			return 0;
		return add_prop(d, "illuminance", e, C_PLAIN, caps, "sensor.illuminance");
	}
	return 0;
}

static const char *
kind_of(const char *type)
{
	static const char *const kinds[][2] = {{"light", "light"},
	                                       {"switch", "switch"},
	                                       {"lock", "lock"},
	                                       {"cover", "cover"},
	                                       {"climate", "climate"}};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(type, kinds[i][0]))
			return kinds[i][1];
	return NULL;
}

/* Fill d's properties from definition.exposes; the kind and capabilities out. */
static int
read_exposes(struct zdev *d, const cJSON *exposes, const char **kind, hearth_capset *caps)
{
	const cJSON *e, *f;
	int rc;

	*kind = NULL;
	*caps = 0;
	cJSON_ArrayForEach(e, exposes)
	{
		const char *type;

		if (!cJSON_IsObject(e) || hearth_json_get_str(e, "type", &type))
			continue;
		if (kind_of(type)) {
			if (!*kind)
				*kind = kind_of(type);
			cJSON_ArrayForEach(f, hearth_json_arr(e, "features"))
			{
				if (cJSON_IsObject(f) && (rc = add_feature(d, type, f, caps)))
					return rc;
			}
		} else if ((rc = add_generic(d, e, caps))) {
			return rc;
		}
	}
	if (!*kind && *caps)
		*kind = "sensor";
	return 0;
}

/* ==== bridge/devices ==== */

static cJSON *
make_meta(const hearth_z2m *z, const struct zdev *d, const char *kind, hearth_capset caps)
{
	cJSON *m = cJSON_CreateObject(), *arr, *addr;
	const char *room = z->room ? z->room(z->room_ud, d->id) : NULL;
	char buf[72];

	if (!m)
		return NULL;
	if (!room) {
		const char *slash = strchr(d->name, '/');
		size_t n = slash ? (size_t)(slash - d->name) : 0;

		if (n > 0 && n < sizeof(buf)) {
			memcpy(buf, d->name, n);
			buf[n] = '\0';
			room = buf;
		}
	}
	if (!cJSON_AddStringToObject(m, "name", d->name) ||
	    (room && !cJSON_AddStringToObject(m, "room", room)) ||
	    (kind && !cJSON_AddStringToObject(m, "kind", kind)) ||
	    !(arr = cJSON_AddArrayToObject(m, "capabilities")))
		goto oom;
	for (int i = 0; i < hearth_capability_count(); i++)
		if ((caps & (1u << i)) &&
		    !cJSON_AddItemToArray(arr, cJSON_CreateString(hearth_capability_at(i)->name)))
			goto oom;
	if (!cJSON_AddStringToObject(m, "transport", "z2m") ||
	    !(addr = cJSON_AddObjectToObject(m, "address")) ||
	    !cJSON_AddStringToObject(addr, "friendly_name", d->name))
		goto oom;
	return m;
oom:
	/* Never a partial announcement. */
	cJSON_Delete(m);
	return NULL;
}

static void replay_pending(hearth_z2m *z, int64_t now);

/* One entry of the list: a new zdev (returned) or NULL (skipped; error posted
 * when the entry is malformed). */
static struct zdev *
read_device(hearth_z2m *z, const cJSON *e, int index, int *rc)
{
	const char *ieee, *name, *type = NULL;
	const cJSON *def;
	struct zdev *d;
	bool disabled = false;
	char why[160];

	*rc = 0;
	if (!cJSON_IsObject(e) || hearth_json_get_str(e, "ieee_address", &ieee) ||
	    hearth_json_get_str(e, "friendly_name", &name) || !name[0]) {
		snprintf(why, sizeof(why),
		         "device %d: needs \"ieee_address\" and \"friendly_name\" strings; skipped",
		         index);
		hearth_post_error(z->out, "bad_request", z->devices_topic, why);
		return NULL;
	}
	hearth_json_get_str(e, "type", &type);
	hearth_json_get_bool(e, "disabled", &disabled);
	def = hearth_json_obj(e, "definition");
	if ((type && !strcmp(type, "Coordinator")) || disabled || !def)
		return NULL; /* the coordinator, or not interviewed / not supported yet */
	if (strlen(name) > 128 || strpbrk(name, "+#")) {
		snprintf(why, sizeof(why),
		         "device %s: friendly_name must be 1-128 characters "
		         "without + or #; skipped",
		         ieee);
		hearth_post_error(z->out, "bad_request", z->devices_topic, why);
		return NULL;
	}
	d = hearth_calloc(1, sizeof(*d));
	if (!d) {
		*rc = -ENOMEM;
		return NULL;
	}
	snprintf(d->id, sizeof(d->id), "z2m.%s", ieee);
	if (strlen(ieee) + 4 > HEARTH_ID_MAX || !hearth_id_valid_str(d->id)) {
		snprintf(why, sizeof(why),
		         "device %d: ieee_address \"%.40s\" is not a valid id; skipped", index,
		         ieee);
		hearth_post_error(z->out, "bad_request", z->devices_topic, why);
		zdev_free(d);
		return NULL;
	}
	if (!(d->name = hearth_strdup(name))) {
		zdev_free(d);
		*rc = -ENOMEM;
		return NULL;
	}
	return d;
}

static void
on_devices(hearth_z2m *z, const char *text, int len, int64_t now)
{
	cJSON *list = NULL, *e;
	char why[160];
	int rc, index = 0;

	if (len == 0)
		return; /* a cleared retained list says nothing */
	rc = hearth_json_parse(text, (size_t)len, &list, why, sizeof(why));
	if (rc) {
		hearth_post_error(z->out, rc == HEARTH_E_BAD_JSON ? "bad_json" : "internal",
		                  z->devices_topic,
		                  rc == HEARTH_E_BAD_JSON ? why : "out of memory");
		return;
	}
	if (!cJSON_IsArray(list)) {
		snprintf(why, sizeof(why), "bridge/devices must be a JSON array of devices, not %s",
		         hearth_json_type_name(list));
		hearth_post_error(z->out, "bad_request", z->devices_topic, why);
		cJSON_Delete(list);
		return;
	}
	for (int i = 0; i < z->n; i++)
		z->devs[i]->seen = false;
	cJSON_ArrayForEach(e, list)
	{
		struct zdev *nd = read_device(z, e, index++, &rc), *old;
		const char *kind;
		hearth_capset caps;
		cJSON *meta;

		if (!nd) {
			if (rc)
				break;
			continue;
		}
		if ((rc = read_exposes(nd,
		                       hearth_json_arr(hearth_json_obj(e, "definition"), "exposes"),
		                       &kind, &caps)) ||
		    !(meta = make_meta(z, nd, kind, caps))) {
			zdev_free(nd);
			rc = rc ? rc : -ENOMEM;
			break;
		}
		old = by_id(z, nd->id);
		if (old && old->seen) {
			/* The same ieee_address twice in one list: keep the first. */
			cJSON_Delete(meta);
			zdev_free(nd);
			continue;
		}
		nd->seen = true;
		if (old) {
			nd->cmd_kelvin = old->cmd_kelvin;
			nd->cmd_mired = old->cmd_mired;
			if (old->meta && cJSON_Compare(old->meta, meta, true)) {
				nd->meta = meta;
				meta = NULL;
			}
			for (int i = 0; i < z->n; i++)
				if (z->devs[i] == old)
					z->devs[i] = nd;
			zdev_free(old);
		} else {
			if (z->n == z->cap) {
				int ncap = z->cap ? z->cap * 2 : 16;
				struct zdev **nv =
				        hearth_realloc(z->devs, (size_t)ncap * sizeof(*nv));

				if (!nv) {
					cJSON_Delete(meta);
					zdev_free(nd);
					rc = -ENOMEM;
					break;
				}
				z->devs = nv;
				z->cap = ncap;
			}
			z->devs[z->n++] = nd;
		}
		if (meta) {
			nd->meta = cJSON_Duplicate(meta, 1);
			hearth_eco_post(z->out, HEARTH_MSG_DEVICE_META, nd->id, meta, false);
		}
	}
	cJSON_Delete(list);
	if (rc) {
		/* Out of memory half way: keep what is known, remove nothing. */
		hearth_post_error(z->out, "internal", z->devices_topic, "out of memory");
		return;
	}
	for (int i = 0; i < z->n;) {
		struct zdev *d = z->devs[i];

		if (d->seen) {
			i++;
			continue;
		}
		LOG_INFO("z2m", "device %s (%s) left the network", d->id, d->name);
		hearth_eco_post(z->out, HEARTH_MSG_DEVICE_META, d->id, NULL, false);
		zdev_free(d);
		memmove(&z->devs[i], &z->devs[i + 1], (size_t)(z->n - i - 1) * sizeof(z->devs[0]));
		z->n--;
	}
	LOG_DEBUG("z2m", "%d devices from %s", z->n, z->devices_topic);
	replay_pending(z, now);
}

/* ==== State and availability ==== */

static cJSON *
to_hearth(struct zdev *d, const struct zprop *p, const cJSON *v)
{
	switch (p->conv) {
	case C_BINARY:
		if (cJSON_Compare(v, p->von, true))
			return cJSON_CreateTrue();
		if (cJSON_Compare(v, p->voff, true))
			return cJSON_CreateFalse();
		return NULL;
	case C_SCALE: {
		double pct;

		if (!cJSON_IsNumber(v))
			return NULL;
		pct = round(v->valuedouble * 100.0 / p->zmax);
		return cJSON_CreateNumber(pct < 0 ? 0 : pct > 100 ? 100 : pct);
	}
	case C_MIRED:
		if (!cJSON_IsNumber(v) || v->valuedouble <= 0)
			return NULL;
		if (d->cmd_kelvin > 0 && lround(v->valuedouble) == d->cmd_mired)
			return cJSON_CreateNumber(d->cmd_kelvin);
		return cJSON_CreateNumber(round(1e6 / v->valuedouble));
	case C_PLAIN:
		if (cJSON_IsNumber(v) || cJSON_IsBool(v))
			return cJSON_Duplicate(v, 0);
		return NULL;
	case C_LOCKSTATE:
		if (cJSON_IsString(v) && !strcmp(v->valuestring, "locked"))
			return cJSON_CreateTrue();
		if (cJSON_IsString(v) && !strcmp(v->valuestring, "unlocked"))
			return cJSON_CreateFalse();
		return NULL;
	}
	return NULL;
}

static void
on_state(hearth_z2m *z, struct zdev *d, const char *topic, const char *text, int len)
{
	cJSON *in, *st, *v;
	char why[160];
	int rc;

	if (len == 0)
		return; /* a cleared retained state says nothing */
	rc = hearth_json_parse(text, (size_t)len, &in, why, sizeof(why));
	if (rc) {
		hearth_post_error(z->out, rc == HEARTH_E_BAD_JSON ? "bad_json" : "internal", topic,
		                  rc == HEARTH_E_BAD_JSON ? why : "out of memory");
		return;
	}
	if (!cJSON_IsObject(in)) {
		snprintf(why, sizeof(why), "state must be a JSON object, not %s",
		         hearth_json_type_name(in));
		hearth_post_error(z->out, "bad_request", topic, why);
		cJSON_Delete(in);
		return;
	}
	st = cJSON_CreateObject();
	cJSON_ArrayForEach(v, in)
	{
		for (int i = 0; st && i < d->nprops; i++) {
			const struct zprop *p = &d->props[i];
			cJSON *hv;

			if (strcmp(p->zprop, v->string) || !(hv = to_hearth(d, p, v)))
				continue;
			if (!(cJSON_GetObjectItemCaseSensitive(st, p->hprop)
			              ? cJSON_ReplaceItemInObjectCaseSensitive(st, p->hprop, hv)
			              : cJSON_AddItemToObject(st, p->hprop, hv)))
				cJSON_Delete(hv);
		}
	}
	cJSON_Delete(in);
	if (!st || !st->child) {
		/* Only link quality and the like: nothing hearth reads. */
		cJSON_Delete(st);
		return;
	}
	hearth_eco_post(z->out, HEARTH_MSG_DEVICE_STATE, d->id, st, false);
}

static void
on_avail(hearth_z2m *z, struct zdev *d, const char *topic, const char *text, int len)
{
	bool online;

	if (len == 0)
		return;
	if (hearth_eco_parse_avail(text, len, "online", "offline", &online)) {
		hearth_post_error(
		        z->out, "bad_request", topic,
		        "availability is \"online\", \"offline\" or {\"state\":\"online\"}");
		return;
	}
	hearth_eco_post(z->out, HEARTH_MSG_DEVICE_AVAIL, d->id, NULL, online);
}

/* rest: the topic after "<base>/". Returns false when no device matched. */
static bool
dispatch(hearth_z2m *z, const char *topic, const char *rest, const char *text, int len)
{
	static const char avail[] = "/availability";
	size_t n = strlen(rest), an = sizeof(avail) - 1;
	struct zdev *d = by_name(z, rest, n);

	if (d) {
		on_state(z, d, topic, text, len);
		return true;
	}
	if (n > an && !strcmp(rest + n - an, avail) && (d = by_name(z, rest, n - an))) {
		on_avail(z, d, topic, text, len);
		return true;
	}
	return false;
}

/* Keep the last message of a topic whose device is not known yet. */
static void
pend(hearth_z2m *z, const char *topic, const char *text, int len)
{
	struct pending *p = NULL;

	for (int i = 0; i < z->npend; i++)
		if (!strcmp(z->pend[i].topic, topic))
			p = &z->pend[i];
	if (!p) {
		if (z->npend >= PENDING_MAX)
			return; /* a busy network before its device list: the rest waits for
			           the next report */
		p = &z->pend[z->npend];
		if (!(p->topic = hearth_strdup(topic)))
			return;
		p->payload = NULL;
		z->npend++;
	}
	hearth_free(p->payload);
	p->payload = hearth_memdup(text, (size_t)len + 1);
	p->len = p->payload ? len : 0;
}

static void
replay_pending(hearth_z2m *z, int64_t now)
{
	(void)now;
	for (int i = 0; i < z->npend; i++) {
		struct pending *p = &z->pend[i];

		if (p->payload)
			dispatch(z, p->topic, p->topic + z->base_len + 1, p->payload, p->len);
	}
	pending_clear(z);
}

bool
hearth_z2m_on_message(hearth_z2m *z, const char *topic, const void *payload, int len, int64_t now)
{
	const char *rest;
	char *text, why[128];
	size_t n;

	if (!hearth_z2m_owns(z, topic))
		return false;
	rest = topic + z->base_len + 1;
	if (!strcmp(rest, "bridge/devices")) {
		if (len > z->max_devices_payload) {
			snprintf(why, sizeof(why),
			         "payload of %d bytes; the limit is %d "
			         "(zigbee2mqtt.max_devices_payload)",
			         len, z->max_devices_payload);
			hearth_post_error(z->out, "too_large", topic, why);
			return true;
		}
		if (!(text = hearth_eco_text(payload, len))) {
			hearth_post_error(z->out, "internal", topic, "out of memory");
			return true;
		}
		on_devices(z, text, len, now);
		hearth_free(text);
		return true;
	}
	n = strlen(rest);
	if (!strncmp(rest, "bridge/", 7) ||
	    (n > 4 && (!strcmp(rest + n - 4, "/set") || !strcmp(rest + n - 4, "/get"))))
		return true; /* the bridge's other topics, our own commands */
	if (len > z->max_payload) {
		snprintf(why, sizeof(why), "payload of %d bytes; the limit is %d", len,
		         z->max_payload);
		hearth_post_error(z->out, "too_large", topic, why);
		return true;
	}
	if (!(text = hearth_eco_text(payload, len))) {
		hearth_post_error(z->out, "internal", topic, "out of memory");
		return true;
	}
	if (!dispatch(z, topic, rest, text, len))
		pend(z, topic, text, len);
	hearth_free(text);
	return true;
}

/* ==== Commands ==== */

static bool
skip_arg(const char *k)
{
	return !strcmp(k, "plan_id") || !strcmp(k, "intent_id") || !strcmp(k, "step");
}

static int
from_hearth(struct zdev *d, const struct zprop *p, const cJSON *v, cJSON **out, char *why,
            size_t wl)
{
	if (hearth_capability_check_value(p->hprop, v, why, wl))
		return HEARTH_E_INVALID;
	switch (p->conv) {
	case C_BINARY:
		*out = cJSON_Duplicate(cJSON_IsTrue(v) ? p->von : p->voff, 1);
		break;
	case C_SCALE:
		*out = cJSON_CreateNumber(round(v->valuedouble * p->zmax / 100.0));
		break;
	case C_MIRED: {
		long mired = lround(1e6 / v->valuedouble);

		if (d) {
			d->cmd_kelvin = v->valuedouble;
			d->cmd_mired = mired;
		}
		*out = cJSON_CreateNumber((double)mired);
		break;
	}
	case C_PLAIN:
		*out = cJSON_Duplicate(v, 0);
		break;
	case C_LOCKSTATE:
		*out = NULL;
		return 0;
	}
	return *out ? 0 : -ENOMEM;
}

/* Properties for a device the list has not named yet (restored from the
 * store): Zigbee2MQTT's usual ones for its capabilities. */
static int
default_props(struct zdev *d, hearth_capset caps)
{
	static const struct {
		const char *cap, *hprop, *zprop;
		enum conv conv;
		const char *on, *off;
	} defs[] = {
	        {"light.on_off", "on", "state", C_BINARY, "ON", "OFF"},
	        {"switch.on_off", "on", "state", C_BINARY, "ON", "OFF"},
	        {"light.brightness", "brightness", "brightness", C_SCALE, NULL, NULL},
	        {"light.color_temp", "color_temp", "color_temp", C_MIRED, NULL, NULL},
	        {"cover.position", "position", "position", C_PLAIN, NULL, NULL},
	        {"lock.lock", "locked", "state", C_BINARY, "LOCK", "UNLOCK"},
	        {"climate.setpoint", "setpoint", "occupied_heating_setpoint", C_PLAIN, NULL, NULL},
	};

	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		int ci = hearth_capability_find(defs[i].cap);
		struct zprop *p;

		if (ci < 0 || !(caps & (1u << ci)) || prop_of(d, defs[i].hprop) ||
		    d->nprops >= ZPROPS_MAX)
			continue;
		p = &d->props[d->nprops++];
		memset(p, 0, sizeof(*p));
		p->hprop = defs[i].hprop;
		p->conv = defs[i].conv;
		p->writable = true;
		p->zmax = 254;
		if (!(p->zprop = hearth_strdup(defs[i].zprop)))
			return -ENOMEM;
		if (defs[i].on && (!(p->von = cJSON_CreateString(defs[i].on)) ||
		                   !(p->voff = cJSON_CreateString(defs[i].off))))
			return -ENOMEM;
	}
	return 0;
}

int
hearth_z2m_command(hearth_z2m *z, const struct hearth_device *hd, const cJSON *args,
                   struct hearth_pubs *pubs, char *why, size_t wl)
{
	struct zdev *d = by_id(z, hd->id), tmp;
	const char *name = NULL;
	cJSON *body = NULL, *a;
	char topic[512], *text;
	int rc = 0;

	memset(&tmp, 0, sizeof(tmp));
	if (!d) {
		if (hearth_json_get_str(hd->address, "friendly_name", &name)) {
			snprintf(why, wl,
			         "%s: Zigbee2MQTT has not listed it and its address has no "
			         "friendly_name",
			         hd->id);
			return HEARTH_E_NOT_FOUND;
		}
		if ((rc = default_props(&tmp, hd->caps)))
			goto out;
	} else {
		name = d->name;
	}
	if (!cJSON_IsObject(args)) {
		snprintf(why, wl, "%s: the command must be a JSON object", hd->id);
		rc = HEARTH_E_INVALID;
		goto out;
	}
	if (!(body = cJSON_CreateObject())) {
		rc = -ENOMEM;
		goto out;
	}
	/* In the device's property order: {"state":"ON","brightness":76}. */
	for (int i = 0; i < (d ? d->nprops : tmp.nprops); i++) {
		const struct zprop *p = d ? &d->props[i] : &tmp.props[i];
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, p->hprop);
		cJSON *zv = NULL;

		if (!v || !p->writable || cJSON_GetObjectItemCaseSensitive(body, p->zprop))
			continue;
		if ((rc = from_hearth(d, p, v, &zv, why, wl)))
			goto out;
		if (zv && !cJSON_AddItemToObject(body, p->zprop, zv)) {
			cJSON_Delete(zv);
			rc = -ENOMEM;
			goto out;
		}
	}
	if (!body->child) {
		cJSON_ArrayForEach(a, args)
		{
			if (!skip_arg(a->string))
				break;
		}
		snprintf(why, wl, "%s (%s) takes none of the properties commanded%s%s", hd->id,
		         name, a ? ", e.g. " : "", a ? a->string : "");
		rc = HEARTH_E_INVALID;
		goto out;
	}
	snprintf(topic, sizeof(topic), "%s/%s/set", z->base, name);
	if (!(text = hearth_json_print(body))) {
		rc = -ENOMEM;
		goto out;
	}
	rc = hearth_pubs_add(pubs, topic, text);
	hearth_free(text);
out:
	for (int i = 0; i < tmp.nprops; i++) {
		hearth_free(tmp.props[i].zprop);
		cJSON_Delete(tmp.props[i].von);
		cJSON_Delete(tmp.props[i].voff);
	}
	cJSON_Delete(body);
	if (rc == -ENOMEM)
		snprintf(why, wl, "out of memory");
	return rc;
}
