/*
 * test_semantic.c - semantic memory: recipe posteriors, device latency and
 * reliability, habits and generic values; several updates of one record in
 * one flush all count, versions increase, records survive a reopen, the p95
 * of a known sample set falls in the right bucket, a corrupt record does not
 * block the flush, and failing allocations queue nothing (or, inside the
 * flush, leave the queue for the next one). Every test works in its own
 * mkdtemp directory, removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "memory/semantic.h"
#include "memory/store.h"
#include "platform/alloc.h"
#include "platform/err.h"
#include "tests/unit/support/tmpstore.h"

/* Write raw bytes under a key of `semantic`, behind the store's back. */
static void
raw_put(const struct tmp *t, const char *key, const char *val)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {strlen(key), (void *)key}, v = {strlen(val), (void *)val};

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, t->dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "semantic", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* ==== Tests ==== */

static void
test_recipe_posterior(void **state)
{
	struct tmp *t = *state;
	struct hearth_recipe_stats rs;
	hearth_store *st = tmpstore_open(t);

	/* Never seen: the prior. */
	assert_int_equal(hearth_semantic_recipe_get(st, "scene.movie_night", &rs), 0);
	assert_true(rs.a == 1 && rs.b == 1 && rs.mean == 0.5);
	assert_int_equal(rs.version, 0);

	/* Three updates in one flush: all three count. */
	assert_int_equal(hearth_semantic_recipe_outcome(st, "scene.movie_night", true), 0);
	assert_int_equal(hearth_semantic_recipe_outcome(st, "scene.movie_night", false), 0);
	assert_int_equal(hearth_semantic_recipe_outcome(st, "scene.movie_night", true), 0);
	assert_int_equal(hearth_semantic_recipe_outcome(st, "lights.off", false), 0);
	/* Reads see what is committed. */
	assert_int_equal(hearth_semantic_recipe_get(st, "scene.movie_night", &rs), 0);
	assert_int_equal(rs.version, 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_semantic_recipe_get(st, "scene.movie_night", &rs), 0);
	assert_true(rs.a == 3 && rs.b == 2);
	assert_true(fabs(rs.mean - 0.6) < 1e-12);
	assert_int_equal(rs.version, 3);
	hearth_store_close(st);

	/* Across a reopen, updated in place: the version goes on. */
	st = tmpstore_open(t);
	assert_int_equal(hearth_semantic_recipe_outcome(st, "scene.movie_night", true), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_semantic_recipe_get(st, "scene.movie_night", &rs), 0);
	assert_true(rs.a == 4 && rs.b == 2);
	assert_int_equal(rs.version, 4);
	assert_int_equal(hearth_semantic_recipe_get(st, "lights.off", &rs), 0);
	assert_true(rs.a == 1 && rs.b == 2);
	assert_int_equal(rs.version, 1);

	/* Bad names queue nothing. */
	assert_int_equal(hearth_semantic_recipe_outcome(st, "", true), HEARTH_E_INVALID);
	assert_int_equal(hearth_semantic_recipe_outcome(st, NULL, true), HEARTH_E_INVALID);
	{
		char longname[300];

		memset(longname, 'x', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		assert_int_equal(hearth_semantic_recipe_outcome(st, longname, true),
		                 HEARTH_E_INVALID);
	}
	assert_int_equal(hearth_store_pending(st), 0);
	hearth_store_close(st);
}

static void
test_device_stats(void **state)
{
	struct tmp *t = *state;
	struct hearth_device_stats ds;
	hearth_store *st = tmpstore_open(t);

	assert_int_equal(hearth_semantic_device_get(st, "lamp-1", &ds), 0);
	assert_int_equal(ds.version, 0);
	assert_int_equal(ds.attempts, 0);
	assert_true(ds.reliability == 0 && ds.p95_ms == 0 && ds.ewma_ms == 0);

	assert_int_equal(hearth_semantic_device_sample(st, "lamp-1", 100, true), 0);
	assert_int_equal(hearth_semantic_device_sample(st, "lamp-1", 200, true), 0);
	/* A timeout: counts as a failed attempt, no latency. */
	assert_int_equal(hearth_semantic_device_sample(st, "lamp-1", -1, false), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_semantic_device_get(st, "lamp-1", &ds), 0);
	assert_true(fabs(ds.ewma_ms - 120.0) < 1e-9); /* 0.2 * 200 + 0.8 * 100 */
	assert_int_equal(ds.attempts, 3);
	assert_int_equal(ds.successes, 2);
	assert_true(fabs(ds.reliability - 2.0 / 3.0) < 1e-12);
	assert_int_equal(ds.samples, 2);
	assert_int_equal(ds.version, 3);
	hearth_store_close(st);

	st = tmpstore_open(t);
	assert_int_equal(hearth_semantic_device_sample(st, "lamp-1", 50, false), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_semantic_device_get(st, "lamp-1", &ds), 0);
	assert_true(fabs(ds.ewma_ms - (0.2 * 50 + 0.8 * 120)) < 1e-9);
	assert_int_equal(ds.attempts, 4);
	assert_int_equal(ds.successes, 2);
	assert_int_equal(ds.samples, 3);
	assert_int_equal(ds.version, 4);

	assert_int_equal(hearth_semantic_device_sample(st, "lamp-1", NAN, true), HEARTH_E_INVALID);
	assert_int_equal(hearth_semantic_device_sample(st, "lamp-1", INFINITY, true),
	                 HEARTH_E_INVALID);
	assert_int_equal(hearth_store_pending(st), 0);
	hearth_store_close(st);
}

/* The bucket bounds of semantic.h, for checking an estimate. */
static void
bucket_of(double ms, double *lo, double *hi)
{
	int b = ms < 1 ? 0 : 1 + (int)floor(2 * log2(ms));

	*lo = b == 0 ? 0 : pow(2, (b - 1) / 2.0);
	*hi = pow(2, b / 2.0);
}

static void
test_p95(void **state)
{
	struct tmp *t = *state;
	struct hearth_device_stats ds;
	hearth_store *st = tmpstore_open(t);
	double lo, hi;

	/* 1000 samples 1..1000 ms in a shuffled order: the true p95 is 950. */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(hearth_semantic_device_sample(
		                         st, "tv-1", (double)((i * 617) % 1000 + 1), true),
		                 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_semantic_device_get(st, "tv-1", &ds), 0);
	assert_int_equal(ds.samples, 1000);
	assert_int_equal(ds.version, 1000);
	bucket_of(950, &lo, &hi);
	assert_true(ds.p95_ms >= lo && ds.p95_ms <= hi);
	assert_true(fabs(ds.p95_ms - 950) <= hi - lo);

	/* One value: the estimate stays in its bucket. */
	for (int i = 0; i < 40; i++)
		assert_int_equal(hearth_semantic_device_sample(st, "plug-2", 50, true), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_semantic_device_get(st, "plug-2", &ds), 0);
	bucket_of(50, &lo, &hi);
	assert_true(ds.p95_ms >= lo && ds.p95_ms <= hi);
	assert_true(fabs(ds.ewma_ms - 50) < 1e-9);

	/* Past the halving mark the counts halve, so the histogram stays bounded. */
	for (int i = 0; i < HEARTH_SEMANTIC_LAT_HALVE_AT + 10; i++)
		assert_int_equal(hearth_semantic_device_sample(st, "plug-3", 5, true), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_semantic_device_get(st, "plug-3", &ds), 0);
	assert_true(ds.samples < HEARTH_SEMANTIC_LAT_HALVE_AT);
	assert_int_equal(ds.attempts, HEARTH_SEMANTIC_LAT_HALVE_AT + 10);

	/* The percentile helper on a hand-made histogram: 100 under 1 ms. */
	{
		uint32_t h[HEARTH_SEMANTIC_LAT_BUCKETS] = {0};

		assert_true(hearth_semantic_percentile(h, 0.95) == 0);
		h[0] = 100;
		assert_true(hearth_semantic_percentile(h, 0.5) == 0.5);
		h[HEARTH_SEMANTIC_LAT_BUCKETS - 1] =
		        900; /* the open last bucket: its lower bound */
		assert_true(hearth_semantic_percentile(h, 0.95) == 65536);
		assert_true(hearth_semantic_percentile(h, 1.5) == 0);
	}
	hearth_store_close(st);
}

static void
test_habits(void **state)
{
	struct tmp *t = *state;
	struct hearth_habit_stats hs;
	hearth_store *st = tmpstore_open(t);

	assert_int_equal(hearth_semantic_habit(st, "scene.good_morning", 7), 0);
	assert_int_equal(hearth_semantic_habit(st, "scene.good_morning", 7), 0);
	assert_int_equal(hearth_semantic_habit(st, "scene.good_morning", 7), 0);
	assert_int_equal(hearth_semantic_habit(st, "scene.good_morning", 23), 0);
	assert_int_equal(hearth_semantic_habit(st, "scene.good_morning", 0), 0);
	assert_int_equal(hearth_semantic_habit(st, "scene.good_morning", 24), HEARTH_E_INVALID);
	assert_int_equal(hearth_semantic_habit(st, "scene.good_morning", -1), HEARTH_E_INVALID);
	tmpstore_flush(st);
	hearth_store_close(st);

	st = tmpstore_open(t);
	assert_int_equal(hearth_semantic_habit_get(st, "scene.good_morning", &hs), 0);
	assert_int_equal(hs.hours[7], 3);
	assert_int_equal(hs.hours[23], 1);
	assert_int_equal(hs.hours[0], 1);
	assert_int_equal(hs.hours[12], 0);
	assert_int_equal(hs.total, 5);
	assert_int_equal(hs.version, 5);
	assert_int_equal(hearth_semantic_habit_get(st, "never", &hs), 0);
	assert_int_equal(hs.total, 0);
	assert_int_equal(hs.version, 0);
	hearth_store_close(st);
}

struct names {
	int n;
	char name[8][64];
};

static int
collect_names(void *ud, const char *name, const char *json, size_t len)
{
	struct names *s = ud;

	assert_true(s->n < 8);
	snprintf(s->name[s->n++], sizeof(s->name[0]), "%s", name);
	return 0;
}

static void
test_generic_json(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = tmpstore_open(t);
	struct names nm = {0};
	uint64_t version;
	char *json;

	assert_int_equal(hearth_semantic_get_json(st, "pref", "theme", &json, &version),
	                 HEARTH_E_NOT_FOUND);
	assert_null(json);
	assert_int_equal(hearth_semantic_put_json(st, "pref", "theme", "{\"dark\": true}"), 0);
	assert_int_equal(hearth_semantic_put_json(st, "pref", "wake", "\"07:00\""), 0);
	assert_int_equal(hearth_semantic_put_json(st, "weight", "score/latency", "0.35"), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_semantic_get_json(st, "pref", "theme", &json, &version), 0);
	assert_string_equal(json, "{\"dark\":true}");
	assert_int_equal(version, 1);
	hearth_free(json);

	/* Update in place: the version goes up. */
	assert_int_equal(hearth_semantic_put_json(st, "pref", "theme", "{\"dark\":false}"), 0);
	assert_int_equal(hearth_semantic_put_json(st, "pref", "theme", "[1,2]"), 0);
	tmpstore_flush(st);
	hearth_store_close(st);
	st = tmpstore_open(t);
	assert_int_equal(hearth_semantic_get_json(st, "pref", "theme", &json, NULL), 0);
	assert_string_equal(json, "[1,2]");
	hearth_free(json);
	assert_int_equal(hearth_semantic_get_json(st, "pref", "theme", &json, &version), 0);
	assert_int_equal(version, 3);
	hearth_free(json);
	assert_int_equal(hearth_semantic_get_json(st, "weight", "score/latency", &json, NULL), 0);
	assert_string_equal(json, "0.35");
	hearth_free(json);

	/* Listing a kind gives its names in order, and only its own. */
	assert_int_equal(hearth_semantic_recipe_outcome(st, "pref", true), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_semantic_each(st, "pref", collect_names, &nm), 0);
	assert_int_equal(nm.n, 2);
	assert_string_equal(nm.name[0], "theme");
	assert_string_equal(nm.name[1], "wake");

	/* Removal. */
	assert_int_equal(hearth_semantic_put_json(st, "pref", "wake", NULL), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_semantic_get_json(st, "pref", "wake", &json, NULL),
	                 HEARTH_E_NOT_FOUND);

	/* Refusals queue nothing. */
	assert_int_equal(hearth_semantic_put_json(st, "recipe", "x", "1"), HEARTH_E_INVALID);
	assert_int_equal(hearth_semantic_put_json(st, "Pref", "x", "1"), HEARTH_E_INVALID);
	assert_int_equal(hearth_semantic_put_json(st, "pref/x", "x", "1"), HEARTH_E_INVALID);
	assert_int_equal(hearth_semantic_put_json(st, "pref", "", "1"), HEARTH_E_INVALID);
	assert_int_equal(hearth_semantic_put_json(st, "pref", "x", "{bad"), HEARTH_E_BAD_JSON);
	assert_int_equal(hearth_semantic_get_json(st, "device", "x", &json, NULL),
	                 HEARTH_E_INVALID);
	assert_int_equal(hearth_store_pending(st), 0);
	hearth_store_close(st);
}

static void
test_corrupt_record(void **state)
{
	struct tmp *t = *state;
	struct hearth_recipe_stats rs;
	struct hearth_device_stats ds;
	hearth_store *st = tmpstore_open(t);

	hearth_store_close(st);
	raw_put(t, "recipe/broken", "not json");
	raw_put(t, "device/odd", "{\"hist\":[1,2,3]}");
	st = tmpstore_open(t);
	assert_int_equal(hearth_semantic_recipe_get(st, "broken", &rs), HEARTH_E_CORRUPT);
	assert_int_equal(hearth_semantic_device_get(st, "odd", &ds), HEARTH_E_CORRUPT);
	/* An update does not fail the flush: the record starts afresh or is reshaped. */
	assert_int_equal(hearth_semantic_recipe_outcome(st, "broken", true), 0);
	assert_int_equal(hearth_semantic_device_sample(st, "odd", 10, true), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_semantic_recipe_get(st, "broken", &rs), 0);
	assert_true(rs.a == 2 && rs.b == 1);
	assert_int_equal(rs.version, 1);
	assert_int_equal(hearth_semantic_device_get(st, "odd", &ds), 0);
	assert_int_equal(ds.samples, 1);
	hearth_store_close(st);
}

#define EXPECT_ALLOC_SAFE(st, call)                                                                \
	do {                                                                                       \
		size_t before_ = hearth_store_pending(st);                                         \
		int err_;                                                                          \
		for (long n_ = 0;; n_++) {                                                         \
			hearth_alloc_fail_after(n_);                                               \
			err_ = (call);                                                             \
			hearth_alloc_fail_after(-1);                                               \
			if (!err_)                                                                 \
				break;                                                             \
			assert_int_equal(err_, -ENOMEM);                                           \
			assert_int_equal(hearth_store_pending(st), before_);                       \
			assert_true(n_ < 100);                                                     \
		}                                                                                  \
		assert_int_equal(hearth_store_pending(st), before_ + 1);                           \
	} while (0)

static void
test_alloc_failure(void **state)
{
	struct tmp *t = *state;
	struct hearth_recipe_stats rs;
	struct hearth_device_stats ds;
	hearth_store *st = tmpstore_open(t);
	char why[256];
	char *json;
	size_t pending;
	int err;

	EXPECT_ALLOC_SAFE(st, hearth_semantic_recipe_outcome(st, "r1", true));
	EXPECT_ALLOC_SAFE(st, hearth_semantic_device_sample(st, "d1", 30, true));
	EXPECT_ALLOC_SAFE(st, hearth_semantic_habit(st, "r1", 9));
	EXPECT_ALLOC_SAFE(st, hearth_semantic_put_json(st, "pref", "p", "{\"a\":[1,2,3]}"));

	/* Inside the flush: each failure aborts the transaction, the queue stays. */
	pending = hearth_store_pending(st);
	for (long n = 0;; n++) {
		hearth_alloc_fail_after(n);
		err = hearth_store_flush(st, why, sizeof(why));
		hearth_alloc_fail_after(-1);
		if (!err)
			break;
		assert_int_equal(err, -ENOMEM);
		assert_int_equal(hearth_store_pending(st), pending);
		assert_true(n < 1000);
	}
	/* Every update counted exactly once. */
	assert_int_equal(hearth_semantic_recipe_get(st, "r1", &rs), 0);
	assert_true(rs.a == 2 && rs.b == 1);
	assert_int_equal(rs.version, 1);
	assert_int_equal(hearth_semantic_device_get(st, "d1", &ds), 0);
	assert_int_equal(ds.attempts, 1);
	assert_int_equal(hearth_semantic_get_json(st, "pref", "p", &json, NULL), 0);
	assert_string_equal(json, "{\"a\":[1,2,3]}");
	hearth_free(json);

	/* Reads under failing allocations: -ENOMEM, nothing leaks. */
	hearth_alloc_fail_after(0);
	assert_int_equal(hearth_semantic_recipe_get(st, "r1", &rs), -ENOMEM);
	hearth_alloc_fail_after(-1);
	hearth_store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_recipe_posterior, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_device_stats, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_p95, tmpstore_setup, tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_habits, tmpstore_setup, tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_generic_json, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_corrupt_record, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_alloc_failure, tmpstore_setup,
	                                        tmpstore_teardown),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
