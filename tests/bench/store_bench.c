/*
 * store_bench.c - what durability and queries cost in hearth's LMDB store
 * (issue 3): episode append and audit append, each synced with one record
 * per flush, group-committed with 100 records per flush, and with syncing
 * off; then the cost of reading episodic memory once it holds 100k episodes
 * of about 1 KB (the form agents/plan.c writes): the newest 20, a full scan,
 * and, when memory/episodic.c is linked, a query by recipe and by time range.
 *
 *   store_bench [--episodes N] [--dir DIR] [--keep]
 *
 * Every time is taken with CLOCK_MONOTONIC around the library calls the
 * runtime makes (queue, then hearth_store_flush) and printed as the median
 * and the 99th percentile (nearest rank) in microseconds, in one table.
 * Group-committed rows are per record (the batch's time / 100). The stores
 * live in a fresh folder under DIR (default $TMPDIR or /tmp), removed at the
 * end unless --keep. Sync costs are those of DIR's file system: run it on
 * the hub's data partition to learn what the hub pays.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memory/store.h"
#include "platform/err.h"
#include "platform/log.h"
#if HEARTH_BENCH_AUDIT
#include "memory/audit.h"
#endif
#if HEARTH_BENCH_EPISODIC
#include "memory/episodic.h"
#endif

#define GROUP        100 /* records per flush in the group-committed rows */
#define SYNC_SAMPLES 300
#define FAST_SAMPLES 3000
#define FILL_BATCH   1000
#define SPAN_MS      (100LL * 24 * 3600 * 1000) /* the filled episodes cover 100 days */
#define DAY_MS       (24LL * 3600 * 1000)
#define EPISODE_MAX  4096

struct opts {
	long episodes;
	const char *parent;
	bool keep;
};

static char root[PATH_MAX];
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static int64_t wall0; /* base of the record times: now - SPAN_MS */

/* ==== Time and statistics ==== */

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of v[0..n) (sorts v). */
static double
percentile(double *v, size_t n, double p)
{
	size_t rank;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static void
row(const char *what, double *v, size_t n, const char *note)
{
	double med = percentile(v, n, 50), p99 = percentile(v, n, 99);

	printf("%-44s %8zu %12.1f %12.1f  %s\n", what, n, med, p99, note ? note : "");
	fflush(stdout);
}

#if !HEARTH_BENCH_AUDIT || !HEARTH_BENCH_EPISODIC
static void
row_skipped(const char *what, const char *why)
{
	printf("%-44s %8s %12s %12s  %s\n", what, "-", "-", "-", why);
	fflush(stdout);
}
#endif

/* ==== Records ==== */

static uint64_t
rnd(void)
{
	/* xorshift64*: fixed seed, so every run writes the same records. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

struct step_tpl {
	const char *id, *device, *capability, *args;
};

struct recipe_tpl {
	const char *name, *room, *text, *rationale;
	int weight;
	struct step_tpl steps[4];
};

static const struct recipe_tpl recipes[] = {
        {"scene.movie_night",
         "living",
         "movie night in the living room",
         "Movie night in the living room: the sofa lamp dims to 30 %, the blind closes and the "
         "TV turns on. Nothing needs an approval: no lock, alarm or camera is touched, and the "
         "three devices are local and online (sofa lamp 40 ms, blind 1.8 s, TV 600 ms).",
         40,
         {{"dim", "lamp-1", "light.brightness", "{\"on\":true,\"brightness\":30}"},
          {"close", "blind-1", "cover.position", "{\"position\":0}"},
          {"tv", "tv-1", "media.power", "{\"on\":true}"},
          {NULL, NULL, NULL, NULL}}},
        {"scene.good_morning",
         "bedroom",
         "good morning",
         "Good morning: the bedroom blind opens, the bedside lamp turns on at 70 % and the "
         "thermostat goes to 21 degrees. It is 07:02 on a weekday and somebody is home, as on "
         "most mornings at this time (habit: 0.82).",
         20,
         {{"open", "blind-2", "cover.position", "{\"position\":100}"},
          {"light", "bedlamp-1", "light.brightness", "{\"on\":true,\"brightness\":70}"},
          {"warm", "thermostat-1", "climate.setpoint", "{\"setpoint\":21}"},
          {NULL, NULL, NULL, NULL}}},
        {"scene.bedtime",
         "bedroom",
         "bedtime",
         "Bedtime: every light downstairs turns off, the front door locks and the thermostat "
         "goes down to 18 degrees. Locking needs no approval; unlocking would.",
         20,
         {{"off", "lamp-1", "light.on_off", "{\"on\":false}"},
          {"off2", "hall-1", "light.on_off", "{\"on\":false}"},
          {"lock", "lock-1", "lock.lock", "{\"locked\":true}"},
          {"cool", "thermostat-1", "climate.setpoint", "{\"setpoint\":18}"}}},
        {"mode.away",
         "home",
         "we are leaving",
         "Away: nobody is home any more (last motion 12 min ago, both phones away), so every "
         "light and the TV turn off and the front door locks.",
         10,
         {{"off", "lamp-1", "light.on_off", "{\"on\":false}"},
          {"tv", "tv-1", "media.power", "{\"on\":false}"},
          {"lock", "lock-1", "lock.lock", "{\"locked\":true}"},
          {NULL, NULL, NULL, NULL}}},
        {"mode.arrive_home",
         "hall",
         "I am home",
         "Arrive home: the hall light turns on and the thermostat goes back to 21 degrees; "
         "the door was unlocked by hand, so the plan leaves it alone.",
         8,
         {{"hall", "hall-1", "light.on_off", "{\"on\":true}"},
          {"warm", "thermostat-1", "climate.setpoint", "{\"setpoint\":21}"},
          {NULL, NULL, NULL, NULL},
          {NULL, NULL, NULL, NULL}}},
        {"door.unlock",
         "hall",
         "unlock the front door",
         "Unlock the front door: high risk, so the paired phone was asked and approved it "
         "(phone-1, 4.2 s). Nobody else is touched.",
         2,
         {{"unlock", "lock-1", "lock.lock", "{\"locked\":false}"},
          {NULL, NULL, NULL, NULL},
          {NULL, NULL, NULL, NULL},
          {NULL, NULL, NULL, NULL}}},
};

#define NRECIPES (sizeof(recipes) / sizeof(recipes[0]))

static const struct recipe_tpl *
pick_recipe(void)
{
	int total = 0, r;

	for (size_t i = 0; i < NRECIPES; i++)
		total += recipes[i].weight;
	r = (int)(rnd() % (uint64_t)total);
	for (size_t i = 0; i < NRECIPES; i++) {
		if (r < recipes[i].weight)
			return &recipes[i];
		r -= recipes[i].weight;
	}
	return &recipes[0];
}

/*
 * An episode as hearth_plan_episode_json writes it (agents/plan.c): v, id,
 * intent_id, intent, recipe, recipe_version, slots, source, user, outcome,
 * ts, ended_at, latency_ms, steps, rationale. Returns its length.
 */
static size_t
make_episode(char *buf, size_t cap, long i, int64_t ended_at)
{
	const struct recipe_tpl *r = pick_recipe();
	const char *outcome = rnd() % 50 ? "completed" : (rnd() % 2 ? "compensated" : "failed");
	int64_t total = 150 + (int64_t)(rnd() % 2500);
	size_t len;
	int n;

	n = snprintf(
	        buf, cap,
	        "{\"v\":1,\"id\":\"p-%" PRIx64 "-%ld\",\"intent_id\":\"i-%ld\",\"intent\":\"%s\","
	        "\"recipe\":\"%s\",\"recipe_version\":\"1.0.0\",\"policy_hash\":\"%016" PRIx64
	        "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "\",\"slots\":{\"room\":\"%s\"},"
	        "\"source\":\"remote-%d\",\"user\":\"%s\",\"outcome\":\"%s\","
	        "\"ts\":%" PRId64 ",\"ended_at\":%" PRId64 ",\"latency_ms\":{\"first_command\":%d,"
	        "\"total\":%" PRId64 "},\"steps\":[",
	        (uint64_t)(ended_at - total), i, i, r->name, r->name, rnd(), rnd(), rnd(), rnd(),
	        r->room, (int)(rnd() % 4) + 1, rnd() % 3 ? "alice" : "bob", outcome,
	        ended_at - total, ended_at, 3 + (int)(rnd() % 40), total);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	len = (size_t)n;
	for (int s = 0; s < 4 && r->steps[s].id; s++) {
		const struct step_tpl *t = &r->steps[s];
		const char *state = !strcmp(outcome, "completed")
		                            ? (rnd() % 5 ? "confirmed" : "skipped")
		                            : "failed";

		n = snprintf(buf + len, cap - len,
		             "%s{\"id\":\"%s\",\"device\":\"%s\",\"capability\":\"%s\",\"args\":%s,"
		             "\"state\":\"%s\"%s}",
		             s ? "," : "", t->id, t->device, t->capability, t->args, state,
		             state[0] == 's' ? ",\"note\":\"already holds: left alone\"" : "");
		if (n < 0 || (size_t)n >= cap - len)
			return 0;
		len += (size_t)n;
	}
	n = snprintf(buf + len, cap - len, "],\"rationale\":\"%s\"}", r->rationale);
	if (n < 0 || (size_t)n >= cap - len)
		return 0;
	return len + (size_t)n;
}

/* ==== Stores ==== */

static hearth_store *
open_store(const char *name, bool no_sync, long episodes_max)
{
	struct hearth_store_opts so = {0};
	char dir[PATH_MAX + 64], why[256];
	hearth_store *st;
	int err;

	snprintf(dir, sizeof(dir), "%s/%s", root, name);
	so.dir = dir;
	so.home_id = "bench";
	so.map_size = (size_t)512 << 20;
	so.map_max = (size_t)4096 << 20;
	so.episodes_max = episodes_max;
	so.no_sync = no_sync;
	err = hearth_store_open(&so, &st, why, sizeof(why));
	if (err) {
		fprintf(stderr, "store_bench: %s\n", why[0] ? why : hearth_strerror(err));
		return NULL;
	}
	return st;
}

static int
flush(hearth_store *st)
{
	char why[256];
	int err = hearth_store_flush(st, why, sizeof(why));

	if (err)
		fprintf(stderr, "store_bench: flush: %s\n", why[0] ? why : hearth_strerror(err));
	return err;
}

/* ==== Appends ==== */

/* One kind of record: how to queue record i. */
typedef int (*queue_fn)(hearth_store *st, long i);

static char ep_buf[EPISODE_MAX];

static int
queue_episode(hearth_store *st, long i)
{
	int64_t ts = wall0 + SPAN_MS + i;
	size_t len = make_episode(ep_buf, sizeof(ep_buf), i, ts);

	return len ? hearth_store_episode_add(st, ts, ep_buf, len) : HEARTH_E_TOO_LARGE;
}

#if HEARTH_BENCH_AUDIT
static int
queue_audit(hearth_store *st, long i)
{
	char subject[64], detail[512];

	snprintf(subject, sizeof(subject), "p-%ld", i);
	snprintf(detail, sizeof(detail),
	         "{\"plan_id\":\"p-%ld\",\"intent_id\":\"i-%ld\",\"recipe\":\"scene.movie_night\","
	         "\"outcome\":\"completed\",\"steps\":3,\"approvals\":0,\"policy_hash\":"
	         "\"9f2c1e7a0b5d4c3e8a6f1b2d3c4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a\"}",
	         i, i);
	return hearth_audit_append(st, wall0 + SPAN_MS + i, "plan.completed", subject, detail);
}
#endif

/*
 * samples x (per records queued, one flush), on a fresh store. Each sample
 * is the time of the whole batch divided by per. Returns 0 or an error.
 */
static int
bench_append(const char *label, const char *name, queue_fn q, bool no_sync, int per, int samples)
{
	double *v = calloc((size_t)samples, sizeof(*v));
	hearth_store *st = open_store(name, no_sync, 0);
	long i = 0;
	char note[96];
	int err = 0;

	if (!v || !st) {
		free(v);
		hearth_store_close(st);
		return v ? HEARTH_E_STORE : -ENOMEM;
	}
	/* Warm up: the first commits create the databases' pages. */
	for (int w = 0; w < 5 && !err; w++) {
		for (int k = 0; k < per && !err; k++)
			err = q(st, i++);
		err = err ? err : flush(st);
	}
	for (int s = 0; s < samples && !err; s++) {
		double t0 = now_us();

		for (int k = 0; k < per && !err; k++)
			err = q(st, i++);
		if (!err)
			err = flush(st);
		v[s] = (now_us() - t0) / per;
	}
	if (err) {
		fprintf(stderr, "store_bench: %s: %s\n", label, hearth_strerror(err));
	} else {
		if (per > 1)
			snprintf(note, sizeof(note), "per record, %d per flush", per);
		else
			snprintf(note, sizeof(note), "%s",
			         no_sync ? "MDB_NOSYNC" : "one fsync per record");
		row(label, v, (size_t)samples, note);
	}
	hearth_store_close(st);
	free(v);
	return err;
}

/* ==== Queries ==== */

struct tally {
	long n;
	size_t bytes;
};

static int
count_raw(void *ud, const char *key, const char *json, size_t len)
{
	struct tally *t = ud;

	t->n++;
	t->bytes += len;
	return 0;
}

#if HEARTH_BENCH_EPISODIC
static int
count_ep(void *ud, const struct hearth_episode *ep)
{
	struct tally *t = ud;

	t->n++;
	t->bytes += ep->len;
	return 0;
}
#endif

/* Fill a store with n episodes spread over SPAN_MS, FILL_BATCH per flush. */
static hearth_store *
fill(long n, double *avg_len)
{
	hearth_store *st = open_store("query", false, n);
	double t0 = now_us(), secs;
	size_t bytes = 0;
	char note[128];
	int err = 0;

	if (!st)
		return NULL;
	for (long i = 0; i < n && !err; i++) {
		int64_t ts = wall0 + (int64_t)((double)SPAN_MS * (double)i / (double)n);
		size_t len = make_episode(ep_buf, sizeof(ep_buf), i, ts);

		bytes += len;
		err = len ? hearth_store_episode_add(st, ts, ep_buf, len) : HEARTH_E_TOO_LARGE;
		if (!err && ((i + 1) % FILL_BATCH == 0 || i + 1 == n))
			err = flush(st);
	}
	if (err) {
		fprintf(stderr, "store_bench: filling the store: %s\n", hearth_strerror(err));
		hearth_store_close(st);
		return NULL;
	}
	secs = (now_us() - t0) / 1e6;
	*avg_len = n ? (double)bytes / (double)n : 0;
	snprintf(note, sizeof(note), "%ld episodes of %.0f B avg in %.2f s (%.0f/s), %d per flush",
	         n, *avg_len, secs, (double)n / secs, FILL_BATCH);
	printf("%-44s %8s %12s %12s  %s\n", "fill", "-", "-", "-", note);
	fflush(stdout);
	return st;
}

static int
bench_each(hearth_store *st, const char *label, long limit, int samples)
{
	double *v = calloc((size_t)samples, sizeof(*v));
	struct tally t = {0};
	char note[96];
	int err = 0;

	if (!v)
		return -ENOMEM;
	for (int s = 0; s < samples && !err; s++) {
		double t0 = now_us();

		t.n = 0;
		err = hearth_store_episodes_each(st, limit, count_raw, &t);
		v[s] = now_us() - t0;
	}
	if (!err) {
		snprintf(note, sizeof(note), "%ld episodes visited", t.n);
		row(label, v, (size_t)samples, note);
	}
	free(v);
	return err;
}

#if HEARTH_BENCH_EPISODIC
static int
bench_query(hearth_store *st, const char *label, const struct hearth_episode_query *q, int samples)
{
	double *v = calloc((size_t)samples, sizeof(*v));
	struct tally t = {0};
	char note[96];
	long got = 0;

	if (!v)
		return -ENOMEM;
	for (int s = 0; s < samples && got >= 0; s++) {
		double t0 = now_us();

		t.n = 0;
		got = hearth_episodes_query(st, q, count_ep, &t);
		v[s] = now_us() - t0;
	}
	if (got >= 0) {
		snprintf(note, sizeof(note), "%ld matches", got);
		row(label, v, (size_t)samples, note);
	}
	free(v);
	return got < 0 ? (int)got : 0;
}
#endif

static int
bench_queries(long n)
{
	double avg = 0;
	hearth_store *st = fill(n, &avg);
	int err;

	if (!st)
		return HEARTH_E_STORE;
	err = bench_each(st, "episodes_each: newest 20", 20, FAST_SAMPLES);
	if (!err)
		err = bench_each(st, "episodes_each: full scan", 0, 20);
#if HEARTH_BENCH_EPISODIC
	{
		struct hearth_episode_query q = {0};

		q.recipe = "scene.bedtime";
		q.limit = 20;
		if (!err)
			err = bench_query(st, "query: recipe, newest 20", &q, 300);
		q.limit = 0;
		if (!err)
			err = bench_query(st, "query: recipe, all", &q, 10);
		q.recipe = NULL;
		q.from_ms = wall0 + SPAN_MS - DAY_MS;
		if (!err)
			err = bench_query(st, "query: time range, last day", &q, 100);
		q.from_ms = wall0 + SPAN_MS / 2;
		q.to_ms = q.from_ms + 3600 * 1000;
		if (!err)
			err = bench_query(st, "query: time range, one hour", &q, 1000);
		q.from_ms = wall0 + SPAN_MS - 30 * DAY_MS;
		q.to_ms = 0;
		q.recipe = "door.unlock";
		if (!err)
			err = bench_query(st, "query: recipe + last 30 days", &q, 20);
	}
#else
	row_skipped("query: recipe / time range",
	            "skipped: memory/episodic.c is not part of hearth_memory");
#endif
	if (err)
		fprintf(stderr, "store_bench: query: %s\n", hearth_strerror(err));
	hearth_store_close(st);
	return err;
}

/* ==== Folder ==== */

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	if (remove(path))
		fprintf(stderr, "store_bench: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static int
make_root(const char *parent)
{
	const char *tmp = getenv("TMPDIR");

	if (!parent)
		parent = tmp && tmp[0] ? tmp : "/tmp";
	if (snprintf(root, sizeof(root), "%s/store-bench-XXXXXX", parent) >= (int)sizeof(root)) {
		fprintf(stderr, "store_bench: %s: path too long\n", parent);
		return -1;
	}
	if (!mkdtemp(root)) {
		fprintf(stderr, "store_bench: cannot create a folder in %s: %s\n", parent,
		        strerror(errno));
		return -1;
	}
	return 0;
}

/* ==== Main ==== */

static void
usage(FILE *f)
{
	fputs("usage: store_bench [--episodes N] [--dir DIR] [--keep]\n"
	      "  --episodes N  episodes in the query store (default 100000)\n"
	      "  --dir DIR     make the temporary stores under DIR (default $TMPDIR or /tmp)\n"
	      "  --keep        keep them (the folder is printed)\n",
	      f);
}

static int
parse_args(int argc, char **argv, struct opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *end;

		if (!strcmp(a, "--episodes") && i + 1 < argc) {
			errno = 0;
			o->episodes = strtol(argv[++i], &end, 10);
			if (errno || *end || o->episodes < 1 || o->episodes > 10000000) {
				fprintf(stderr, "store_bench: --episodes: expected 1..10000000\n");
				return 2;
			}
		} else if (!strcmp(a, "--dir") && i + 1 < argc) {
			o->parent = argv[++i];
		} else if (!strcmp(a, "--keep")) {
			o->keep = true;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "store_bench: unexpected argument %s\n", a);
			usage(stderr);
			return 2;
		}
	}
	return -1;
}

int
main(int argc, char **argv)
{
	struct opts o = {.episodes = 100000};
	struct timespec ts;
	int rc, err = 0;

	rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	hearth_log_set_level(HEARTH_LOG_WARN);
	clock_gettime(CLOCK_REALTIME, &ts);
	wall0 = (int64_t)ts.tv_sec * 1000 - SPAN_MS - 2 * DAY_MS;
	if (make_root(o.parent))
		return 1;
	printf("store_bench: stores in %s\n\n", root);
	printf("%-44s %8s %12s %12s  %s\n", "measure", "samples", "median_us", "p99_us", "note");

	err = bench_append("episode append, synced", "ep-sync", queue_episode, false, 1,
	                   SYNC_SAMPLES);
	if (!err)
		err = bench_append("episode append, synced, group commit", "ep-group",
		                   queue_episode, false, GROUP, SYNC_SAMPLES / 3);
	if (!err)
		err = bench_append("episode append, no_sync", "ep-nosync", queue_episode, true, 1,
		                   FAST_SAMPLES);
#if HEARTH_BENCH_AUDIT
	if (!err)
		err = bench_append("audit append, synced", "au-sync", queue_audit, false, 1,
		                   SYNC_SAMPLES);
	if (!err)
		err = bench_append("audit append, synced, group commit", "au-group", queue_audit,
		                   false, GROUP, SYNC_SAMPLES / 3);
	if (!err)
		err = bench_append("audit append, no_sync", "au-nosync", queue_audit, true, 1,
		                   FAST_SAMPLES);
#else
	row_skipped("audit append", "skipped: memory/audit.c is not part of hearth_memory");
#endif
	if (!err)
		err = bench_queries(o.episodes);

	if (o.keep) {
		printf("\nstore_bench: stores kept in %s\n", root);
	} else {
		nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	return err ? 1 : 0;
}
