/*
 * plan_bench.c - what a plan preview costs (issue 5: plan-preview p99 <= 1 ms
 * for a 10-step recipe over 200 devices, and how it grows with 50 / 200 /
 * 1,000 devices).
 *
 * The recipe is the inline document below: 10 steps over lights (on/off with
 * brightness, colour temperature), covers, media power and volume, climate
 * setpoint and switches, all aimed at the room slot, several with "holds"
 * bounds. It is validated with hearth_recipe_parse, written to a temporary
 * folder and loaded as a book of one. The home is a context registry fed
 * through its own messages (DEVICE_META, then DEVICE_STATE, so every device
 * reports state and every "holds" is evaluated): a target room "lounge" and
 * other rooms of 20 devices each, every room built from the same 20
 * templates (lights, a LED strip, plugs, a blind, a TV, a speaker, a lock, a
 * thermostat, sensors, switches, an IR remote). Two layouts:
 *
 *   - room 20: the lounge holds 20 devices (one of each template) whatever
 *     the size of the home; the rest are elsewhere;
 *   - room 20%: the lounge holds a fifth of the home (the templates in turn),
 *     to show what a bigger room costs. A plan is capped at
 *     CONFIG_HEARTH_MAX_PLAN_STEPS steps; past it the intent is refused
 *     (too_large) and the row says so.
 *
 * Each row times hearth_orch_handle on a preview intent
 * {"intent":"bench.evening","slots":{"room":"lounge"},"preview":true}: slot
 * resolution, binding, holds, policy, rationale, and the INTENT_REPLY's JSON,
 * which the outbox frees at once (as the bus would after sending it). The
 * intent body is parsed outside the timed region (the runtime hands it over
 * parsed). A third set of rows does the same for the text "movie night in the
 * lounge" through the matcher of the built-in library (HEARTH_RECIPES_DIR),
 * and a last one for the recipe with its lights step as "pick": "one" (every
 * light of the room a candidate plan, scored and ranked).
 *
 *   plan_bench [--iterations N]
 *
 * Every call is timed alone with CLOCK_MONOTONIC; p99 by nearest rank. A
 * benchmark run by hand (see README.md beside this file), not a ctest test.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agents/context/context.h"
#include "agents/msg.h"
#include "agents/orchestrator/orchestrator.h"
#include "hearth_config.h"
#include "platform/alloc.h"
#include "platform/log.h"
#include "recipes/recipe.h"

#ifndef HEARTH_RECIPES_DIR
#error "HEARTH_RECIPES_DIR must be defined (tests/bench/CMakeLists.txt)"
#endif

#define TARGET_ROOM "lounge"
#define ROOM_SIZE   20
#define NSIZES      3

static const int sizes[NSIZES] = {50, 200, 1000};

/* ==== The recipe ==== */

static const char recipe_json[] =
        "{\"id\":\"bench.evening\",\"version\":\"1.0.0\",\"title\":\"Bench evening\","
        "\"intents\":[\"bench.evening\"],"
        "\"sentences\":[\"bench evening [in the] {room}\"],"
        "\"slots\":{\"room\":{\"type\":\"room\",\"required\":true}},"
        "\"approval\":\"auto\",\"targets\":{\"latency_ms\":1000,\"max_approvals\":0},"
        "\"steps\":["
        "{\"id\":\"lights\",\"capability\":\"light.on_off\","
        "\"target\":{\"room\":\"{room}\",\"kind\":\"light\"},"
        "\"args\":{\"on\":true,\"brightness\":30},"
        "\"holds\":{\"on\":true,\"brightness\":{\"max\":30}}},"
        "{\"id\":\"strip\",\"capability\":\"light.color_temp\","
        "\"target\":{\"room\":\"{room}\",\"kind\":\"ledstrip\"},"
        "\"args\":{\"on\":true,\"color_temp\":2200}},"
        "{\"id\":\"covers\",\"capability\":\"cover.position\",\"target\":{\"room\":\"{room}\"},"
        "\"args\":{\"position\":0},\"holds\":{\"position\":{\"max\":10}}},"
        "{\"id\":\"tv\",\"capability\":\"media.power\","
        "\"target\":{\"room\":\"{room}\",\"kind\":\"tv\"},\"args\":{\"on\":true}},"
        "{\"id\":\"speaker\",\"capability\":\"media.power\","
        "\"target\":{\"room\":\"{room}\",\"kind\":\"speaker\"},\"args\":{\"on\":true},"
        "\"after\":[\"tv\"]},"
        "{\"id\":\"volume\",\"capability\":\"media.volume\",\"target\":{\"room\":\"{room}\"},"
        "\"args\":{\"volume\":25},\"holds\":{\"volume\":{\"max\":25}},"
        "\"after\":[\"speaker\"]},"
        "{\"id\":\"climate\",\"capability\":\"climate.setpoint\","
        "\"target\":{\"room\":\"{room}\"},\"args\":{\"setpoint\":21},"
        "\"holds\":{\"setpoint\":{\"min\":20}}},"
        "{\"id\":\"plugs\",\"capability\":\"switch.on_off\","
        "\"target\":{\"room\":\"{room}\",\"kind\":\"plug\"},\"args\":{\"on\":false}},"
        "{\"id\":\"fans\",\"capability\":\"switch.on_off\","
        "\"target\":{\"room\":\"{room}\",\"kind\":\"switch\"},\"args\":{\"on\":false}},"
        "{\"id\":\"remote\",\"capability\":\"media.power\","
        "\"target\":{\"room\":\"{room}\",\"kind\":\"remote\"},\"args\":{\"on\":true},"
        "\"after\":[\"tv\"]}"
        "]}";

/* ==== Time and statistics ==== */

static inline int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static double
percentile_us(int64_t *v, long n, double p)
{
	long rank = (long)(p / 100.0 * (double)n + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)v[rank - 1] / 1000.0;
}

/* ==== The home ==== */

struct tpl {
	const char *name, *kind, *caps, *state;
};

/* One room: 20 devices. Their first states leave some steps holding already
 * (lamp1 dim enough, the thermostat warm enough, plug2 and the switches off). */
static const struct tpl room_tpl[] = {
        {"ceiling", "light", "\"light.on_off\",\"light.brightness\",\"light.color_temp\"",
         "{\"on\":false,\"brightness\":80,\"color_temp\":2700}"},
        {"tv", "tv", "\"media.power\",\"media.volume\"", "{\"on\":false,\"volume\":20}"},
        {"blind", "cover", "\"cover.position\"", "{\"position\":100}"},
        {"lamp1", "light", "\"light.on_off\",\"light.brightness\"",
         "{\"on\":true,\"brightness\":25}"},
        {"trv", "thermostat", "\"climate.setpoint\",\"sensor.temperature\"",
         "{\"setpoint\":20.5,\"temperature\":19.8}"},
        {"speaker", "speaker", "\"media.power\",\"media.volume\"", "{\"on\":false,\"volume\":35}"},
        {"plug1", "plug", "\"switch.on_off\"", "{\"on\":true}"},
        {"strip", "ledstrip", "\"light.on_off\",\"light.brightness\",\"light.color_temp\"",
         "{\"on\":false,\"brightness\":20,\"color_temp\":3000}"},
        {"motion", "sensor", "\"sensor.motion\",\"sensor.illuminance\"",
         "{\"motion\":false,\"illuminance\":120}"},
        {"fan", "switch", "\"switch.on_off\"", "{\"on\":true}"},
        {"lamp2", "light", "\"light.on_off\",\"light.brightness\"",
         "{\"on\":false,\"brightness\":100}"},
        {"ir", "remote", "\"media.power\"", "{\"on\":false}"},
        {"lock", "lock", "\"lock.lock\"", "{\"locked\":true}"},
        {"presence", "sensor", "\"sensor.occupancy\"", "{\"occupancy\":true}"},
        {"bulb", "light", "\"light.on_off\"", "{\"on\":false}"},
        {"plug2", "plug", "\"switch.on_off\"", "{\"on\":false}"},
        {"door", "sensor", "\"sensor.contact\"", "{\"contact\":true}"},
        {"window", "sensor", "\"sensor.contact\"", "{\"contact\":true}"},
        {"climate", "sensor", "\"sensor.temperature\",\"sensor.illuminance\"",
         "{\"temperature\":21.3,\"illuminance\":300}"},
        {"heater", "switch", "\"switch.on_off\"", "{\"on\":false}"},
};
#define NTPL ((int)(sizeof(room_tpl) / sizeof(room_tpl[0])))

static void
post_free(void *ud, hearth_msg *m)
{
	(void)ud;
	hearth_msg_clear(m);
}

/* Keeps the first reply of a row, to count its steps. */
static cJSON *kept;

static void
post_keep(void *ud, hearth_msg *m)
{
	(void)ud;
	if (m->type == HEARTH_MSG_INTENT_REPLY && !kept) {
		kept = m->body;
		m->body = NULL;
	}
	hearth_msg_clear(m);
}

static const hearth_outbox free_box = {.post = post_free, .ud = NULL};
static const hearth_outbox keep_box = {.post = post_keep, .ud = NULL};

static void
feed(hearth_context *c, enum hearth_msg_type type, const char *id, const char *json,
     const hearth_now *now)
{
	hearth_msg m = {.type = type};

	snprintf(m.id, sizeof(m.id), "%s", id);
	m.body = cJSON_Parse(json);
	hearth_context_handle(c, &m, now, &free_box);
	hearth_msg_clear(&m);
}

static void
add_device(hearth_context *c, int i, int t, const char *room, hearth_now *now)
{
	char id[HEARTH_ID_MAX + 1], json[512];
	const struct tpl *tp = &room_tpl[t];

	snprintf(id, sizeof(id), "%s-%04d", tp->name, i);
	snprintf(json, sizeof(json),
	         "{\"room\":\"%s\",\"kind\":\"%s\",\"name\":\"%s %d\",\"capabilities\":[%s]}", room,
	         tp->kind, tp->name, i, tp->caps);
	feed(c, HEARTH_MSG_DEVICE_META, id, json, now);
	feed(c, HEARTH_MSG_DEVICE_STATE, id, tp->state, now);
	now->wall_ms += 3;
	now->mono_ms += 3;
}

/* devices in all, in_room of them in the target room, the rest in rooms of 20. */
static hearth_context *
build_home(int devices, int in_room, hearth_now *now)
{
	hearth_context *c;
	char room[64];

	if (hearth_context_new(devices, &c)) {
		fprintf(stderr, "plan_bench: out of memory\n");
		exit(1);
	}
	for (int i = 0; i < in_room; i++)
		add_device(c, i, i % NTPL, TARGET_ROOM, now);
	for (int i = in_room; i < devices; i++) {
		int k = i - in_room;

		snprintf(room, sizeof(room), "Room %d", k / ROOM_SIZE + 1);
		add_device(c, i, k % NTPL, room, now);
	}
	if (hearth_context_count(c) != devices) {
		fprintf(stderr, "plan_bench: the registry holds %d devices, not %d\n",
		        hearth_context_count(c), devices);
		exit(1);
	}
	return c;
}

/* ==== Rows ==== */

struct result {
	double p50, p99;
	bool refused;
};

static void
run_one(hearth_orch *o, const char *body, long seq, const hearth_now *now, const hearth_outbox *box,
        int64_t *dt)
{
	hearth_msg m = {.type = HEARTH_MSG_INTENT};
	int64_t t0;

	snprintf(m.id, sizeof(m.id), "i-%ld", seq);
	m.body = cJSON_Parse(body);
	if (!m.body) {
		fprintf(stderr, "plan_bench: bad intent %s\n", body);
		exit(1);
	}
	t0 = now_ns();
	hearth_orch_handle(o, &m, now, box);
	if (dt)
		*dt = now_ns() - t0;
	hearth_msg_clear(&m);
}

/* Time n previews of body; print one row. */
static struct result
row(const char *layout, hearth_orch *o, int devices, int in_room, const char *body, long n,
    int64_t *v, const hearth_now *now)
{
	const cJSON *steps, *st, *err;
	int bound = 0, skipped = 0;
	char state[48];
	struct result r;

	/* the first reply, kept and read: what the user would see */
	kept = NULL;
	run_one(o, body, 0, now, &keep_box, NULL);
	if (!kept) {
		fprintf(stderr, "plan_bench: no reply to %s\n", body);
		exit(1);
	}
	err = cJSON_GetObjectItemCaseSensitive(kept, "error");
	steps = cJSON_GetObjectItemCaseSensitive(kept, "steps");
	cJSON_ArrayForEach(st, steps)
	{
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(st, "state");

		bound++;
		skipped += cJSON_IsString(s) && !strcmp(s->valuestring, "skipped");
	}
	if (cJSON_IsString(err))
		snprintf(state, sizeof(state), "refused: %s", err->valuestring);
	else
		snprintf(state, sizeof(state), "previewed");
	r.refused = cJSON_IsString(err);

	for (long i = 0; i < n / 20; i++) /* warm up */
		run_one(o, body, i + 1, now, &free_box, NULL);
	for (long i = 0; i < n; i++)
		run_one(o, body, i + 1, now, &free_box, &v[i]);
	cJSON_Delete(kept);
	kept = NULL;
	qsort(v, (size_t)n, sizeof(*v), cmp_i64);
	r.p50 = percentile_us(v, n, 50);
	r.p99 = percentile_us(v, n, 99);
	printf("%-10s %8d %8d %6d %7d %8.1f %8.1f %8.1f  %s\n", layout, devices, in_room, bound,
	       skipped, r.p50, r.p99, (double)v[n - 1] / 1000.0, state);
	fflush(stdout);
	return r;
}

static void
growth(const char *what, const struct result *r)
{
	if (r[2].refused) {
		printf("growth %-18s p50 %.1f -> %.1f us (x%.2f from 50 to 200 devices), p99 %.1f "
		       "-> %.1f us (x%.2f); at 1,000 the plan passes %d steps and is refused\n",
		       what, r[0].p50, r[1].p50, r[1].p50 / r[0].p50, r[0].p99, r[1].p99,
		       r[1].p99 / r[0].p99, CONFIG_HEARTH_MAX_PLAN_STEPS);
		return;
	}
	printf("growth %-18s p50 %.1f -> %.1f -> %.1f us (x%.2f from 50 to 1,000 devices), "
	       "p99 %.1f -> %.1f -> %.1f us (x%.2f)\n",
	       what, r[0].p50, r[1].p50, r[2].p50, r[2].p50 / r[0].p50, r[0].p99, r[1].p99,
	       r[2].p99, r[2].p99 / r[0].p99);
}

/* ==== Books ==== */

static void
report_problem(void *ud, const char *line)
{
	(void)ud;
	fprintf(stderr, "plan_bench: recipe problem: %s\n", line);
}

/* Validate a recipe (the inline one, or its pick-one variant), write it to a
 * temporary folder, load it. */
static hearth_recipe_book *
bench_book(const char *json)
{
	char dir[] = "/tmp/plan_bench.XXXXXX", path[64], why[256] = "";
	struct hearth_recipe *r;
	hearth_recipe_book *b;
	FILE *f;

	if (hearth_recipe_parse(json, strlen(json), "bench.evening.json", &r, why, sizeof(why))) {
		fprintf(stderr, "plan_bench: %s\n", why);
		exit(1);
	}
	if (r->nsteps != 10) {
		fprintf(stderr, "plan_bench: the recipe has %d steps, not 10\n", r->nsteps);
		exit(1);
	}
	hearth_recipe_free(r);
	if (!mkdtemp(dir)) {
		perror("plan_bench: mkdtemp");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/bench.evening.json", dir);
	f = fopen(path, "w");
	if (!f || fputs(json, f) < 0 || fclose(f)) {
		perror("plan_bench: writing the recipe");
		exit(1);
	}
	if (hearth_recipe_book_load(dir, &b, report_problem, NULL, why, sizeof(why)) ||
	    hearth_recipe_book_count(b) != 1) {
		fprintf(stderr, "plan_bench: loading %s: %s\n", dir, why);
		exit(1);
	}
	unlink(path);
	rmdir(dir);
	return b;
}

/*
 * The recipe with its "lights" step as "pick": "one": each light of the room
 * makes a candidate plan, all bound, critiqued and scored (the cost of the
 * alternatives).
 */
static char *
pick_variant(void)
{
	static const char anchor[] = "\"target\":{\"room\":\"{room}\",\"kind\":\"light\"},";
	const char *at = strstr(recipe_json, anchor);
	size_t head, len = strlen(recipe_json);
	char *out = malloc(len + 32);

	if (!at || !out) {
		fprintf(stderr, "plan_bench: cannot make the pick-one recipe\n");
		exit(1);
	}
	head = (size_t)(at - recipe_json) + strlen(anchor);
	memcpy(out, recipe_json, head);
	strcpy(out + head, "\"pick\":\"one\",");
	strcat(out, recipe_json + head);
	return out;
}

/* ==== Main ==== */

static int
usage(void)
{
	fprintf(stderr, "usage: plan_bench [--iterations N]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	static const char structured[] =
	        "{\"intent\":\"bench.evening\",\"slots\":{\"room\":\"" TARGET_ROOM
	        "\"},\"preview\":true}";
	static const char text[] =
	        "{\"text\":\"movie night in the " TARGET_ROOM "\",\"preview\":true}";
	hearth_now now = {.mono_ms = 1000, .wall_ms = 1700000000000};
	struct result fixed[NSIZES], share[NSIZES], movie[NSIZES], pick[NSIZES];
	hearth_recipe_book *bench, *library, *picky;
	char *pick_json;
	char why[256] = "";
	long n = 20000;
	int64_t *v, t0;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--iterations"))
			n = atol(argv[++i]);
		else
			return usage();
	}
	if (n < 100)
		return usage();
	hearth_alloc_init();
	hearth_log_set_level(HEARTH_LOG_WARN);
	v = calloc((size_t)n, sizeof(*v));
	if (!v) {
		fprintf(stderr, "plan_bench: out of memory\n");
		return 1;
	}
	bench = bench_book(recipe_json);
	pick_json = pick_variant();
	picky = bench_book(pick_json);
	if (hearth_recipe_book_load(HEARTH_RECIPES_DIR, &library, report_problem, NULL, why,
	                            sizeof(why))) {
		fprintf(stderr, "plan_bench: %s: %s\n", HEARTH_RECIPES_DIR, why);
		return 1;
	}
	t0 = now_ns();
	printf("plan_bench: preview latency of hearth_orch_handle, %ld samples a row, reply JSON "
	       "built and freed\n",
	       n);
	printf("%-10s %8s %8s %6s %7s %8s %8s %8s  %s\n", "layout", "devices", "in_room", "bound",
	       "skipped", "p50_us", "p99_us", "max_us", "reply");
	for (int pass = 0; pass < 4; pass++) {
		for (int s = 0; s < NSIZES; s++) {
			int devices = sizes[s];
			int in_room = pass == 1 ? devices / 5 : ROOM_SIZE;
			hearth_context *c = build_home(devices, in_room, &now);
			hearth_orch *o;

			if (hearth_orch_new(pass == 2   ? library
			                    : pass == 3 ? picky
			                                : bench,
			                    c, &o)) {
				fprintf(stderr, "plan_bench: out of memory\n");
				return 1;
			}
			now.wall_ms += 60000;
			now.mono_ms += 60000;
			if (pass == 0)
				fixed[s] =
				        row("room 20", o, devices, in_room, structured, n, v, &now);
			else if (pass == 1)
				share[s] = row("room 20%", o, devices, in_room, structured, n, v,
				               &now);
			else if (pass == 2)
				movie[s] = row("text movie", o, devices, in_room, text, n, v, &now);
			else
				pick[s] = row("pick one", o, devices, in_room, structured, n, v,
				              &now);
			hearth_orch_free(o);
			hearth_context_free(c);
		}
	}
	growth("(room 20):", fixed);
	growth("(room 20%):", share);
	growth("(text movie):", movie);
	growth("(pick one):", pick);
	printf("bench.evening, 10 steps, 200 devices, room of 20: p50 %.1f us, p99 %.1f us "
	       "(target p99 <= 1000 us: %s); whole run %.1f s\n",
	       fixed[1].p50, fixed[1].p99, fixed[1].p99 <= 1000.0 ? "met" : "MISSED",
	       (double)(now_ns() - t0) / 1e9);
	free(v);
	hearth_recipe_book_free(library);
	hearth_recipe_book_free(bench);
	hearth_recipe_book_free(picky);
	free(pick_json);
	return 0;
}
