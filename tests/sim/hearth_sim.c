/*
 * hearth_sim.c - hearth-sim, a simulated home of native hearth devices on MQTT.
 *
 * The simulator reads a home file (tests/sim/README.md describes it), connects
 * to a broker as one MQTT v5 client and makes every device of the file behave
 * like a real native device of wire protocol v1 (DESIGN.md section 4): it
 * announces meta, availability and state (all retained), takes commands on
 * <p>/device/<id>/set, applies the properties of the device's capabilities
 * after the device's latency and reports the whole new state. Test drivers
 * flip a device's availability or press its own button on
 * hearth-sim/<home>/<id>/availability and hearth-sim/<home>/<id>/state, and
 * read what happened in a JSON-lines log (--log).
 *
 * Everything runs in one thread. The loop waits in mosquitto_loop() at most
 * until the next scheduled device action (never more than 100 ms), so the
 * only timers are a list of pending actions sorted by due time and the
 * reconnect deadline; nothing ever sleeps. The program owns the device table,
 * the pending actions and the log file. It must never trust a payload: sizes
 * are bounded, bytes are copied to a NUL-terminated buffer before cJSON sees
 * them, and every value is type-checked before it touches a device.
 */
#include <cjson/cJSON.h>
#include <mosquitto.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ==== Limits ==== */

#define ID_MAX         64          /* device and home ids, DESIGN section 4 */
#define MAX_DEVICES    10000       /* keeps announce message ids below 16 bits */
#define MAX_PAYLOAD    (64 * 1024) /* larger commands are refused, not parsed */
#define MAX_HOME_FILE  (16 << 20)  /* home files larger than this are refused */
#define MAX_PENDING    10000       /* commands waiting for their latency */
#define MAX_LATENCY_MS 600000      /* ten minutes */
#define LOOP_CAP_MS    100         /* longest wait in the loop */
#define BACKOFF_MIN_MS 100         /* first reconnect delay */
#define BACKOFF_MAX_MS 5000        /* longest reconnect delay */
#define KEEPALIVE_S    30

#define DEFAULT_LATENCY 50

/* ==== Capabilities (DESIGN section 4, "Capabilities and their properties") ==== */

enum prop_type {
	PROP_BOOL,    /* true / false */
	PROP_PERCENT, /* number, rounded and clamped to 0..100 */
	PROP_NUMBER,  /* number, clamped to [lo, hi] */
};

struct capability {
	const char *name;
	const char *prop;
	enum prop_type type;
	bool settable; /* commands may change it; sensors only report */
	double def;    /* value when the home file's state leaves it out */
	double lo, hi;
	bool round; /* numbers are integers on the device */
};

static const struct capability capabilities[] = {
        {"light.on_off", "on", PROP_BOOL, true, 0, 0, 0, false},
        {"switch.on_off", "on", PROP_BOOL, true, 0, 0, 0, false},
        {"media.power", "on", PROP_BOOL, true, 0, 0, 0, false},
        {"light.brightness", "brightness", PROP_PERCENT, true, 0, 0, 100, true},
        {"light.color_temp", "color_temp", PROP_NUMBER, true, 2700, 1000, 10000, true},
        {"cover.position", "position", PROP_PERCENT, true, 0, 0, 100, true},
        {"lock.lock", "locked", PROP_BOOL, true, 0, 0, 0, false},
        {"climate.setpoint", "setpoint", PROP_NUMBER, true, 20, 5, 35, false},
        {"media.volume", "volume", PROP_PERCENT, true, 0, 0, 100, true},
        {"sensor.motion", "motion", PROP_BOOL, false, 0, 0, 0, false},
        {"sensor.occupancy", "occupancy", PROP_BOOL, false, 0, 0, 0, false},
        {"sensor.contact", "contact", PROP_BOOL, false, 0, 0, 0, false},
        {"sensor.temperature", "temperature", PROP_NUMBER, false, 20, -100, 100, false},
        {"sensor.illuminance", "illuminance", PROP_NUMBER, false, 0, 0, 1e6, false},
};

#define NCAPS (sizeof(capabilities) / sizeof(capabilities[0]))

/* ==== Types ==== */

struct device {
	char id[ID_MAX + 1];
	char *name;
	char *room;
	char *kind;
	cJSON *caps;     /* array of capability names, as in the home file */
	uint32_t capset; /* bit i: the device has capabilities[i] */
	cJSON *state;    /* the device's whole state object */
	int latency_ms;
	double failure_rate;
	bool optimistic;
	bool online;
	bool report_state;
};

/* A command waiting for its device's latency. */
struct action {
	int64_t due_ms; /* monotonic */
	size_t dev;
	cJSON *props; /* validated properties to apply, in command order */
	struct action *next;
};

struct sim {
	/* options */
	const char *home_file;
	char host[256];
	int port;
	char home[ID_MAX + 1];
	const char *log_path;
	bool quiet;
	uint64_t seed;

	char prefix[sizeof("hearth/") + ID_MAX]; /* hearth/<home> */
	FILE *log;
	uint64_t rng;

	struct device *dev;
	size_t ndev;

	struct action *head, *tail;
	size_t npending;

	/* connection */
	struct mosquitto *mosq;
	bool sock_open;   /* TCP up, CONNACK maybe not yet */
	bool connected;   /* CONNACK accepted */
	bool ever_ready;  /* the ready line was printed once */
	bool warned_down; /* "cannot connect" said once per outage */
	int64_t reconnect_at;
	int backoff_ms;

	/* announce bookkeeping: message ids still waiting for PUBACK / SUBACK */
	uint8_t wait_mid[65536 / 8];
	size_t nwait;
	bool announcing;
};

static volatile sig_atomic_t stop_requested;

/* ==== Utilities ==== */

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* splitmix64: small, seedable, good enough to decide which commands fail. */
static uint64_t
rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double
rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static bool
valid_id(const char *s, size_t len)
{
	if (len == 0 || len > ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p) {
		fprintf(stderr, "hearth-sim: out of memory\n");
		exit(1);
	}
	return p;
}

static void
oom_if_null(void *p)
{
	if (!p) {
		fprintf(stderr, "hearth-sim: out of memory\n");
		exit(1);
	}
}

static const char *
json_type_name(const cJSON *item)
{
	if (!item)
		return "nothing (the field is missing)";
	if (cJSON_IsBool(item))
		return "a boolean";
	if (cJSON_IsNumber(item))
		return "a number";
	if (cJSON_IsString(item))
		return "a string";
	if (cJSON_IsArray(item))
		return "an array";
	if (cJSON_IsObject(item))
		return "an object";
	if (cJSON_IsNull(item))
		return "null";
	return "an invalid value";
}

/*
 * Set key in obj to item (taking it): in the place of the first value of key,
 * whose duplicates go, or at the end.
 */
static void
obj_set(cJSON *obj, const char *key, cJSON *item)
{
	cJSON *old, *next;

	oom_if_null(item);
	old = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!old) {
		cJSON_AddItemToObject(obj, key, item);
		return;
	}
	for (cJSON *c = old->next; c; c = next) {
		next = c->next;
		if (c->string && strcmp(c->string, key) == 0)
			cJSON_Delete(cJSON_DetachItemViaPointer(obj, c));
	}
	cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
}

/* ==== Log ==== */

/* A new log event {"ts":…,"event":name}; log_emit() writes and frees it. */
static cJSON *
event_new(const char *name)
{
	cJSON *ev = cJSON_CreateObject();

	oom_if_null(ev);
	cJSON_AddNumberToObject(ev, "ts", (double)wall_ms());
	cJSON_AddStringToObject(ev, "event", name);
	return ev;
}

static void
log_emit(struct sim *sim, cJSON *ev)
{
	char *text;

	if (sim->log) {
		text = cJSON_PrintUnformatted(ev);
		if (text) {
			fputs(text, sim->log);
			fputc('\n', sim->log);
			fflush(sim->log);
			cJSON_free(text);
		}
	}
	cJSON_Delete(ev);
}

/* A human line on stderr, unless --quiet. */
static void say(struct sim *sim, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(struct sim *sim, const char *fmt, ...)
{
	va_list ap;

	if (sim->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ==== Properties ==== */

static const struct capability *
cap_by_name(const char *name)
{
	for (size_t i = 0; i < NCAPS; i++)
		if (strcmp(capabilities[i].name, name) == 0)
			return &capabilities[i];
	return NULL;
}

static bool
prop_known(const char *prop)
{
	for (size_t i = 0; i < NCAPS; i++)
		if (strcmp(capabilities[i].prop, prop) == 0)
			return true;
	return false;
}

/*
 * The capability of dev that carries prop, or NULL. With settable_only, only
 * capabilities a command may change count.
 */
static const struct capability *
device_cap_for(const struct device *dev, const char *prop, bool settable_only)
{
	for (size_t i = 0; i < NCAPS; i++) {
		if (!(dev->capset & (1u << i)) || strcmp(capabilities[i].prop, prop) != 0)
			continue;
		if (settable_only && !capabilities[i].settable)
			continue;
		return &capabilities[i];
	}
	return NULL;
}

/*
 * The value v normalised for cap (clamped, rounded), as a new item, or NULL
 * when v has the wrong type; *expected then names the right one.
 */
static cJSON *
prop_normalise(const struct capability *cap, const cJSON *v, const char **expected)
{
	double x;

	if (cap->type == PROP_BOOL) {
		*expected = "a boolean";
		return cJSON_IsBool(v) ? cJSON_CreateBool(cJSON_IsTrue(v)) : NULL;
	}
	*expected = "a number";
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return NULL;
	x = v->valuedouble;
	if (cap->round)
		x = round(x);
	if (x < cap->lo)
		x = cap->lo;
	if (x > cap->hi)
		x = cap->hi;
	return cJSON_CreateNumber(x);
}

/* Append "name value" for one property to a human line. */
static void
describe_prop(char *buf, size_t len, const char *key, const cJSON *v)
{
	size_t used = strlen(buf);
	const char *sep = used ? ", " : "";

	if (used >= len)
		return;
	if (cJSON_IsBool(v) && strcmp(key, "on") == 0)
		snprintf(buf + used, len - used, "%s%s", sep, cJSON_IsTrue(v) ? "on" : "off");
	else if (cJSON_IsBool(v) && strcmp(key, "locked") == 0)
		snprintf(buf + used, len - used, "%s%s", sep,
		         cJSON_IsTrue(v) ? "locked" : "unlocked");
	else if (cJSON_IsBool(v))
		snprintf(buf + used, len - used, "%s%s %s", sep, key,
		         cJSON_IsTrue(v) ? "true" : "false");
	else if (cJSON_IsNumber(v))
		snprintf(buf + used, len - used, "%s%s %g", sep, key, v->valuedouble);
	else if (cJSON_IsString(v))
		snprintf(buf + used, len - used, "%s%s \"%.40s\"", sep, key, v->valuestring);
	else
		snprintf(buf + used, len - used, "%s%s (%s)", sep, key, json_type_name(v));
}

static void
log_ignored(struct sim *sim, const struct device *dev, const char *prop, const char *reason,
            const char *detail)
{
	cJSON *ev = event_new("ignored_property");

	cJSON_AddStringToObject(ev, "device", dev->id);
	cJSON_AddStringToObject(ev, "property", prop);
	cJSON_AddStringToObject(ev, "reason", reason);
	if (detail)
		cJSON_AddStringToObject(ev, "detail", detail);
	log_emit(sim, ev);
	say(sim, "%s (%s): %s ignored: %s", dev->id, dev->room, prop, detail ? detail : reason);
}

/* ==== Home file ==== */

/* Prints "hearth-sim: FILE: FIELD: what" and exits 2. */
static void home_fail(const char *file, const char *fmt, ...)
        __attribute__((format(printf, 2, 3), noreturn));

static void
home_fail(const char *file, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hearth-sim: %s: ", file);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static char *
read_file(const char *path, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		home_fail(path, "cannot open: %s", strerror(errno));
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			oom_if_null(buf);
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (len > MAX_HOME_FILE)
			home_fail(path, "larger than %d bytes", MAX_HOME_FILE);
		if (n == 0)
			break;
	}
	if (ferror(f))
		home_fail(path, "cannot read: %s", strerror(errno));
	fclose(f);
	buf[len] = '\0';
	*len_out = len;
	return buf;
}

static const char *const device_fields[] = {
        "id",         "name",         "room",       "kind",   "capabilities", "state",
        "latency_ms", "failure_rate", "optimistic", "online", "report_state", "description",
};

/* A required non-empty string field of device i. */
static char *
home_str(const char *file, const cJSON *d, size_t i, const char *key, const char *def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, key);

	if (!v && def)
		return xstrdup(def);
	if (!cJSON_IsString(v))
		home_fail(file, "devices[%zu].%s: expected a string, got %s", i, key,
		          json_type_name(v));
	if (v->valuestring[0] == '\0' || strlen(v->valuestring) > 256)
		home_fail(file, "devices[%zu].%s: must be 1 to 256 characters", i, key);
	return xstrdup(v->valuestring);
}

static bool
home_bool(const char *file, const cJSON *d, size_t i, const char *key, bool def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, key);

	if (!v)
		return def;
	if (!cJSON_IsBool(v))
		home_fail(file, "devices[%zu].%s: expected true or false, got %s", i, key,
		          json_type_name(v));
	return cJSON_IsTrue(v);
}

static double
home_num(const char *file, const cJSON *d, size_t i, const char *key, double def, double lo,
         double hi)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, key);

	if (!v)
		return def;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		home_fail(file, "devices[%zu].%s: expected a number, got %s", i, key,
		          json_type_name(v));
	if (v->valuedouble < lo || v->valuedouble > hi)
		home_fail(file, "devices[%zu].%s: %g is out of range %g..%g", i, key,
		          v->valuedouble, lo, hi);
	return v->valuedouble;
}

static void
home_device(struct sim *sim, const cJSON *d, size_t i, struct device *dev)
{
	const char *file = sim->home_file;
	const cJSON *v, *c;
	size_t j;

	if (!cJSON_IsObject(d))
		home_fail(file, "devices[%zu]: expected an object, got %s", i, json_type_name(d));
	cJSON_ArrayForEach(v, d)
	{
		bool known = false;

		for (j = 0; j < sizeof(device_fields) / sizeof(device_fields[0]); j++)
			known = known || strcmp(v->string, device_fields[j]) == 0;
		if (!known)
			home_fail(file, "devices[%zu].%s: unknown field (see tests/sim/README.md)",
			          i, v->string);
	}

	v = cJSON_GetObjectItemCaseSensitive(d, "id");
	if (!cJSON_IsString(v))
		home_fail(file, "devices[%zu].id: expected a string, got %s", i, json_type_name(v));
	if (!valid_id(v->valuestring, strlen(v->valuestring)))
		home_fail(file, "devices[%zu].id: \"%.80s\" is not 1..64 of [A-Za-z0-9_.-]", i,
		          v->valuestring);
	for (j = 0; j < i; j++)
		if (strcmp(sim->dev[j].id, v->valuestring) == 0)
			home_fail(file, "devices[%zu].id: duplicate id \"%s\"", i, v->valuestring);
	snprintf(dev->id, sizeof(dev->id), "%s", v->valuestring);

	dev->name = home_str(file, d, i, "name", dev->id);
	dev->room = home_str(file, d, i, "room", NULL);
	dev->kind = home_str(file, d, i, "kind", NULL);

	v = cJSON_GetObjectItemCaseSensitive(d, "capabilities");
	if (!cJSON_IsArray(v))
		home_fail(file, "devices[%zu].capabilities: expected an array, got %s", i,
		          json_type_name(v));
	dev->caps = cJSON_CreateArray();
	oom_if_null(dev->caps);
	j = 0;
	cJSON_ArrayForEach(c, v)
	{
		const struct capability *cap;

		if (!cJSON_IsString(c))
			home_fail(file, "devices[%zu].capabilities[%zu]: expected a string, got %s",
			          i, j, json_type_name(c));
		cap = cap_by_name(c->valuestring);
		if (!cap)
			home_fail(file,
			          "devices[%zu].capabilities[%zu]: unknown capability \"%.80s\"", i,
			          j, c->valuestring);
		if (!(dev->capset & (1u << (cap - capabilities)))) {
			dev->capset |= 1u << (cap - capabilities);
			cJSON_AddItemToArray(dev->caps, cJSON_CreateString(cap->name));
		}
		j++;
	}

	v = cJSON_GetObjectItemCaseSensitive(d, "state");
	if (v && !cJSON_IsObject(v))
		home_fail(file, "devices[%zu].state: expected an object, got %s", i,
		          json_type_name(v));
	dev->state = v ? cJSON_Duplicate(v, true) : cJSON_CreateObject();
	oom_if_null(dev->state);
	/* Check the values of the device's properties, fill in the missing ones. */
	for (j = 0; j < NCAPS; j++) {
		const struct capability *cap = &capabilities[j];
		const char *expected;
		cJSON *norm;

		if (!(dev->capset & (1u << j)))
			continue;
		c = cJSON_GetObjectItemCaseSensitive(dev->state, cap->prop);
		if (!c) {
			norm = cap->type == PROP_BOOL ? cJSON_CreateBool(cap->def != 0)
			                              : cJSON_CreateNumber(cap->def);
		} else {
			norm = prop_normalise(cap, c, &expected);
			if (!norm)
				home_fail(file, "devices[%zu].state.%s: expected %s, got %s", i,
				          cap->prop, expected, json_type_name(c));
		}
		obj_set(dev->state, cap->prop, norm);
	}

	dev->latency_ms =
	        (int)home_num(file, d, i, "latency_ms", DEFAULT_LATENCY, 0, MAX_LATENCY_MS);
	dev->failure_rate = home_num(file, d, i, "failure_rate", 0, 0, 1);
	dev->optimistic = home_bool(file, d, i, "optimistic", false);
	dev->online = home_bool(file, d, i, "online", true);
	dev->report_state = home_bool(file, d, i, "report_state", true);
}

static void
home_load(struct sim *sim)
{
	const char *file = sim->home_file;
	const cJSON *devs, *d, *v;
	const char *end = NULL;
	size_t len, i, line;
	cJSON *root;
	char *text;

	text = read_file(file, &len);
	if (memchr(text, '\0', len))
		home_fail(file, "contains a NUL byte");
	root = cJSON_ParseWithOpts(text, &end, true);
	if (!root) {
		const char *at = cJSON_GetErrorPtr();

		line = 1;
		for (const char *p = text; at && p < at && p < text + len; p++)
			line += *p == '\n';
		home_fail(file, "line %zu: invalid JSON", line);
	}
	if (!cJSON_IsObject(root))
		home_fail(file, "top level: expected an object, got %s", json_type_name(root));
	cJSON_ArrayForEach(v, root)
	{
		if (strcmp(v->string, "devices") != 0 && strcmp(v->string, "description") != 0)
			home_fail(file, "%s: unknown field (see tests/sim/README.md)", v->string);
	}
	devs = cJSON_GetObjectItemCaseSensitive(root, "devices");
	if (!cJSON_IsArray(devs))
		home_fail(file, "devices: expected an array, got %s", json_type_name(devs));
	sim->ndev = (size_t)cJSON_GetArraySize(devs);
	if (sim->ndev == 0)
		home_fail(file, "devices: the home has no device");
	if (sim->ndev > MAX_DEVICES)
		home_fail(file, "devices: more than %d devices", MAX_DEVICES);
	sim->dev = calloc(sim->ndev, sizeof(*sim->dev));
	oom_if_null(sim->dev);
	i = 0;
	cJSON_ArrayForEach(d, devs)
	{
		home_device(sim, d, i, &sim->dev[i]);
		i++;
	}
	cJSON_Delete(root);
	free(text);
}

static struct device *
device_find(struct sim *sim, const char *id, size_t len, size_t *di)
{
	for (size_t i = 0; i < sim->ndev; i++) {
		if (strlen(sim->dev[i].id) == len && memcmp(sim->dev[i].id, id, len) == 0) {
			if (di)
				*di = i;
			return &sim->dev[i];
		}
	}
	return NULL;
}

/* ==== Publishing ==== */

static void
topic_of(struct sim *sim, char *buf, size_t len, const struct device *dev, const char *leaf)
{
	snprintf(buf, len, "%s/device/%s/%s", sim->prefix, dev->id, leaf);
}

/*
 * Publish retained at QoS 1. With track, the message id joins the announce
 * set, and the ready line waits for its PUBACK.
 */
static void
publish(struct sim *sim, const char *topic, const char *payload, bool track)
{
	int mid = 0, rc;

	if (!sim->connected)
		return;
	rc = mosquitto_publish_v5(sim->mosq, &mid, topic, (int)strlen(payload), payload, 1, true,
	                          NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "hearth-sim: publish %s: %s\n", topic, mosquitto_strerror(rc));
		return;
	}
	if (track && !(sim->wait_mid[mid / 8] & (1u << (mid % 8)))) {
		sim->wait_mid[mid / 8] |= (uint8_t)(1u << (mid % 8));
		sim->nwait++;
	}
}

static void
publish_json(struct sim *sim, const struct device *dev, const char *leaf, const cJSON *obj,
             bool track)
{
	char topic[sizeof(sim->prefix) + ID_MAX + 32];
	char *text;

	topic_of(sim, topic, sizeof(topic), dev, leaf);
	text = cJSON_PrintUnformatted(obj);
	oom_if_null(text);
	publish(sim, topic, text, track);
	cJSON_free(text);
}

static void
publish_availability(struct sim *sim, const struct device *dev, bool track)
{
	char topic[sizeof(sim->prefix) + ID_MAX + 32];

	topic_of(sim, topic, sizeof(topic), dev, "availability");
	publish(sim, topic, dev->online ? "online" : "offline", track);
}

static void
publish_meta(struct sim *sim, const struct device *dev)
{
	cJSON *meta = cJSON_CreateObject();

	oom_if_null(meta);
	cJSON_AddStringToObject(meta, "name", dev->name);
	cJSON_AddStringToObject(meta, "room", dev->room);
	cJSON_AddStringToObject(meta, "kind", dev->kind);
	cJSON_AddItemToObject(meta, "capabilities", cJSON_Duplicate(dev->caps, true));
	cJSON_AddStringToObject(meta, "transport", "mqtt");
	if (dev->optimistic)
		cJSON_AddTrueToObject(meta, "optimistic");
	publish_json(sim, dev, "meta", meta, true);
	cJSON_Delete(meta);
}

/* Report the device's whole state (if it reports) and log it. */
static void
report_state(struct sim *sim, const struct device *dev, const char *source)
{
	cJSON *ev = event_new("state");

	if (dev->report_state)
		publish_json(sim, dev, "state", dev->state, false);
	cJSON_AddStringToObject(ev, "device", dev->id);
	cJSON_AddItemReferenceToObject(ev, "state", dev->state);
	cJSON_AddStringToObject(ev, "source", source);
	cJSON_AddBoolToObject(ev, "reported", dev->report_state && sim->connected);
	log_emit(sim, ev);
}

/* Everything a device says when the hub may have just arrived. */
static void
announce(struct sim *sim)
{
	static const char *const leaves[] = {"availability", "state"};
	char topic[sizeof(sim->prefix) + ID_MAX + 32];
	int mid, rc;

	memset(sim->wait_mid, 0, sizeof(sim->wait_mid));
	sim->nwait = 0;
	sim->announcing = true;

	/* Subscribe first: the broker handles our packets in order, so once the
	 * last PUBACK is in, commands sent after the ready line reach us. */
	snprintf(topic, sizeof(topic), "%s/device/+/set", sim->prefix);
	rc = mosquitto_subscribe_v5(sim->mosq, &mid, topic, 1, 0, NULL);
	for (size_t k = 0; k < 2 && rc == MOSQ_ERR_SUCCESS; k++) {
		sim->wait_mid[mid / 8] |= (uint8_t)(1u << (mid % 8));
		sim->nwait++;
		snprintf(topic, sizeof(topic), "hearth-sim/%s/+/%s", sim->home, leaves[k]);
		rc = mosquitto_subscribe_v5(sim->mosq, &mid, topic, 1, 0, NULL);
	}
	if (rc == MOSQ_ERR_SUCCESS) {
		sim->wait_mid[mid / 8] |= (uint8_t)(1u << (mid % 8));
		sim->nwait++;
	} else {
		fprintf(stderr, "hearth-sim: subscribe: %s\n", mosquitto_strerror(rc));
	}

	for (size_t i = 0; i < sim->ndev; i++) {
		const struct device *dev = &sim->dev[i];

		publish_meta(sim, dev);
		publish_availability(sim, dev, true);
		if (dev->report_state)
			publish_json(sim, dev, "state", dev->state, true);
	}
}

static void
announce_done(struct sim *sim)
{
	cJSON *ev;

	sim->announcing = false;
	fprintf(stderr, "hearth-sim: %zu devices announced on %s:%d (home %s)\n", sim->ndev,
	        sim->host, sim->port, sim->home);
	ev = event_new(sim->ever_ready ? "reannounced" : "ready");
	cJSON_AddNumberToObject(ev, "devices", (double)sim->ndev);
	if (sim->seed <= (1ULL << 53)) {
		cJSON_AddNumberToObject(ev, "seed", (double)sim->seed);
	} else {
		char seed[24];

		snprintf(seed, sizeof(seed), "%" PRIu64, sim->seed);
		cJSON_AddStringToObject(ev, "seed", seed);
	}
	log_emit(sim, ev);
	sim->ever_ready = true;
}

/* One more acknowledgement from the broker; the ready line after the last. */
static void
acked(struct sim *sim, int mid)
{
	if (!sim->announcing || mid < 0 || mid > 65535)
		return;
	if (!(sim->wait_mid[mid / 8] & (1u << (mid % 8))))
		return;
	sim->wait_mid[mid / 8] &= (uint8_t) ~(1u << (mid % 8));
	if (--sim->nwait == 0)
		announce_done(sim);
}

/* ==== Commands ==== */

static void
schedule(struct sim *sim, size_t dev, cJSON *props, int64_t due)
{
	struct action *a, **pp;

	a = calloc(1, sizeof(*a));
	oom_if_null(a);
	a->due_ms = due;
	a->dev = dev;
	a->props = props;
	/* Sorted by due time, first come first served on ties. */
	if (!sim->tail || sim->tail->due_ms <= due) {
		if (sim->tail)
			sim->tail->next = a;
		else
			sim->head = a;
		sim->tail = a;
	} else {
		for (pp = &sim->head; *pp && (*pp)->due_ms <= due; pp = &(*pp)->next)
			;
		a->next = *pp;
		*pp = a;
	}
	sim->npending++;
}

static void
log_bad_command(struct sim *sim, const char *device, size_t dlen, const char *error,
                size_t payload_len)
{
	char id[ID_MAX + 1];
	cJSON *ev = event_new("bad_command");

	snprintf(id, sizeof(id), "%.*s", (int)(dlen > ID_MAX ? ID_MAX : dlen), device);
	cJSON_AddStringToObject(ev, "device", id);
	cJSON_AddStringToObject(ev, "error", error);
	cJSON_AddNumberToObject(ev, "payload_len", (double)payload_len);
	log_emit(sim, ev);
	say(sim, "%s: command ignored: %s", id, error);
}

/*
 * Parse an untrusted payload into a JSON object. Returns the tree (the caller
 * deletes it) or NULL with *error set.
 */
static cJSON *
parse_object(const void *payload, size_t len, const char **error)
{
	cJSON *root;
	char *buf;

	if (len > MAX_PAYLOAD) {
		*error = "too_large";
		return NULL;
	}
	if (len == 0 || memchr(payload, '\0', len)) {
		*error = "bad_json";
		return NULL;
	}
	buf = malloc(len + 1);
	oom_if_null(buf);
	memcpy(buf, payload, len);
	buf[len] = '\0';
	root = cJSON_ParseWithOpts(buf, NULL, true);
	free(buf);
	if (!root) {
		*error = "bad_json";
		return NULL;
	}
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		*error = "not_an_object";
		return NULL;
	}
	return root;
}

/*
 * The properties of payload that dev may be set to, normalised, as a new
 * object. Fields no capability knows (plan_id, step…) are skipped quietly;
 * properties the device lacks or values of the wrong type are logged.
 */
static cJSON *
command_props(struct sim *sim, const struct device *dev, const cJSON *payload, bool settable_only)
{
	cJSON *props = cJSON_CreateObject();
	const cJSON *v;

	oom_if_null(props);
	cJSON_ArrayForEach(v, payload)
	{
		const struct capability *cap;
		const char *expected;
		char detail[96];
		cJSON *norm;

		if (!prop_known(v->string)) {
			if (!settable_only) /* a button press may add any field */
				obj_set(props, v->string, cJSON_Duplicate(v, true));
			continue;
		}
		cap = device_cap_for(dev, v->string, settable_only);
		if (!cap && device_cap_for(dev, v->string, false)) {
			log_ignored(sim, dev, v->string, "read_only",
			            "a sensor value cannot be set");
			continue;
		}
		if (!cap) {
			log_ignored(sim, dev, v->string, "not_supported",
			            "the device has no capability for it");
			continue;
		}
		norm = prop_normalise(cap, v, &expected);
		if (!norm) {
			snprintf(detail, sizeof(detail), "expected %s, got %s", expected,
			         cJSON_IsNumber(v) ? "a number out of range" : json_type_name(v));
			log_ignored(sim, dev, v->string, "wrong_type", detail);
			continue;
		}
		obj_set(props, v->string, norm);
	}
	return props;
}

static void
handle_set(struct sim *sim, const char *id, size_t idlen, const void *payload, size_t len)
{
	const struct capability *on_cap;
	struct device *dev;
	const char *error, *reason = NULL;
	cJSON *root, *props, *ev, *b;
	size_t di;

	dev = device_find(sim, id, idlen, &di);
	if (!dev) {
		log_bad_command(sim, id, idlen, "unknown_device", len);
		return;
	}
	root = parse_object(payload, len, &error);
	if (!root) {
		log_bad_command(sim, id, idlen, error, len);
		return;
	}

	if (!dev->online)
		reason = "offline";
	else if (rng_unit(&sim->rng) < dev->failure_rate)
		reason = "failure";
	else if (sim->npending >= MAX_PENDING)
		reason = "busy";

	ev = event_new("command");
	cJSON_AddStringToObject(ev, "device", dev->id);
	cJSON_AddItemReferenceToObject(ev, "payload", root);
	cJSON_AddBoolToObject(ev, "dropped", reason != NULL);
	if (reason)
		cJSON_AddStringToObject(ev, "reason", reason);
	log_emit(sim, ev);
	if (reason) {
		say(sim, "%s (%s): command dropped (%s)", dev->id, dev->room, reason);
		cJSON_Delete(root);
		return;
	}

	props = command_props(sim, dev, root, true);
	/* Dimming a light up turns it on, unless the command says otherwise. */
	b = cJSON_GetObjectItemCaseSensitive(props, "brightness");
	on_cap = device_cap_for(dev, "on", true);
	if (b && on_cap && b->valuedouble > 0 && !cJSON_GetObjectItemCaseSensitive(props, "on"))
		obj_set(props, "on", cJSON_CreateTrue());
	cJSON_Delete(root);
	schedule(sim, di, props, mono_ms() + dev->latency_ms);
}

static void
apply(struct sim *sim, struct device *dev, cJSON *props, const char *source)
{
	char line[256] = "";
	const cJSON *v;

	cJSON_ArrayForEach(v, props)
	{
		obj_set(dev->state, v->string, cJSON_Duplicate(v, true));
		describe_prop(line, sizeof(line), v->string, v);
	}
	say(sim, "%s (%s): %s%s", dev->id, dev->room, line[0] ? line : "no change",
	    strcmp(source, "command") == 0 ? "" : " (local)");
	report_state(sim, dev, source);
}

/* Apply every action whose time has come. */
static void
run_due(struct sim *sim, int64_t now)
{
	struct action *a;

	while ((a = sim->head) && a->due_ms <= now) {
		struct device *dev = &sim->dev[a->dev];

		sim->head = a->next;
		if (!sim->head)
			sim->tail = NULL;
		sim->npending--;
		if (dev->online) {
			apply(sim, dev, a->props, "command");
		} else {
			/* It went offline while the command was on its way. */
			cJSON *ev = event_new("dropped");

			cJSON_AddStringToObject(ev, "device", dev->id);
			cJSON_AddStringToObject(ev, "reason", "offline");
			log_emit(sim, ev);
			say(sim, "%s (%s): command dropped (went offline)", dev->id, dev->room);
		}
		cJSON_Delete(a->props);
		free(a);
	}
}

/* hearth-sim/<home>/<id>/availability: online | offline. */
static void
handle_availability(struct sim *sim, struct device *dev, const char *payload, size_t len)
{
	cJSON *ev;
	bool online;

	while (len > 0 && (payload[len - 1] == '\n' || payload[len - 1] == ' ' ||
	                   payload[len - 1] == '\r' || payload[len - 1] == '\t'))
		len--;
	if (len == 6 && memcmp(payload, "online", 6) == 0) {
		online = true;
	} else if (len == 7 && memcmp(payload, "offline", 7) == 0) {
		online = false;
	} else {
		log_bad_command(sim, dev->id, strlen(dev->id), "bad_availability", len);
		return;
	}
	dev->online = online;
	publish_availability(sim, dev, false);
	ev = event_new("availability");
	cJSON_AddStringToObject(ev, "device", dev->id);
	cJSON_AddStringToObject(ev, "availability", online ? "online" : "offline");
	log_emit(sim, ev);
	say(sim, "%s (%s): %s", dev->id, dev->room, online ? "online" : "offline");
}

/* hearth-sim/<home>/<id>/state: someone pressed the device's own button. */
static void
handle_local_state(struct sim *sim, struct device *dev, const void *payload, size_t len)
{
	const char *error;
	cJSON *root, *props;

	root = parse_object(payload, len, &error);
	if (!root) {
		log_bad_command(sim, dev->id, strlen(dev->id), error, len);
		return;
	}
	props = command_props(sim, dev, root, false);
	cJSON_Delete(root);
	apply(sim, dev, props, "local");
	cJSON_Delete(props);
}

/* ==== MQTT ==== */

static bool
has_prefix(const char *s, size_t len, const char *prefix, size_t *plen)
{
	*plen = strlen(prefix);
	return len >= *plen && memcmp(s, prefix, *plen) == 0;
}

static void
on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
           const mosquitto_property *props)
{
	struct sim *sim = obj;
	const char *topic = msg->topic, *id, *leaf;
	size_t tlen, plen, idlen, len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
	char control[sizeof("hearth-sim//") + ID_MAX];
	char dev_prefix[sizeof(sim->prefix) + 16];
	struct device *dev;

	(void)mosq;
	(void)props;
	if (!topic)
		return;
	tlen = strlen(topic);
	snprintf(dev_prefix, sizeof(dev_prefix), "%s/device/", sim->prefix);
	snprintf(control, sizeof(control), "hearth-sim/%s/", sim->home);

	if (has_prefix(topic, tlen, dev_prefix, &plen) && tlen > plen + 4 &&
	    strcmp(topic + tlen - 4, "/set") == 0) {
		handle_set(sim, topic + plen, tlen - plen - 4, msg->payload, len);
		return;
	}
	if (!has_prefix(topic, tlen, control, &plen))
		return;
	id = topic + plen;
	leaf = strchr(id, '/');
	if (!leaf)
		return;
	idlen = (size_t)(leaf - id);
	dev = device_find(sim, id, idlen, NULL);
	if (!dev) {
		log_bad_command(sim, id, idlen, "unknown_device", len);
		return;
	}
	if (strcmp(leaf, "/availability") == 0)
		handle_availability(sim, dev, msg->payload, len);
	else if (strcmp(leaf, "/state") == 0)
		handle_local_state(sim, dev, msg->payload, len);
}

static void
on_connect(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *props)
{
	struct sim *sim = obj;

	(void)flags;
	(void)props;
	if (rc != 0) {
		fprintf(stderr, "hearth-sim: %s:%d refused the connection: %s\n", sim->host,
		        sim->port, mosquitto_reason_string(rc));
		mosquitto_disconnect(mosq);
		return;
	}
	sim->connected = true;
	sim->warned_down = false;
	sim->backoff_ms = BACKOFF_MIN_MS;
	announce(sim);
	if (sim->nwait == 0)
		announce_done(sim);
}

static void
on_disconnect(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *props)
{
	struct sim *sim = obj;

	(void)mosq;
	(void)props;
	if (sim->connected && !stop_requested)
		fprintf(stderr, "hearth-sim: lost %s:%d (%s), reconnecting\n", sim->host, sim->port,
		        rc ? mosquitto_strerror(rc) : "disconnected");
	sim->connected = false;
	sim->announcing = false;
}

static void
on_publish(struct mosquitto *mosq, void *obj, int mid, int reason, const mosquitto_property *props)
{
	(void)mosq;
	(void)reason;
	(void)props;
	acked(obj, mid);
}

static void
on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count, const int *granted,
             const mosquitto_property *props)
{
	struct sim *sim = obj;

	(void)mosq;
	(void)props;
	if (qos_count > 0 && granted[0] >= 0x80)
		fprintf(stderr, "hearth-sim: the broker refused a subscription (reason %d)\n",
		        granted[0]);
	acked(sim, mid);
}

static void
link_down(struct sim *sim, int64_t now)
{
	sim->sock_open = false;
	sim->connected = false;
	sim->announcing = false;
	sim->reconnect_at = now + sim->backoff_ms;
	sim->backoff_ms =
	        sim->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : sim->backoff_ms * 2;
}

static void
try_connect(struct sim *sim, int64_t now)
{
	int rc =
	        mosquitto_connect_bind_v5(sim->mosq, sim->host, sim->port, KEEPALIVE_S, NULL, NULL);

	if (rc == MOSQ_ERR_SUCCESS) {
		sim->sock_open = true;
		return;
	}
	if (!sim->warned_down) {
		fprintf(stderr, "hearth-sim: cannot connect to %s:%d (%s), retrying\n", sim->host,
		        sim->port, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		sim->warned_down = true;
	}
	link_down(sim, now);
}

/* Milliseconds the loop may wait: until the next action, at most LOOP_CAP_MS. */
static int
wait_ms(const struct sim *sim, int64_t now)
{
	int64_t t = LOOP_CAP_MS;

	if (sim->head && sim->head->due_ms - now < t)
		t = sim->head->due_ms - now;
	if (!sim->sock_open && sim->reconnect_at - now < t)
		t = sim->reconnect_at - now;
	return t < 0 ? 0 : (int)t;
}

static void
run(struct sim *sim)
{
	int64_t now;
	int rc;

	while (!stop_requested) {
		now = mono_ms();
		run_due(sim, now);
		if (!sim->sock_open && now >= sim->reconnect_at) {
			try_connect(sim, now);
			continue;
		}
		if (sim->sock_open) {
			rc = mosquitto_loop(sim->mosq, wait_ms(sim, now), 1);
			if (rc != MOSQ_ERR_SUCCESS) {
				if (sim->connected && !stop_requested)
					fprintf(stderr,
					        "hearth-sim: lost %s:%d (%s), reconnecting\n",
					        sim->host, sim->port, mosquitto_strerror(rc));
				link_down(sim, mono_ms());
			}
		} else {
			/* Broker away: wait for the next action or the next attempt;
			 * a signal ends the wait early. */
			poll(NULL, 0, wait_ms(sim, now));
		}
	}
}

/* ==== Main ==== */

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: hearth-sim --home-file FILE [--broker HOST:PORT] [--home ID]\n"
	        "                  [--log FILE] [--seed N] [--quiet]\n"
	        "\n"
	        "A simulated home of native hearth devices on MQTT (wire protocol v1).\n"
	        "\n"
	        "  --home-file FILE    the devices to simulate (see tests/sim/README.md)\n"
	        "  --broker HOST:PORT  MQTT broker (default 127.0.0.1:1883)\n"
	        "  --home ID           topic prefix hearth/ID (default home)\n"
	        "  --log FILE          JSON-lines log of commands and states (truncated)\n"
	        "  --seed N            seed of the failure_rate draws (default: from the clock)\n"
	        "  --quiet             no line on stderr per command\n"
	        "  --help              this text\n"
	        "\n"
	        "Control topics: hearth-sim/ID/<device>/availability (online|offline),\n"
	        "hearth-sim/ID/<device>/state (JSON merged into the state, as a button would).\n");
}

static void usage_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
usage_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hearth-sim: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'hearth-sim --help'.\n");
	exit(2);
}

static void
parse_broker(struct sim *sim, const char *arg)
{
	const char *colon, *host = arg;
	size_t hlen;
	char *end;
	long port = 1883;

	if (arg[0] == '[') { /* [::1]:1883 */
		const char *close = strchr(arg, ']');

		if (!close)
			usage_fail("--broker %s: missing ']'", arg);
		host = arg + 1;
		hlen = (size_t)(close - host);
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] && !colon)
			usage_fail("--broker %s: expected HOST:PORT", arg);
	} else {
		colon = strrchr(arg, ':');
		hlen = colon ? (size_t)(colon - arg) : strlen(arg);
	}
	if (colon) {
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
			usage_fail("--broker %s: the port must be 1..65535", arg);
	}
	if (hlen == 0 || hlen >= sizeof(sim->host))
		usage_fail("--broker %s: expected HOST:PORT", arg);
	memcpy(sim->host, host, hlen);
	sim->host[hlen] = '\0';
	sim->port = (int)port;
}

static void
parse_args(struct sim *sim, int argc, char **argv)
{
	bool seeded = false;

	snprintf(sim->host, sizeof(sim->host), "127.0.0.1");
	sim->port = 1883;
	snprintf(sim->home, sizeof(sim->home), "home");

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = strcmp(a, "--home-file") == 0 || strcmp(a, "--broker") == 0 ||
		             strcmp(a, "--home") == 0 || strcmp(a, "--log") == 0 ||
		             strcmp(a, "--seed") == 0;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(a, "--quiet") == 0) {
			sim->quiet = true;
			continue;
		}
		if (!takes)
			usage_fail("unknown option %s", a);
		if (!v)
			usage_fail("%s needs a value", a);
		i++;
		if (strcmp(a, "--home-file") == 0) {
			sim->home_file = v;
		} else if (strcmp(a, "--broker") == 0) {
			parse_broker(sim, v);
		} else if (strcmp(a, "--home") == 0) {
			if (!valid_id(v, strlen(v)))
				usage_fail("--home %s: expected 1..64 of [A-Za-z0-9_.-]", v);
			snprintf(sim->home, sizeof(sim->home), "%s", v);
		} else if (strcmp(a, "--log") == 0) {
			sim->log_path = v;
		} else {
			char *end;

			errno = 0;
			sim->seed = strtoull(v, &end, 0);
			if (errno || *end || end == v || v[0] == '-')
				usage_fail("--seed %s: expected a non-negative integer", v);
			seeded = true;
		}
	}
	if (!sim->home_file)
		usage_fail("%s", "--home-file FILE is required");
	if (!seeded) /* small enough to print and type back */
		sim->seed = ((uint64_t)wall_ms() ^ (uint64_t)getpid() * 2654435761u) % 1000000000u;
	sim->rng = sim->seed;
	snprintf(sim->prefix, sizeof(sim->prefix), "hearth/%s", sim->home);
}

static void
sim_free(struct sim *sim)
{
	struct action *a;

	while ((a = sim->head)) {
		sim->head = a->next;
		cJSON_Delete(a->props);
		free(a);
	}
	for (size_t i = 0; i < sim->ndev; i++) {
		free(sim->dev[i].name);
		free(sim->dev[i].room);
		free(sim->dev[i].kind);
		cJSON_Delete(sim->dev[i].caps);
		cJSON_Delete(sim->dev[i].state);
	}
	free(sim->dev);
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	struct sim *sim;
	char client_id[128];
	int rc = 1;

	/* The sim is large (the message-id bitmap), so it lives on the heap. */
	sim = calloc(1, sizeof(*sim));
	oom_if_null(sim);
	parse_args(sim, argc, argv);
	home_load(sim);
	if (sim->log_path) {
		sim->log = fopen(sim->log_path, "w");
		if (!sim->log) {
			fprintf(stderr, "hearth-sim: --log %s: %s\n", sim->log_path,
			        strerror(errno));
			exit(2);
		}
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: the wait returns at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	mosquitto_lib_init();
	snprintf(client_id, sizeof(client_id), "hearth-sim-%s-%ld", sim->home, (long)getpid());
	sim->mosq = mosquitto_new(client_id, true, sim);
	if (!sim->mosq) {
		fprintf(stderr, "hearth-sim: mosquitto_new: %s\n", strerror(errno));
		goto out_lib;
	}
	mosquitto_int_option(sim->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_int_option(sim->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_v5_callback_set(sim->mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(sim->mosq, on_disconnect);
	mosquitto_publish_v5_callback_set(sim->mosq, on_publish);
	mosquitto_subscribe_v5_callback_set(sim->mosq, on_subscribe);
	mosquitto_message_v5_callback_set(sim->mosq, on_message);

	sim->backoff_ms = BACKOFF_MIN_MS;
	sim->reconnect_at = mono_ms();
	run(sim);

	if (sim->sock_open) {
		mosquitto_disconnect_v5(sim->mosq, 0, NULL);
		mosquitto_loop(sim->mosq, 0, 1);
	}
	if (sim->log) {
		cJSON *ev = event_new("exit");

		log_emit(sim, ev);
	}
	rc = 0;
	mosquitto_destroy(sim->mosq);
out_lib:
	mosquitto_lib_cleanup();
	if (sim->log)
		fclose(sim->log);
	sim_free(sim);
	free(sim);
	return rc;
}
