/*
 * context_bench.c - what the context agent's queries and its ingestion cost
 * (issue 4: context query p99 <= 10 us on 1,000 devices). A registry of
 * 1,000 devices in 50 rooms, each room holding lights, plugs, a cover, media,
 * a lock, a thermostat and sensors (motion, contact, temperature,
 * illuminance), is built through hearth_context_handle exactly as the hub
 * feeds it (DEVICE_META, then DEVICE_STATE). Then, one row each:
 *
 *   - hearth_context_device: a random known id; an unknown id;
 *   - hearth_context_select: (room, capability), (room, capability, kind),
 *     (anywhere, capability), and hearth_context_room_known;
 *   - hearth_context_value: a random device's property, at a later now;
 *   - hearth_context_room_occupancy and hearth_context_home_presence;
 *   - ingestion: DEVICE_STATE messages through hearth_context_handle, bodies
 *     already parsed (as the runtime hands them over), what the agent posts
 *     (DEVICE_CHANGED, DEVICE_SAVE with the device record) built and freed
 *     as the bus would. Messages per second over the whole run, and the
 *     per-message p50/p99.
 *
 *   context_bench [--devices N] [--rooms N] [--iterations N]
 *
 * Every call is timed alone with CLOCK_MONOTONIC; the first row is the cost
 * of an empty timing pair, which every other row includes. Times are in
 * nanoseconds, p99 by nearest rank. A benchmark run by hand (see README.md
 * beside this file), not a ctest test.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents/context/context.h"
#include "agents/msg.h"
#include "platform/alloc.h"
#include "platform/log.h"
#include "recipes/capability.h"

struct opts {
	int devices, rooms;
	long iterations;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static long posted;

/* ==== Time, randomness and statistics ==== */

static inline int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t
rnd(void)
{
	/* xorshift64*: fixed seed, so every run builds the same home. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int64_t
percentile(int64_t *v, long n, double p)
{
	long rank = (long)(p / 100.0 * (double)n + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static void
row(const char *what, int64_t *v, long n, const char *note)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_i64);
	printf("%-40s %9ld %9lld %9lld  %s\n", what, n, (long long)percentile(v, n, 50),
	       (long long)percentile(v, n, 99), note ? note : "");
	fflush(stdout);
}

/* ==== The home ==== */

/* One room's devices: kind, capabilities, a first state. */
struct tpl {
	const char *name, *kind, *caps, *state;
};

static const struct tpl room_tpl[] = {
        {"ceiling", "light", "\"light.on_off\",\"light.brightness\",\"light.color_temp\"",
         "{\"on\":false,\"brightness\":80,\"color_temp\":2700}"},
        {"lamp1", "light", "\"light.on_off\",\"light.brightness\"",
         "{\"on\":true,\"brightness\":40}"},
        {"lamp2", "light", "\"light.on_off\",\"light.brightness\"",
         "{\"on\":false,\"brightness\":100}"},
        {"strip", "ledstrip", "\"light.on_off\",\"light.brightness\",\"light.color_temp\"",
         "{\"on\":false,\"brightness\":20,\"color_temp\":3000}"},
        {"bulb", "light", "\"light.on_off\"", "{\"on\":false}"},
        {"plug1", "plug", "\"switch.on_off\"", "{\"on\":true}"},
        {"plug2", "plug", "\"switch.on_off\"", "{\"on\":false}"},
        {"blind", "cover", "\"cover.position\"", "{\"position\":100}"},
        {"tv", "tv", "\"media.power\",\"media.volume\"", "{\"on\":false,\"volume\":20}"},
        {"speaker", "speaker", "\"media.power\",\"media.volume\"", "{\"on\":false,\"volume\":35}"},
        {"lock", "lock", "\"lock.lock\"", "{\"locked\":true}"},
        {"trv", "thermostat", "\"climate.setpoint\",\"sensor.temperature\"",
         "{\"setpoint\":20.5,\"temperature\":19.8}"},
        {"motion", "sensor", "\"sensor.motion\",\"sensor.illuminance\"",
         "{\"motion\":false,\"illuminance\":120}"},
        {"presence", "sensor", "\"sensor.occupancy\"", "{\"occupancy\":false}"},
        {"door", "sensor", "\"sensor.contact\"", "{\"contact\":true}"},
        {"window", "sensor", "\"sensor.contact\"", "{\"contact\":true}"},
        {"climate", "sensor", "\"sensor.temperature\",\"sensor.illuminance\"",
         "{\"temperature\":21.3,\"illuminance\":300}"},
        {"fan", "switch", "\"switch.on_off\"", "{\"on\":false}"},
        {"heater", "switch", "\"switch.on_off\"", "{\"on\":false}"},
        {"ir", "remote", "\"media.power\"", "{\"on\":false}"},
};
#define NTPL ((int)(sizeof(room_tpl) / sizeof(room_tpl[0])))

static const char *const room_names[] = {
        "Living Room", "Kitchen",    "Bedroom", "Bathroom", "Hall",   "Office",
        "Kids Room",   "Guest Room", "Garage",  "Attic",    "Cellar", "Dining",
};
#define NROOMNAMES ((int)(sizeof(room_names) / sizeof(room_names[0])))

static void
post_free(void *ud, hearth_msg *m)
{
	(void)ud;
	posted++;
	hearth_msg_clear(m);
}

static const hearth_outbox outbox = {.post = post_free, .ud = NULL};

static void
room_name(int r, char *buf, size_t len)
{
	snprintf(buf, len, "%s %d", room_names[r % NROOMNAMES], r / NROOMNAMES + 1);
}

static void
device_id(int i, char *buf, size_t len)
{
	snprintf(buf, len, "%s-%04d", room_tpl[i % NTPL].name, i);
}

static void
feed(hearth_context *c, enum hearth_msg_type type, const char *id, const char *json,
     const hearth_now *now)
{
	hearth_msg m = {.type = type};

	snprintf(m.id, sizeof(m.id), "%s", id);
	m.body = json ? cJSON_Parse(json) : NULL;
	hearth_context_handle(c, &m, now, &outbox);
	hearth_msg_clear(&m);
}

static void
build_home(hearth_context *c, const struct opts *o, hearth_now *now)
{
	char id[HEARTH_ID_MAX + 1], room[64], json[512];

	for (int i = 0; i < o->devices; i++) {
		const struct tpl *t = &room_tpl[i % NTPL];

		device_id(i, id, sizeof(id));
		room_name((i / NTPL) % o->rooms, room, sizeof(room));
		snprintf(json, sizeof(json),
		         "{\"room\":\"%s\",\"kind\":\"%s\",\"name\":\"%s "
		         "%d\",\"capabilities\":[%s]}",
		         room, t->kind, t->name, i, t->caps);
		feed(c, HEARTH_MSG_DEVICE_META, id, json, now);
		feed(c, HEARTH_MSG_DEVICE_STATE, id, t->state, now);
		now->wall_ms += 3;
		now->mono_ms += 3;
	}
}

/* ==== Rows ==== */

static void
bench_queries(hearth_context *c, const struct opts *o, const hearth_now *now, int64_t *v)
{
	static const char *const caps[] = {"light.on_off",   "light.brightness", "media.power",
	                                   "cover.position", "sensor.motion",    "switch.on_off"};
	const struct hearth_device *out[64];
	char id[HEARTH_ID_MAX + 1], room[64];
	int capi[6];
	long n = o->iterations;
	volatile long sink = 0;

	for (int k = 0; k < 6; k++)
		capi[k] = hearth_capability_find(caps[k]);

	for (long i = 0; i < n; i++) {
		int64_t t0 = now_ns();

		v[i] = now_ns() - t0;
	}
	row("timing pair (included below)", v, n, "two clock_gettime calls");

	for (long i = 0; i < n; i++) {
		int64_t t0;

		device_id((int)(rnd() % (uint64_t)o->devices), id, sizeof(id));
		t0 = now_ns();
		sink += hearth_context_device(c, id) != NULL;
		v[i] = now_ns() - t0;
	}
	row("hearth_context_device (known)", v, n, "random id");

	for (long i = 0; i < n; i++) {
		int64_t t0;

		snprintf(id, sizeof(id), "ghost-%05d", (int)(rnd() % 100000));
		t0 = now_ns();
		sink += hearth_context_device(c, id) != NULL;
		v[i] = now_ns() - t0;
	}
	row("hearth_context_device (unknown)", v, n, "random id");

	for (long i = 0; i < n; i++) {
		int64_t t0;
		int cap = capi[rnd() % 6];

		room_name((int)(rnd() % (uint64_t)o->rooms), room, sizeof(room));
		t0 = now_ns();
		sink += hearth_context_select(c, room, cap, NULL, out, 64);
		v[i] = now_ns() - t0;
	}
	row("hearth_context_select(room, cap)", v, n, "random room and capability");

	for (long i = 0; i < n; i++) {
		int64_t t0;

		room_name((int)(rnd() % (uint64_t)o->rooms), room, sizeof(room));
		t0 = now_ns();
		sink += hearth_context_select(c, room, capi[0], "light", out, 64);
		v[i] = now_ns() - t0;
	}
	row("hearth_context_select(room, cap, kind)", v, n, "light.on_off, kind light");

	for (long i = 0; i < n / 10; i++) {
		int64_t t0;

		t0 = now_ns();
		sink += hearth_context_select(c, NULL, capi[rnd() % 6], NULL, out, 64);
		v[i] = now_ns() - t0;
	}
	row("hearth_context_select(anywhere, cap)", v, n / 10, "fills 64 of ~50-250 matches");

	for (long i = 0; i < n; i++) {
		int64_t t0;

		room_name((int)(rnd() % (uint64_t)(o->rooms + 5)), room, sizeof(room));
		t0 = now_ns();
		sink += hearth_context_room_known(c, room);
		v[i] = now_ns() - t0;
	}
	row("hearth_context_room_known", v, n, "1 in 11 rooms unknown");

	for (long i = 0; i < n; i++) {
		static const char *const props[] = {"on",     "brightness",  "position",
		                                    "motion", "temperature", "contact"};
		struct hearth_value val;
		int64_t t0;

		device_id((int)(rnd() % (uint64_t)o->devices), id, sizeof(id));
		t0 = now_ns();
		sink += hearth_context_value(c, id, props[rnd() % 6], now, &val) == 0;
		v[i] = now_ns() - t0;
	}
	row("hearth_context_value", v, n, "random device, random property");

	for (long i = 0; i < n; i++) {
		struct hearth_occupancy occ;
		int64_t t0;

		room_name((int)(rnd() % (uint64_t)o->rooms), room, sizeof(room));
		t0 = now_ns();
		occ = hearth_context_room_occupancy(c, room, now);
		v[i] = now_ns() - t0;
		sink += occ.occupied;
	}
	row("hearth_context_room_occupancy", v, n, "random room");

	for (long i = 0; i < n / 10; i++) {
		struct hearth_occupancy occ;
		int64_t t0;

		t0 = now_ns();
		occ = hearth_context_home_presence(c, now);
		v[i] = now_ns() - t0;
		sink += occ.occupied;
	}
	row("hearth_context_home_presence", v, n / 10, "every room's sensors and media");
	(void)sink;
}

/* A report as devices send them: the properties of its template, changed. */
static cJSON *
report_for(int i)
{
	const struct tpl *t = &room_tpl[i % NTPL];
	cJSON *b = cJSON_Parse(t->state), *p;

	cJSON_ArrayForEach(p, b)
	{
		if (cJSON_IsBool(p))
			p->type = (rnd() & 1) ? cJSON_True : cJSON_False;
		else if (!strcmp(p->string, "temperature") || !strcmp(p->string, "setpoint"))
			cJSON_SetNumberValue(p, 15 + (double)(rnd() % 100) / 10);
		else if (!strcmp(p->string, "color_temp"))
			cJSON_SetNumberValue(p, 2000 + (double)(rnd() % 4000));
		else
			cJSON_SetNumberValue(p, (double)(rnd() % 101));
	}
	return b;
}

static void
bench_ingest(hearth_context *c, const struct opts *o, hearth_now *now, int64_t *v)
{
	long n = o->iterations;
	hearth_msg *msgs = calloc((size_t)n, sizeof(*msgs));
	int64_t t_all;
	char note[96];

	if (!msgs) {
		fprintf(stderr, "context_bench: out of memory\n");
		exit(1);
	}
	for (long i = 0; i < n; i++) {
		int d = (int)(rnd() % (uint64_t)o->devices);

		msgs[i].type = HEARTH_MSG_DEVICE_STATE;
		device_id(d, msgs[i].id, sizeof(msgs[i].id));
		msgs[i].body = report_for(d);
	}
	posted = 0;
	t_all = now_ns();
	for (long i = 0; i < n; i++) {
		int64_t t0 = now_ns();

		hearth_context_handle(c, &msgs[i], now, &outbox);
		hearth_msg_clear(&msgs[i]);
		v[i] = now_ns() - t0;
		now->wall_ms += 2;
		now->mono_ms += 2;
	}
	t_all = now_ns() - t_all;
	snprintf(note, sizeof(note), "%.0f msg/s; %.1f posted per msg",
	         (double)n * 1e9 / (double)t_all, (double)posted / (double)n);
	row("ingest DEVICE_STATE (handle + bus free)", v, n, note);
	free(msgs);
}

/* ==== Main ==== */

static int
usage(void)
{
	fprintf(stderr, "usage: context_bench [--devices N] [--rooms N] [--iterations N]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct opts o = {.devices = 1000, .rooms = 50, .iterations = 200000};
	hearth_now now = {.mono_ms = 1000, .wall_ms = 1700000000000};
	hearth_context *c;
	int64_t *v, t0;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--devices"))
			o.devices = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--rooms"))
			o.rooms = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--iterations"))
			o.iterations = atol(argv[++i]);
		else
			return usage();
	}
	if (o.devices < 1 || o.rooms < 1 || o.iterations < 100)
		return usage();
	hearth_alloc_init();
	hearth_log_set_level(HEARTH_LOG_WARN);
	if (hearth_context_new(o.devices, &c)) {
		fprintf(stderr, "context_bench: out of memory\n");
		return 1;
	}
	v = calloc((size_t)o.iterations, sizeof(*v));
	if (!v) {
		fprintf(stderr, "context_bench: out of memory\n");
		return 1;
	}
	t0 = now_ns();
	build_home(c, &o, &now);
	printf("context_bench: %d devices in %d rooms, announced and reported in %.1f ms\n",
	       hearth_context_count(c), o.rooms, (double)(now_ns() - t0) / 1e6);
	now.wall_ms += 60000; /* the queries come a minute after the last report */
	now.mono_ms += 60000;
	printf("%-40s %9s %9s %9s  %s\n", "operation", "samples", "p50_ns", "p99_ns", "note");
	bench_queries(c, &o, &now, v);
	bench_ingest(c, &o, &now, v);
	free(v);
	hearth_context_free(c);
	return 0;
}
