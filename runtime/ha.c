/*
 * ha.c - the Home Assistant MQTT discovery binding (see ha.h).
 *
 * The binding owns one record per discovered entity: its hearth id, the
 * discovery topic it came from and its configuration in normal form (every
 * abbreviation expanded, "~" resolved), read again when a message or a
 * command needs it; the set of state topics subscribed so far (it only
 * grows: a stale subscription costs a message that nothing claims); and the
 * last brightness commanded per entity, so that a scale coarser than
 * percent still reads back the percentage asked for. It never does I/O:
 * subscriptions go through the callback it was given, commands come back to
 * the caller as a list of messages.
 */
#include "runtime/ha.h"

#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/id.h"
#include "platform/json.h"
#include "platform/log.h"
#include "recipes/capability.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PREFIX_MAX 64
#define TOPIC_MAX  256

enum comp { LIGHT, SWITCH, COVER, LOCK, CLIMATE, BINARY_SENSOR, SENSOR, NCOMP };

static const char *const comp_names[NCOMP] = {"light",   "switch",        "cover", "lock",
                                              "climate", "binary_sensor", "sensor"};

struct entity {
	char id[HEARTH_ID_MAX + 1];
	char *disc_topic; /* where its config came from */
	enum comp comp;
	cJSON *cfg; /* normal form */
	bool json_schema;
	const char *sensor_prop; /* binary_sensor / sensor: the hearth property */
	double cmd_bri_pct;      /* last brightness commanded, -1: none */
	long cmd_bri_raw;
};

struct hearth_ha {
	char prefix[PREFIX_MAX];
	size_t prefix_len;
	char sub[2][PREFIX_MAX + 16];
	const char *subs[3];
	int max_payload;
	hearth_room_fn room;
	void *room_ud;
	hearth_subscribe_fn subscribe;
	void *sub_ud;
	bool skip_z2m;
	const hearth_outbox *out;
	struct entity **ents;
	int n, cap;
	char **topics; /* subscribed state topics */
	int ntopics, topics_cap;
};

/* ==== Configuration: abbreviations and "~" ==== */

static const char *const abbrev[][2] = {
        {"act_t", "action_topic"},
        {"avty", "availability"},
        {"avty_mode", "availability_mode"},
        {"avty_t", "availability_topic"},
        {"avty_tpl", "availability_template"},
        {"bri_cmd_t", "brightness_command_topic"},
        {"bri_cmd_tpl", "brightness_command_template"},
        {"bri_scl", "brightness_scale"},
        {"bri_stat_t", "brightness_state_topic"},
        {"bri_val_tpl", "brightness_value_template"},
        {"clr_temp_cmd_t", "color_temp_command_topic"},
        {"clr_temp_stat_t", "color_temp_state_topic"},
        {"clr_temp_val_tpl", "color_temp_value_template"},
        {"clrm", "color_mode"},
        {"cmd_t", "command_topic"},
        {"cmd_tpl", "command_template"},
        {"curr_temp_t", "current_temperature_topic"},
        {"curr_temp_tpl", "current_temperature_template"},
        {"dev", "device"},
        {"dev_cla", "device_class"},
        {"json_attr_t", "json_attributes_topic"},
        {"json_attr_tpl", "json_attributes_template"},
        {"max_temp", "max_temp"},
        {"min_temp", "min_temp"},
        {"o", "origin"},
        {"obj_id", "object_id"},
        {"on_cmd_type", "on_command_type"},
        {"opt", "optimistic"},
        {"pl_avail", "payload_available"},
        {"pl_cls", "payload_close"},
        {"pl_lock", "payload_lock"},
        {"pl_not_avail", "payload_not_available"},
        {"pl_off", "payload_off"},
        {"pl_on", "payload_on"},
        {"pl_open", "payload_open"},
        {"pl_stop", "payload_stop"},
        {"pl_unlk", "payload_unlock"},
        {"pos_clsd", "position_closed"},
        {"pos_open", "position_open"},
        {"pos_t", "position_topic"},
        {"pos_tpl", "position_template"},
        {"set_pos_t", "set_position_topic"},
        {"set_pos_tpl", "set_position_template"},
        {"stat_clsd", "state_closed"},
        {"stat_locked", "state_locked"},
        {"stat_off", "state_off"},
        {"stat_on", "state_on"},
        {"stat_open", "state_open"},
        {"stat_t", "state_topic"},
        {"stat_tpl", "state_template"},
        {"stat_unlocked", "state_unlocked"},
        {"stat_val_tpl", "state_value_template"},
        {"sup_clrm", "supported_color_modes"},
        {"temp_cmd_t", "temperature_command_topic"},
        {"temp_cmd_tpl", "temperature_command_template"},
        {"temp_stat_t", "temperature_state_topic"},
        {"temp_stat_tpl", "temperature_state_template"},
        {"temp_unit", "temperature_unit"},
        {"uniq_id", "unique_id"},
        {"unit_of_meas", "unit_of_measurement"},
        {"val_tpl", "value_template"},
};

static const char *const abbrev_dev[][2] = {
        {"cns", "connections"},   {"cu", "configuration_url"}, {"hw", "hw_version"},
        {"ids", "identifiers"},   {"mf", "manufacturer"},      {"mdl", "model"},
        {"sa", "suggested_area"}, {"sw", "sw_version"},
};

static const char *const abbrev_avty[][2] = {
        {"t", "topic"},
        {"pl_avail", "payload_available"},
        {"pl_not_avail", "payload_not_available"},
        {"val_tpl", "value_template"},
};

/* Rename abbreviated keys of o (a full key already there wins). A renamed
 * item moves to the end of o, where the walk meets it again as a full key. */
static int
expand(cJSON *o, const char *const (*table)[2], size_t n)
{
	cJSON *it = o ? o->child : NULL;

	while (it) {
		cJSON *next = it->next;

		for (size_t i = 0; i < n; i++) {
			if (strcmp(it->string, table[i][0]) || !strcmp(table[i][0], table[i][1]))
				continue;
			if (cJSON_GetObjectItemCaseSensitive(o, table[i][1]))
				break;
			cJSON_DetachItemViaPointer(o, it);
			if (!cJSON_AddItemToObject(o, table[i][1], it)) {
				cJSON_Delete(it);
				return -ENOMEM;
			}
			break;
		}
		it = next;
	}
	return 0;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* "~/set" -> base "/set"; "state/~" -> "state/" base. */
static int
tilde(cJSON *item, const char *base)
{
	const char *v = item->valuestring;
	size_t n = strlen(v);
	char buf[TOPIC_MAX * 2];

	if (!n)
		return 0;
	if (v[0] == '~')
		snprintf(buf, sizeof(buf), "%s%s", base, v + 1);
	else if (v[n - 1] == '~')
		snprintf(buf, sizeof(buf), "%.*s%s", (int)(n - 1), v, base);
	else
		return 0;
	return cJSON_SetValuestring(item, buf) ? 0 : -ENOMEM;
}

/* Expand abbreviations and "~" as Home Assistant does. */
static int
normalize(cJSON *cfg)
{
	const cJSON *b;
	cJSON *it, *avty;
	int rc;

	if ((rc = expand(cfg, abbrev, sizeof(abbrev) / sizeof(abbrev[0]))) ||
	    (rc = expand(hearth_json_obj(cfg, "device"), abbrev_dev,
	                 sizeof(abbrev_dev) / sizeof(abbrev_dev[0]))))
		return rc;
	avty = hearth_json_arr(cfg, "availability");
	cJSON_ArrayForEach(it, avty)
	{
		if (cJSON_IsObject(it) &&
		    (rc = expand(it, abbrev_avty, sizeof(abbrev_avty) / sizeof(abbrev_avty[0]))))
			return rc;
	}
	b = cJSON_GetObjectItemCaseSensitive(cfg, "~");
	if (!cJSON_IsString(b) || !b->valuestring[0])
		return 0;
	cJSON_ArrayForEach(it, cfg)
	{
		if (cJSON_IsString(it) && ends_with(it->string, "topic") &&
		    (rc = tilde(it, b->valuestring)))
			return rc;
	}
	cJSON_ArrayForEach(it, avty)
	{
		cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "topic");

		if (cJSON_IsString(t) && (rc = tilde(t, b->valuestring)))
			return rc;
	}
	return 0;
}

static const char *
cstr(const cJSON *o, const char *key, const char *def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : def;
}

static double
cnum(const cJSON *o, const char *key, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* A payload option: a string, or a number / boolean as its text. */
static const char *
cpay(const cJSON *o, const char *key, const char *def, char *buf, size_t bl)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (cJSON_IsString(v))
		return v->valuestring;
	if (cJSON_IsNumber(v)) {
		snprintf(buf, bl, "%g", v->valuedouble);
		return buf;
	}
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v) ? "true" : "false";
	return def;
}

/* ==== Value templates ==== */

/* The value a template gives for payload, or NULL when it gives none (a
 * missing key). Templates other than the common forms give the raw payload. */
static cJSON *
tpl_eval(const char *tpl, const char *payload)
{
	char expr[256], *p, *end, *filters;
	cJSON *root = NULL, *res = NULL;
	const cJSON *cur;

	if (!tpl)
		return cJSON_CreateString(payload);
	while (isspace((unsigned char)*tpl))
		tpl++;
	if (strncmp(tpl, "{{", 2) || strlen(tpl) >= sizeof(expr))
		return cJSON_CreateString(payload);
	snprintf(expr, sizeof(expr), "%s", tpl + 2);
	end = strstr(expr, "}}");
	if (!end)
		return cJSON_CreateString(payload);
	for (p = end + 2; *p; p++)
		if (!isspace((unsigned char)*p))
			return cJSON_CreateString(payload);
	*end = '\0';
	filters = strchr(expr, '|');
	if (filters)
		*filters++ = '\0';
	p = expr;
	while (isspace((unsigned char)*p))
		p++;
	end = p + strlen(p);
	while (end > p && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (!strcmp(p, "value")) {
		res = cJSON_CreateString(payload);
	} else if (!strncmp(p, "value_json", 10)) {
		if (hearth_json_parse(payload, strlen(payload), &root, NULL, 0))
			return NULL; /* not JSON: nothing to take */
		cur = root;
		p += 10;
		while (*p && cur) {
			char key[64];
			size_t n;

			if (*p == '.') {
				n = strspn(p + 1,
				           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				           "0123456789_-");
				if (!n || n >= sizeof(key))
					goto raw;
				memcpy(key, p + 1, n);
				key[n] = '\0';
				p += 1 + n;
			} else if (p[0] == '[' && (p[1] == '\'' || p[1] == '"')) {
				char q = p[1], *close = strchr(p + 2, q);

				if (!close || close[1] != ']' ||
				    (size_t)(close - p - 2) >= sizeof(key))
					goto raw;
				n = (size_t)(close - p - 2);
				memcpy(key, p + 2, n);
				key[n] = '\0';
				p = close + 2;
			} else if (p[0] == '[' && isdigit((unsigned char)p[1])) {
				long idx = strtol(p + 1, &end, 10);

				if (*end != ']')
					goto raw;
				cur = cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, (int)idx) : NULL;
				p = end + 1;
				continue;
			} else {
				goto raw;
			}
			cur = cJSON_IsObject(cur) ? cJSON_GetObjectItemCaseSensitive(cur, key)
			                          : NULL;
		}
		if (!cur) {
			cJSON_Delete(root);
			return NULL;
		}
		res = cJSON_Duplicate(cur, 1);
		cJSON_Delete(root);
		root = NULL;
	} else {
		goto raw;
	}
	/* Filters: int, float, round(n), lower, upper; default(...) is a no-op. */
	while (res && filters) {
		char *next = strchr(filters, '|'), *f = filters;

		if (next)
			*next++ = '\0';
		while (isspace((unsigned char)*f))
			f++;
		end = f + strlen(f);
		while (end > f && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (!strcmp(f, "int") || !strcmp(f, "float") || !strncmp(f, "round", 5)) {
			double d;

			if (cJSON_IsNumber(res))
				d = res->valuedouble;
			else if (cJSON_IsString(res) && res->valuestring[0] &&
			         (d = strtod(res->valuestring, &end), !*end))
				;
			else if (cJSON_IsBool(res))
				d = cJSON_IsTrue(res);
			else
				d = 0; /* Jinja's int / float give 0 for what is not a number */
			if (f[0] == 'i')
				d = trunc(d);
			else if (f[0] == 'r') {
				int digits = 0;

				if (f[5] == '(')
					digits = atoi(f + 6);
				d = round(d * pow(10, digits)) / pow(10, digits);
			}
			cJSON_Delete(res);
			res = cJSON_CreateNumber(d);
		} else if ((!strcmp(f, "lower") || !strcmp(f, "upper")) && cJSON_IsString(res)) {
			for (char *c = res->valuestring; *c; c++)
				*c = (char)(f[0] == 'l' ? tolower((unsigned char)*c)
				                        : toupper((unsigned char)*c));
		} else if (strncmp(f, "default", 7)) {
			cJSON_Delete(res);
			return cJSON_CreateString(payload);
		}
		filters = next;
	}
	return res;
raw:
	cJSON_Delete(root);
	return cJSON_CreateString(payload);
}

/* v as a number (a number, or a string that is one). */
static bool
as_num(const cJSON *v, double *out)
{
	char *end;

	if (cJSON_IsNumber(v)) {
		*out = v->valuedouble;
		return true;
	}
	if (cJSON_IsString(v) && v->valuestring[0]) {
		*out = strtod(v->valuestring, &end);
		return !*end && isfinite(*out);
	}
	return false;
}

/* Does template value v say payload p? Strings compare exactly; numbers and
 * booleans by their text, booleans without regard to case (Jinja says True). */
static bool
says(const cJSON *v, const char *p)
{
	char buf[64];

	if (!v || !p)
		return false;
	if (cJSON_IsString(v))
		return !strcmp(v->valuestring, p);
	if (cJSON_IsBool(v))
		return !strcasecmp(cJSON_IsTrue(v) ? "true" : "false", p);
	if (cJSON_IsNumber(v)) {
		snprintf(buf, sizeof(buf), "%g", v->valuedouble);
		return !strcmp(buf, p);
	}
	return false;
}

/* ==== Entities ==== */

static void
entity_free(struct entity *e)
{
	if (!e)
		return;
	hearth_free(e->disc_topic);
	cJSON_Delete(e->cfg);
	hearth_free(e);
}

int
hearth_ha_new(const struct hearth_ha_opts *o, const hearth_outbox *out, hearth_ha **hp)
{
	hearth_ha *h;
	size_t n = o->prefix ? strlen(o->prefix) : 0;

	*hp = NULL;
	if (n == 0 || n >= PREFIX_MAX || strpbrk(o->prefix, "+#") || o->prefix[n - 1] == '/')
		return HEARTH_E_INVALID;
	if (!(h = hearth_calloc(1, sizeof(*h))))
		return -ENOMEM;
	memcpy(h->prefix, o->prefix, n + 1);
	h->prefix_len = n;
	snprintf(h->sub[0], sizeof(h->sub[0]), "%s/+/+/config", h->prefix);
	snprintf(h->sub[1], sizeof(h->sub[1]), "%s/+/+/+/config", h->prefix);
	h->subs[0] = h->sub[0];
	h->subs[1] = h->sub[1];
	h->max_payload = o->max_payload > 0 ? o->max_payload : 65536;
	h->room = o->room;
	h->room_ud = o->room_ud;
	h->subscribe = o->subscribe;
	h->sub_ud = o->sub_ud;
	h->skip_z2m = o->skip_z2m;
	h->out = out;
	*hp = h;
	return 0;
}

void
hearth_ha_free(hearth_ha *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->n; i++)
		entity_free(h->ents[i]);
	hearth_free(h->ents);
	for (int i = 0; i < h->ntopics; i++)
		hearth_free(h->topics[i]);
	hearth_free(h->topics);
	hearth_free(h);
}

const char *const *
hearth_ha_subscriptions(const hearth_ha *h)
{
	return h->subs;
}

int
hearth_ha_count(const hearth_ha *h)
{
	return h->n;
}

void
hearth_ha_each_topic(const hearth_ha *h, hearth_subscribe_fn fn, void *ud)
{
	for (int i = 0; i < h->ntopics; i++)
		fn(ud, h->topics[i]);
}

static bool
known_topic(const hearth_ha *h, const char *topic)
{
	for (int i = 0; i < h->ntopics; i++)
		if (!strcmp(h->topics[i], topic))
			return true;
	return false;
}

bool
hearth_ha_owns(const hearth_ha *h, const char *topic)
{
	return (!strncmp(topic, h->prefix, h->prefix_len) && topic[h->prefix_len] == '/') ||
	       known_topic(h, topic);
}

static int
learn_topic(hearth_ha *h, const char *topic)
{
	char *t;

	if (!topic || known_topic(h, topic))
		return 0;
	if (h->ntopics == h->topics_cap) {
		int ncap = h->topics_cap ? h->topics_cap * 2 : 16;
		char **nt = hearth_realloc(h->topics, (size_t)ncap * sizeof(*nt));

		if (!nt)
			return -ENOMEM;
		h->topics = nt;
		h->topics_cap = ncap;
	}
	if (!(t = hearth_strdup(topic)))
		return -ENOMEM;
	h->topics[h->ntopics++] = t;
	if (h->subscribe)
		h->subscribe(h->sub_ud, topic);
	return 0;
}

/* The topics an entity reads. */
static const char *const state_keys[] = {
        "state_topic",        "brightness_state_topic",  "color_temp_state_topic",
        "position_topic",     "temperature_state_topic", "current_temperature_topic",
        "availability_topic",
};

static struct entity *
by_disc(const hearth_ha *h, const char *topic, int *index)
{
	for (int i = 0; i < h->n; i++)
		if (!strcmp(h->ents[i]->disc_topic, topic)) {
			if (index)
				*index = i;
			return h->ents[i];
		}
	return NULL;
}

static struct entity *
by_id(const hearth_ha *h, const char *id)
{
	for (int i = 0; i < h->n; i++)
		if (!strcmp(h->ents[i]->id, id))
			return h->ents[i];
	return NULL;
}

static void
remove_at(hearth_ha *h, int i, bool announce)
{
	struct entity *e = h->ents[i];

	if (announce) {
		LOG_INFO("ha", "entity %s removed (%s)", e->id, e->disc_topic);
		hearth_eco_post(h->out, HEARTH_MSG_DEVICE_META, e->id, NULL, false);
	}
	entity_free(e);
	memmove(&h->ents[i], &h->ents[i + 1], (size_t)(h->n - i - 1) * sizeof(h->ents[0]));
	h->n--;
}

/* "ha." + unique_id with characters outside [A-Za-z0-9_.-] as '_'; a long one
 * is cut and ends in a hash of the whole, so ids stay distinct. */
static void
make_id(const char *uid, char *id, size_t len)
{
	size_t n = strlen(uid), keep = n;
	uint64_t hash = 1469598103934665603ULL;
	char *p;

	if (n + 3 > HEARTH_ID_MAX) {
		for (size_t i = 0; i < n; i++)
			hash = (hash ^ (unsigned char)uid[i]) * 1099511628211ULL;
		keep = HEARTH_ID_MAX - 3 - 17;
	}
	snprintf(id, len, "ha.%.*s", (int)keep, uid);
	for (p = id + 3; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
			*p = '_';
	if (keep < n)
		snprintf(id + 3 + keep, len - 3 - keep, "-%016llx", (unsigned long long)hash);
}

/* Capabilities (and, for sensors, the hearth property) of a config. */
static hearth_capset
caps_of(struct entity *e)
{
	const cJSON *c = e->cfg;
	const char *dc = cstr(c, "device_class", "");
	hearth_capset caps = 0;

#define CAP(name) (1u << hearth_capability_find(name))
	switch (e->comp) {
	case LIGHT: {
		const cJSON *modes = hearth_json_arr(c, "supported_color_modes"), *m;
		bool bri = false, ct = false;

		caps |= CAP("light.on_off");
		if (e->json_schema) {
			hearth_json_get_bool(c, "brightness", &bri);
			hearth_json_get_bool(c, "color_temp", &ct);
			cJSON_ArrayForEach(m, modes)
			{
				if (cJSON_IsString(m) && strcmp(m->valuestring, "onoff"))
					bri = true;
				if (cJSON_IsString(m) && !strcmp(m->valuestring, "color_temp"))
					ct = true;
			}
		} else {
			bri = cstr(c, "brightness_command_topic", NULL) != NULL;
			ct = cstr(c, "color_temp_command_topic", NULL) != NULL;
		}
		if (bri)
			caps |= CAP("light.brightness");
		if (ct)
			caps |= CAP("light.color_temp");
		break;
	}
	case SWITCH:
		caps |= CAP("switch.on_off");
		break;
	case COVER:
		if (cstr(c, "set_position_topic", NULL))
			caps |= CAP("cover.position");
		break;
	case LOCK:
		caps |= CAP("lock.lock");
		break;
	case CLIMATE:
		if (cstr(c, "temperature_command_topic", NULL))
			caps |= CAP("climate.setpoint");
		if (cstr(c, "current_temperature_topic", NULL))
			caps |= CAP("sensor.temperature");
		break;
	case BINARY_SENSOR:
		if (!strcmp(dc, "motion")) {
			e->sensor_prop = "motion";
			caps |= CAP("sensor.motion");
		} else if (!strcmp(dc, "occupancy") || !strcmp(dc, "presence")) {
			e->sensor_prop = "occupancy";
			caps |= CAP("sensor.occupancy");
		} else if (!strcmp(dc, "door") || !strcmp(dc, "window") || !strcmp(dc, "opening") ||
		           !strcmp(dc, "garage_door")) {
			e->sensor_prop = "contact";
			caps |= CAP("sensor.contact");
		}
		break;
	case SENSOR:
		if (!strcmp(dc, "temperature")) {
			e->sensor_prop = "temperature";
			caps |= CAP("sensor.temperature");
		} else if (!strcmp(dc, "illuminance")) {
			e->sensor_prop = "illuminance";
			caps |= CAP("sensor.illuminance");
		}
		break;
	default:
		break;
	}
#undef CAP
	return caps;
}

static const char *
kind_of(enum comp c)
{
	static const char *const kinds[NCOMP] = {"light",   "switch", "cover", "lock",
	                                         "climate", "sensor", "sensor"};

	return kinds[c];
}

static cJSON *
make_meta(const hearth_ha *h, const struct entity *e, hearth_capset caps)
{
	const cJSON *dev = hearth_json_obj(e->cfg, "device");
	const char *name = cstr(e->cfg, "name", cstr(dev, "name", NULL));
	const char *room = h->room ? h->room(h->room_ud, e->id) : NULL;
	cJSON *m = cJSON_CreateObject(), *arr, *addr;

	if (!m)
		return NULL;
	if (!room)
		room = cstr(dev, "suggested_area", NULL);
	if ((name && !cJSON_AddStringToObject(m, "name", name)) ||
	    (room && !cJSON_AddStringToObject(m, "room", room)) ||
	    !cJSON_AddStringToObject(m, "kind", kind_of(e->comp)) ||
	    !(arr = cJSON_AddArrayToObject(m, "capabilities")))
		goto oom;
	for (int i = 0; i < hearth_capability_count(); i++)
		if ((caps & (1u << i)) &&
		    !cJSON_AddItemToArray(arr, cJSON_CreateString(hearth_capability_at(i)->name)))
			goto oom;
	if (!cJSON_AddStringToObject(m, "transport", "ha") ||
	    !(addr = cJSON_AddObjectToObject(m, "address")) ||
	    !cJSON_AddStringToObject(addr, "discovery_topic", e->disc_topic))
		goto oom;
	return m;
oom:
	/* Never a partial announcement. */
	cJSON_Delete(m);
	return NULL;
}

/* Is this config one Zigbee2MQTT publishes for its own devices? */
static bool
from_z2m(const cJSON *cfg, const char *uid)
{
	const char *origin = cstr(hearth_json_obj(cfg, "origin"), "name", "");

	return !strcasecmp(origin, "Zigbee2MQTT") || ends_with(uid, "_zigbee2mqtt");
}

static int
check_topics(const cJSON *cfg, char *why, size_t wl)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, cfg)
	{
		if (!ends_with(it->string, "topic"))
			continue;
		if (!cJSON_IsString(it) || !it->valuestring[0] ||
		    strlen(it->valuestring) >= TOPIC_MAX || strpbrk(it->valuestring, "+#")) {
			snprintf(why, wl,
			         "%s must be a topic without + or # (at most %d characters)",
			         it->string, TOPIC_MAX - 1);
			return HEARTH_E_INVALID;
		}
	}
	return 0;
}

static void
on_config(hearth_ha *h, const char *topic, enum comp comp, const char *text, int len)
{
	struct entity *e = NULL, *old;
	cJSON *cfg = NULL, *meta = NULL;
	const char *uid, *schema;
	char why[192], id[HEARTH_ID_MAX + 1];
	hearth_capset caps;
	int rc, oi = -1;

	old = by_disc(h, topic, &oi);
	if (len == 0) {
		/* An empty retained config: the entity is gone. */
		if (old)
			remove_at(h, oi, true);
		return;
	}
	rc = hearth_json_parse(text, (size_t)len, &cfg, why, sizeof(why));
	if (rc) {
		hearth_post_error(h->out, rc == HEARTH_E_BAD_JSON ? "bad_json" : "internal", topic,
		                  rc == HEARTH_E_BAD_JSON ? why : "out of memory");
		return;
	}
	if (!cJSON_IsObject(cfg)) {
		snprintf(why, sizeof(why), "a discovery config must be a JSON object, not %s",
		         hearth_json_type_name(cfg));
		goto bad;
	}
	if ((rc = normalize(cfg))) {
		snprintf(why, sizeof(why), "out of memory");
		goto bad;
	}
	uid = cstr(cfg, "unique_id", NULL);
	if (!uid) {
		snprintf(why, sizeof(why),
		         "no unique_id: Home Assistant registers only entities with one; add "
		         "\"uniq_id\" to the config");
		goto bad;
	}
	if (h->skip_z2m && from_z2m(cfg, uid)) {
		LOG_DEBUG("ha", "%s: a Zigbee2MQTT entity, taken from Zigbee2MQTT itself", topic);
		cJSON_Delete(cfg);
		return;
	}
	if (check_topics(cfg, why, sizeof(why)))
		goto bad;
	make_id(uid, id, sizeof(id));
	{
		const struct entity *other = by_id(h, id);

		if (other && other != old) {
			snprintf(why, sizeof(why),
			         "unique_id \"%.60s\" is already used by %s; ignored", uid,
			         other->disc_topic);
			goto bad;
		}
	}
	if (!(e = hearth_calloc(1, sizeof(*e))) || !(e->disc_topic = hearth_strdup(topic))) {
		snprintf(why, sizeof(why), "out of memory");
		goto bad;
	}
	memcpy(e->id, id, sizeof(id));
	e->comp = comp;
	e->cfg = cfg;
	cfg = NULL;
	e->cmd_bri_pct = -1;
	schema = cstr(e->cfg, "schema", "default");
	e->json_schema = comp == LIGHT && !strcmp(schema, "json");
	if (comp == LIGHT && strcmp(schema, "default") && strcmp(schema, "basic") &&
	    !e->json_schema) {
		snprintf(why, sizeof(why),
		         "light schema \"%.20s\" is not supported (default, json)", schema);
		goto bad;
	}
	caps = caps_of(e);
	if (!caps) {
		/* A battery level, a button...: nothing hearth plans with. */
		LOG_DEBUG("ha", "%s: no capability hearth uses; left out", topic);
		if (old)
			remove_at(h, oi, true);
		entity_free(e);
		return;
	}
	if (!(meta = make_meta(h, e, caps))) {
		snprintf(why, sizeof(why), "out of memory");
		goto bad;
	}
	for (size_t i = 0; i < sizeof(state_keys) / sizeof(state_keys[0]); i++)
		if (learn_topic(h, cstr(e->cfg, state_keys[i], NULL)))
			goto oom;
	{
		const cJSON *a;

		cJSON_ArrayForEach(a, hearth_json_arr(e->cfg, "availability"))
		{
			if (learn_topic(h, cstr(a, "topic", NULL)))
				goto oom;
		}
	}
	if (old) {
		if (strcmp(old->id, e->id))
			hearth_eco_post(h->out, HEARTH_MSG_DEVICE_META, old->id, NULL, false);
		e->cmd_bri_pct = old->cmd_bri_pct;
		e->cmd_bri_raw = old->cmd_bri_raw;
		entity_free(old);
		h->ents[oi] = e;
	} else {
		if (h->n == h->cap) {
			int ncap = h->cap ? h->cap * 2 : 16;
			struct entity **ne = hearth_realloc(h->ents, (size_t)ncap * sizeof(*ne));

			if (!ne)
				goto oom;
			h->ents = ne;
			h->cap = ncap;
		}
		h->ents[h->n++] = e;
	}
	LOG_DEBUG("ha", "entity %s from %s", e->id, topic);
	hearth_eco_post(h->out, HEARTH_MSG_DEVICE_META, e->id, meta, false);
	return;
oom:
	snprintf(why, sizeof(why), "out of memory");
bad:
	hearth_post_error(h->out, "bad_request", topic, why);
	cJSON_Delete(meta);
	cJSON_Delete(cfg);
	entity_free(e);
}

/* ==== State ==== */

static void
put(cJSON *st, const char *prop, cJSON *v)
{
	if (!v)
		return;
	if (!(cJSON_GetObjectItemCaseSensitive(st, prop)
	              ? cJSON_ReplaceItemInObjectCaseSensitive(st, prop, v)
	              : cJSON_AddItemToObject(st, prop, v)))
		cJSON_Delete(v);
}

static cJSON *
bri_pct(struct entity *e, double raw)
{
	double scale = cnum(e->cfg, "brightness_scale", 255), pct;

	if (scale <= 0)
		scale = 255;
	if (e->cmd_bri_pct >= 0 && lround(raw) == e->cmd_bri_raw)
		return cJSON_CreateNumber(e->cmd_bri_pct);
	pct = round(raw * 100.0 / scale);
	return cJSON_CreateNumber(pct < 0 ? 0 : pct > 100 ? 100 : pct);
}

static cJSON *
kelvin_of(const struct entity *e, double v)
{
	bool kelvin = false;

	hearth_json_get_bool(e->cfg, "color_temp_kelvin", &kelvin);
	if (kelvin)
		return cJSON_CreateNumber(round(v));
	return v > 0 ? cJSON_CreateNumber(round(1e6 / v)) : NULL;
}

/* Degrees Celsius of v in the entity's unit. */
static double
celsius(const struct entity *e, double v)
{
	const char *u = cstr(e->cfg, "temperature_unit", cstr(e->cfg, "unit_of_measurement", "C"));

	if (!strcmp(u, "F") || !strcmp(u, "°F"))
		return round((v - 32) * 50.0 / 9.0) / 10.0;
	return v;
}

/* The value of a template key over payload (NULL: none). */
static cJSON *
val(const struct entity *e, const char *tpl_key, const char *payload)
{
	return tpl_eval(cstr(e->cfg, tpl_key, NULL), payload);
}

static void
state_light(struct entity *e, const char *topic, const char *payload, cJSON *st)
{
	char b1[32], b2[32];
	const char *on = cpay(e->cfg, "payload_on", "ON", b1, sizeof(b1));
	const char *off = cpay(e->cfg, "payload_off", "OFF", b2, sizeof(b2));
	cJSON *v;
	double d;

	if (e->json_schema) {
		cJSON *js, *s;

		if (strcmp(topic, cstr(e->cfg, "state_topic", "")) ||
		    hearth_json_parse(payload, strlen(payload), &js, NULL, 0))
			return;
		s = cJSON_GetObjectItemCaseSensitive(js, "state");
		if (says(s, "ON") || says(s, "OFF"))
			put(st, "on", cJSON_CreateBool(says(s, "ON")));
		if (as_num(cJSON_GetObjectItemCaseSensitive(js, "brightness"), &d))
			put(st, "brightness", bri_pct(e, d));
		if (as_num(cJSON_GetObjectItemCaseSensitive(js, "color_temp"), &d))
			put(st, "color_temp", kelvin_of(e, d));
		cJSON_Delete(js);
		return;
	}
	if (!strcmp(topic, cstr(e->cfg, "state_topic", ""))) {
		v = val(e, "state_value_template", payload);
		if (says(v, on) || says(v, off))
			put(st, "on", cJSON_CreateBool(says(v, on)));
		cJSON_Delete(v);
	}
	if (!strcmp(topic, cstr(e->cfg, "brightness_state_topic", ""))) {
		v = val(e, "brightness_value_template", payload);
		if (as_num(v, &d))
			put(st, "brightness", bri_pct(e, d));
		cJSON_Delete(v);
	}
	if (!strcmp(topic, cstr(e->cfg, "color_temp_state_topic", ""))) {
		v = val(e, "color_temp_value_template", payload);
		if (as_num(v, &d))
			put(st, "color_temp", kelvin_of(e, d));
		cJSON_Delete(v);
	}
}

static void
state_other(struct entity *e, const char *topic, const char *payload, cJSON *st)
{
	char b1[32], b2[32];
	const char *on, *off;
	cJSON *v = NULL;
	double d;
	bool is_state = !strcmp(topic, cstr(e->cfg, "state_topic", ""));

	switch (e->comp) {
	case SWITCH:
		if (!is_state)
			break;
		on = cpay(e->cfg, "state_on", cpay(e->cfg, "payload_on", "ON", b1, sizeof(b1)), b1,
		          sizeof(b1));
		off = cpay(e->cfg, "state_off", cpay(e->cfg, "payload_off", "OFF", b2, sizeof(b2)),
		           b2, sizeof(b2));
		v = val(e, "value_template", payload);
		if (says(v, on) || says(v, off))
			put(st, "on", cJSON_CreateBool(says(v, on)));
		break;
	case COVER: {
		double open = cnum(e->cfg, "position_open", 100);
		double closed = cnum(e->cfg, "position_closed", 0);

		if (!strcmp(topic, cstr(e->cfg, "position_topic", ""))) {
			v = val(e, "position_template", payload);
			if (as_num(v, &d) && open != closed) {
				double pct = round((d - closed) * 100.0 / (open - closed));

				put(st, "position",
				    cJSON_CreateNumber(pct < 0     ? 0
				                       : pct > 100 ? 100
				                                   : pct));
			}
		} else if (is_state && !cstr(e->cfg, "position_topic", NULL)) {
			/* No position topic: open and closed are the ends. */
			v = val(e, "value_template", payload);
			if (says(v, cstr(e->cfg, "state_closed", "closed")))
				put(st, "position", cJSON_CreateNumber(0));
			else if (says(v, cstr(e->cfg, "state_open", "open")))
				put(st, "position", cJSON_CreateNumber(100));
		}
		break;
	}
	case LOCK:
		if (!is_state)
			break;
		v = val(e, "value_template", payload);
		if (says(v, cpay(e->cfg, "state_locked", "LOCKED", b1, sizeof(b1))))
			put(st, "locked", cJSON_CreateTrue());
		else if (says(v, cpay(e->cfg, "state_unlocked", "UNLOCKED", b2, sizeof(b2))))
			put(st, "locked", cJSON_CreateFalse());
		break;
	case CLIMATE:
		if (!strcmp(topic, cstr(e->cfg, "temperature_state_topic", ""))) {
			v = val(e, "temperature_state_template", payload);
			if (as_num(v, &d))
				put(st, "setpoint", cJSON_CreateNumber(celsius(e, d)));
			cJSON_Delete(v);
			v = NULL;
		}
		if (!strcmp(topic, cstr(e->cfg, "current_temperature_topic", ""))) {
			v = val(e, "current_temperature_template", payload);
			if (as_num(v, &d))
				put(st, "temperature", cJSON_CreateNumber(celsius(e, d)));
		}
		break;
	case BINARY_SENSOR:
		if (!is_state)
			break;
		on = cpay(e->cfg, "payload_on", "ON", b1, sizeof(b1));
		off = cpay(e->cfg, "payload_off", "OFF", b2, sizeof(b2));
		v = val(e, "value_template", payload);
		if (says(v, on) || says(v, off)) {
			bool b = says(v, on);

			/* HA's door ON is open; hearth's contact is Zigbee2MQTT's:
			 * true when closed. */
			if (!strcmp(e->sensor_prop, "contact"))
				b = !b;
			put(st, e->sensor_prop, cJSON_CreateBool(b));
		}
		break;
	case SENSOR:
		if (!is_state)
			break;
		v = val(e, "value_template", payload);
		if (as_num(v, &d))
			put(st, e->sensor_prop,
			    cJSON_CreateNumber(
			            !strcmp(e->sensor_prop, "temperature") ? celsius(e, d) : d));
		break;
	default:
		break;
	}
	cJSON_Delete(v);
}

static void
avail_of(hearth_ha *h, struct entity *e, const char *topic, const char *payload)
{
	char b1[32], b2[32];
	const cJSON *a;
	cJSON *v;

	if (!strcmp(topic, cstr(e->cfg, "availability_topic", ""))) {
		v = val(e, "availability_template", payload);
		if (says(v, cpay(e->cfg, "payload_available", "online", b1, sizeof(b1))))
			hearth_eco_post(h->out, HEARTH_MSG_DEVICE_AVAIL, e->id, NULL, true);
		else if (says(v, cpay(e->cfg, "payload_not_available", "offline", b2, sizeof(b2))))
			hearth_eco_post(h->out, HEARTH_MSG_DEVICE_AVAIL, e->id, NULL, false);
		cJSON_Delete(v);
	}
	cJSON_ArrayForEach(a, hearth_json_arr(e->cfg, "availability"))
	{
		if (strcmp(topic, cstr(a, "topic", "")))
			continue;
		v = tpl_eval(cstr(a, "value_template", NULL), payload);
		if (says(v, cpay(a, "payload_available", "online", b1, sizeof(b1))))
			hearth_eco_post(h->out, HEARTH_MSG_DEVICE_AVAIL, e->id, NULL, true);
		else if (says(v, cpay(a, "payload_not_available", "offline", b2, sizeof(b2))))
			hearth_eco_post(h->out, HEARTH_MSG_DEVICE_AVAIL, e->id, NULL, false);
		cJSON_Delete(v);
	}
}

/* A state or availability message for every entity that reads topic. */
static bool
on_state(hearth_ha *h, const char *topic, const char *payload, int len)
{
	bool any = false;

	for (int i = 0; i < h->n; i++) {
		struct entity *e = h->ents[i];
		bool reads = false;
		cJSON *st;

		for (size_t k = 0; k < sizeof(state_keys) / sizeof(state_keys[0]) && !reads; k++)
			reads = !strcmp(topic, cstr(e->cfg, state_keys[k], ""));
		if (!reads) {
			const cJSON *a;

			cJSON_ArrayForEach(a, hearth_json_arr(e->cfg, "availability"))
			{
				reads = reads || !strcmp(topic, cstr(a, "topic", ""));
			}
		}
		if (!reads)
			continue;
		any = true;
		if (len == 0)
			continue; /* a cleared retained message says nothing */
		avail_of(h, e, topic, payload);
		if (!(st = cJSON_CreateObject()))
			continue;
		if (e->comp == LIGHT)
			state_light(e, topic, payload, st);
		else
			state_other(e, topic, payload, st);
		if (st->child)
			hearth_eco_post(h->out, HEARTH_MSG_DEVICE_STATE, e->id, st, false);
		else
			cJSON_Delete(st);
	}
	return any;
}

/* <prefix>/<component>/[<node_id>/]<object_id>/config: the component, or -1. */
static int
disc_component(const hearth_ha *h, const char *topic)
{
	const char *rest = topic + h->prefix_len + 1, *slash = strchr(rest, '/');
	int parts = 1;

	if (!slash || !ends_with(topic, "/config"))
		return -1;
	for (const char *p = rest; *p; p++)
		parts += *p == '/';
	if (parts != 3 && parts != 4)
		return -1;
	for (int c = 0; c < NCOMP; c++)
		if (strlen(comp_names[c]) == (size_t)(slash - rest) &&
		    !strncmp(rest, comp_names[c], (size_t)(slash - rest)))
			return c;
	return NCOMP; /* a discovery topic of a component hearth does not map */
}

bool
hearth_ha_on_message(hearth_ha *h, const char *topic, const void *payload, int len, int64_t now)
{
	bool under = !strncmp(topic, h->prefix, h->prefix_len) && topic[h->prefix_len] == '/';
	int comp = under ? disc_component(h, topic) : -1;
	char *text, why[128];
	bool took;

	(void)now;
	if (!under && !known_topic(h, topic))
		return false;
	if (comp == NCOMP)
		return true;
	if (len > h->max_payload) {
		snprintf(why, sizeof(why), "payload of %d bytes; the limit is %d", len,
		         h->max_payload);
		hearth_post_error(h->out, "too_large", topic, why);
		return true;
	}
	if (!(text = hearth_eco_text(payload, len))) {
		hearth_post_error(h->out, "internal", topic, "out of memory");
		return true;
	}
	if (comp >= 0) {
		on_config(h, topic, (enum comp)comp, text, len);
		took = true;
	} else {
		took = on_state(h, topic, text, len) || under;
	}
	hearth_free(text);
	return took;
}

/* ==== Commands ==== */

static void
num_text(double v, char *buf, size_t len)
{
	if (v == (double)(long long)v)
		snprintf(buf, len, "%lld", (long long)v);
	else
		snprintf(buf, len, "%g", v);
}

static int
cmd_light(struct entity *e, const cJSON *args, struct hearth_pubs *pubs, char *why, size_t wl)
{
	const cJSON *on = cJSON_GetObjectItemCaseSensitive(args, "on");
	const cJSON *bri = cJSON_GetObjectItemCaseSensitive(args, "brightness");
	const cJSON *ct = cJSON_GetObjectItemCaseSensitive(args, "color_temp");
	const char *cmd_t = cstr(e->cfg, "command_topic", NULL);
	double scale = cnum(e->cfg, "brightness_scale", 255);
	bool kelvin = false;
	char b1[32], b2[32], num[32];
	long raw = -1, ct_raw = -1;
	int rc;

	if (scale <= 0)
		scale = 255;
	hearth_json_get_bool(e->cfg, "color_temp_kelvin", &kelvin);
	if (bri && cJSON_IsNumber(bri) && (!on || cJSON_IsTrue(on)) &&
	    (e->json_schema || cstr(e->cfg, "brightness_command_topic", NULL))) {
		raw = lround(bri->valuedouble * scale / 100.0);
		e->cmd_bri_pct = bri->valuedouble;
		e->cmd_bri_raw = raw;
	}
	if (ct && cJSON_IsNumber(ct) && ct->valuedouble > 0 && (!on || cJSON_IsTrue(on)) &&
	    (e->json_schema || cstr(e->cfg, "color_temp_command_topic", NULL)))
		ct_raw = kelvin ? lround(ct->valuedouble) : lround(1e6 / ct->valuedouble);
	if (e->json_schema) {
		cJSON *b = cJSON_CreateObject();
		char *text;

		if (!b)
			return -ENOMEM;
		if (on || raw >= 0)
			cJSON_AddStringToObject(b, "state", !on || cJSON_IsTrue(on) ? "ON" : "OFF");
		if (raw >= 0)
			cJSON_AddNumberToObject(b, "brightness", (double)raw);
		if (ct_raw >= 0)
			cJSON_AddNumberToObject(b, "color_temp", (double)ct_raw);
		text = b->child && cmd_t ? hearth_json_print(b) : NULL;
		cJSON_Delete(b);
		if (!text) {
			snprintf(why, wl,
			         "%s: nothing to send (no command_topic, or no on / "
			         "brightness)",
			         e->id);
			return HEARTH_E_INVALID;
		}
		rc = hearth_pubs_add(pubs, cmd_t, text);
		hearth_free(text);
		return rc;
	} else {
		const char *type = cstr(e->cfg, "on_command_type", "last");
		const char *pon = cpay(e->cfg, "payload_on", "ON", b1, sizeof(b1));
		const char *poff = cpay(e->cfg, "payload_off", "OFF", b2, sizeof(b2));
		bool send_on = on && cJSON_IsTrue(on) && !(raw >= 0 && !strcmp(type, "brightness"));

		if (on && cJSON_IsFalse(on))
			return cmd_t ? hearth_pubs_add(pubs, cmd_t, poff) : HEARTH_E_INVALID;
		if (send_on && cmd_t && !strcmp(type, "first") &&
		    (rc = hearth_pubs_add(pubs, cmd_t, pon)))
			return rc;
		if (raw >= 0) {
			num_text((double)raw, num, sizeof(num));
			if ((rc = hearth_pubs_add(
			             pubs, cstr(e->cfg, "brightness_command_topic", ""), num)))
				return rc;
		}
		if (ct_raw >= 0) {
			num_text((double)ct_raw, num, sizeof(num));
			if ((rc = hearth_pubs_add(
			             pubs, cstr(e->cfg, "color_temp_command_topic", ""), num)))
				return rc;
		}
		if (send_on && cmd_t && strcmp(type, "first") &&
		    (rc = hearth_pubs_add(pubs, cmd_t, pon)))
			return rc;
	}
	return 0;
}

int
hearth_ha_command(hearth_ha *h, const struct hearth_device *d, const cJSON *args,
                  struct hearth_pubs *pubs, char *why, size_t wl)
{
	struct entity *e = by_id(h, d->id);
	const char *cmd_t, *t;
	char b1[32], num[32];
	const cJSON *v;
	int rc = 0, before = pubs->n;

	why[0] = '\0';
	if (!e) {
		snprintf(why, wl,
		         "%s: its Home Assistant discovery config has not been seen "
		         "since hearthd started",
		         d->id);
		return HEARTH_E_NOT_FOUND;
	}
	if (!cJSON_IsObject(args)) {
		snprintf(why, wl, "%s: the command must be a JSON object", d->id);
		return HEARTH_E_INVALID;
	}
	cJSON_ArrayForEach(v, args)
	{
		if (hearth_capability_check_value(v->string, v, why, wl))
			return HEARTH_E_INVALID;
	}
	cmd_t = cstr(e->cfg, "command_topic", NULL);
	switch (e->comp) {
	case LIGHT:
		rc = cmd_light(e, args, pubs, why, wl);
		break;
	case SWITCH:
		v = cJSON_GetObjectItemCaseSensitive(args, "on");
		if (v && cmd_t)
			rc = hearth_pubs_add(
			        pubs, cmd_t,
			        cJSON_IsTrue(v)
			                ? cpay(e->cfg, "payload_on", "ON", b1, sizeof(b1))
			                : cpay(e->cfg, "payload_off", "OFF", b1, sizeof(b1)));
		break;
	case COVER:
		v = cJSON_GetObjectItemCaseSensitive(args, "position");
		t = cstr(e->cfg, "set_position_topic", NULL);
		if (v && t) {
			double open = cnum(e->cfg, "position_open", 100);
			double closed = cnum(e->cfg, "position_closed", 0);

			num_text(round(closed + v->valuedouble * (open - closed) / 100.0), num,
			         sizeof(num));
			rc = hearth_pubs_add(pubs, t, num);
		}
		break;
	case LOCK:
		v = cJSON_GetObjectItemCaseSensitive(args, "locked");
		if (v && cmd_t)
			rc = hearth_pubs_add(
			        pubs, cmd_t,
			        cJSON_IsTrue(v)
			                ? cpay(e->cfg, "payload_lock", "LOCK", b1, sizeof(b1))
			                : cpay(e->cfg, "payload_unlock", "UNLOCK", b1, sizeof(b1)));
		break;
	case CLIMATE: {
		const char *u = cstr(e->cfg, "temperature_unit", "C");

		v = cJSON_GetObjectItemCaseSensitive(args, "setpoint");
		t = cstr(e->cfg, "temperature_command_topic", NULL);
		if (v && t) {
			double sp = v->valuedouble;

			if (!strcmp(u, "F") || !strcmp(u, "°F"))
				sp = round(sp * 9.0 / 5.0 + 32);
			num_text(sp, num, sizeof(num));
			rc = hearth_pubs_add(pubs, t, num);
		}
		break;
	}
	default:
		break;
	}
	if (rc) {
		if (rc == -ENOMEM)
			snprintf(why, wl, "out of memory");
		else if (rc == HEARTH_E_FULL)
			snprintf(why, wl, "%s: too many messages for one command", d->id);
		else if (!why[0])
			snprintf(why, wl, "%s: cannot command this entity", d->id);
		return rc;
	}
	if (pubs->n == before) {
		snprintf(why, wl, "%s (%s): no command topic takes the properties commanded", d->id,
		         comp_names[e->comp]);
		return HEARTH_E_INVALID;
	}
	return 0;
}
