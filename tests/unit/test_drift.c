/*
 * test_drift.c - the drift sentinel: a stationary series never drifts; a
 * spread four times the baseline's and a level shift of four standard
 * deviations do, a doubled spread does not (the documented threshold); a
 * drifting feature clears after it behaves again for the configured number
 * of checks; checks happen only every check interval of hub time and only
 * with enough samples; bounds, bad input and configuration errors. The
 * series are made by a seeded generator, so every run sees the same numbers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "agents/context/drift.h"
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/json.h"

#define MIN_MS  60000LL
#define FEATURE "t-1/temperature"
#define EVENTS  8

/* xorshift64* and Box-Muller: a normal deviate, same sequence every run. */
static uint64_t seed = 88172645463325252ULL;

static double
uniform(void)
{
	seed ^= seed >> 12;
	seed ^= seed << 25;
	seed ^= seed >> 27;
	return ((double)((seed * 2685821657736338717ULL) >> 11) + 0.5) / 9007199254740992.0;
}

static double
normal(double mean, double std)
{
	double u = uniform(), v = uniform();

	return mean + std * sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

struct run {
	hearth_drift *d;
	int64_t now;
	int started, cleared;
	int64_t started_at, cleared_at;
	struct hearth_drift_event last;
};

static void
setup_run(struct run *r, const struct hearth_drift_config *cfg)
{
	memset(r, 0, sizeof(*r));
	seed = 88172645463325252ULL;
	assert_int_equal(hearth_drift_new(cfg, &r->d), 0);
	r->started_at = r->cleared_at = -1;
}

/* n readings of N(mean, std), one a minute, ticking after each. */
static void
feed(struct run *r, int n, double mean, double std)
{
	struct hearth_drift_event ev[EVENTS];

	for (int i = 0; i < n; i++) {
		int k;

		r->now += MIN_MS;
		assert_int_equal(hearth_drift_observe(r->d, FEATURE, normal(mean, std), r->now), 0);
		k = hearth_drift_tick(r->d, r->now, ev, EVENTS);
		assert_in_range(k, 0, 1);
		if (!k)
			continue;
		assert_string_equal(ev[0].feature, FEATURE);
		r->last = ev[0];
		if (ev[0].kind == HEARTH_DRIFT_STARTED) {
			r->started++;
			r->started_at = r->now;
		} else {
			r->cleared++;
			r->cleared_at = r->now;
		}
	}
}

static void
test_stationary(void **state)
{
	struct run r;

	(void)state;
	setup_run(&r, NULL);
	feed(&r, 3 * 24 * 60, 21.0, 0.5); /* three days, one reading a minute */
	assert_int_equal(r.started, 0);
	assert_false(hearth_drift_drifting(r.d, FEATURE));
	hearth_drift_free(r.d);
}

static void
test_spread_x4_drifts_and_clears(void **state)
{
	struct run r;
	cJSON *j;

	(void)state;
	setup_run(&r, NULL);
	feed(&r, 6 * 60, 21.0, 0.5);
	assert_int_equal(r.started, 0);
	feed(&r, 3 * 60, 21.0, 2.0);
	assert_int_equal(r.started, 1);
	assert_int_equal(r.cleared, 0);
	assert_true(hearth_drift_drifting(r.d, FEATURE));
	assert_true(r.last.score > 3.0);
	assert_true(fabs(r.last.mean_z) < 1.5);
	assert_true(r.last.threshold == 2.0);
	/* the audit / publish detail, and health */
	j = hearth_drift_event_json(&r.last);
	assert_string_equal(cJSON_GetObjectItem(j, "state")->valuestring, "drifting");
	assert_string_equal(cJSON_GetObjectItem(j, "feature")->valuestring, FEATURE);
	cJSON_Delete(j);
	j = hearth_drift_health_json(r.d);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "drifting")), 1);
	assert_int_equal(cJSON_GetObjectItem(j, "features")->valueint, 1);
	cJSON_Delete(j);

	/* back to normal: once about half the window (96 readings) is good again
	 * std(z) is below 3, and two good checks later it clears */
	int64_t back = r.now;

	feed(&r, 4 * 60, 21.0, 0.5);
	assert_int_equal(r.started, 1);
	assert_int_equal(r.cleared, 1);
	assert_false(hearth_drift_drifting(r.d, FEATURE));
	assert_true(r.cleared_at - back >= 45 * MIN_MS + 15 * MIN_MS);
	assert_true(r.cleared_at - back <= 96 * MIN_MS + 2 * 15 * MIN_MS);
	j = hearth_drift_event_json(&r.last);
	assert_string_equal(cJSON_GetObjectItem(j, "state")->valuestring, "cleared");
	cJSON_Delete(j);
	hearth_drift_free(r.d);
}

static void
test_spread_x2_is_within_threshold(void **state)
{
	struct run r;

	(void)state;
	/* std(z) about 2: abs(2 - 1) = 1 is not above the default threshold 2 */
	setup_run(&r, NULL);
	feed(&r, 6 * 60, 21.0, 0.5);
	feed(&r, 12 * 60, 21.0, 1.0);
	assert_int_equal(r.started, 0);
	hearth_drift_free(r.d);

	/* a tighter threshold catches it */
	struct hearth_drift_config cfg;

	hearth_drift_config_defaults(&cfg);
	cfg.threshold = 0.5;
	setup_run(&r, &cfg);
	feed(&r, 6 * 60, 21.0, 0.5);
	feed(&r, 3 * 60, 21.0, 1.0);
	assert_int_equal(r.started, 1);
	hearth_drift_free(r.d);
}

static void
test_mean_shift(void **state)
{
	struct run r;

	(void)state;
	setup_run(&r, NULL);
	feed(&r, 6 * 60, 21.0, 0.5);
	feed(&r, 3 * 60, 23.0, 0.5); /* +4 standard deviations, same spread */
	assert_int_equal(r.started, 1);
	assert_true(r.last.mean_z > 1.5); /* about half the window shifted by then */
	/* still there after the window is full of it */
	feed(&r, 6 * 60, 23.0, 0.5);
	assert_int_equal(r.cleared, 0);
	assert_true(hearth_drift_drifting(r.d, FEATURE));
	hearth_drift_free(r.d);
}

static void
test_interval_and_min_samples(void **state)
{
	struct hearth_drift_config cfg;
	struct hearth_drift_event ev[EVENTS];
	hearth_drift *d;
	int64_t t = 0, learned;

	(void)state;
	hearth_drift_config_defaults(&cfg);
	cfg.baseline_samples = 10;
	cfg.min_samples = 5;
	cfg.window = 10;
	cfg.clear_checks = 1;
	assert_int_equal(hearth_drift_new(&cfg, &d), 0);
	seed = 1;
	/* the baseline: 10 readings a second apart */
	for (int i = 0; i < 10; i++)
		assert_int_equal(hearth_drift_observe(d, "f", normal(0, 1), t += 1000), 0);
	learned = t;
	/* four wild readings: fewer than min_samples, never judged */
	for (int i = 0; i < 4; i++)
		assert_int_equal(hearth_drift_observe(d, "f", 100, t += 1000), 0);
	assert_int_equal(hearth_drift_tick(d, learned + 15 * MIN_MS, ev, EVENTS), 0);
	/* a fifth: enough, but the next check is a full interval later */
	assert_int_equal(hearth_drift_observe(d, "f", 100, t += 1000), 0);
	assert_int_equal(hearth_drift_tick(d, learned + 15 * MIN_MS + 1000, ev, EVENTS), 0);
	assert_int_equal(hearth_drift_tick(d, learned + 30 * MIN_MS - 1, ev, EVENTS), 0);
	assert_int_equal(hearth_drift_tick(d, learned + 30 * MIN_MS, ev, EVENTS), 1);
	assert_int_equal(ev[0].kind, HEARTH_DRIFT_STARTED);
	assert_int_equal(ev[0].samples, 5);
	assert_string_equal(ev[0].feature, "f");
	/* good readings fill the window; nothing happens before the next check */
	for (int i = 0; i < 10; i++)
		assert_int_equal(hearth_drift_observe(d, "f", normal(0, 1), t += 1000), 0);
	assert_int_equal(hearth_drift_tick(d, learned + 45 * MIN_MS - 1, ev, EVENTS), 0);
	assert_true(hearth_drift_drifting(d, "f"));
	/* a late tick runs one check, and the schedule keeps its phase */
	assert_int_equal(hearth_drift_tick(d, learned + 62 * MIN_MS, ev, EVENTS), 1);
	assert_int_equal(ev[0].kind, HEARTH_DRIFT_CLEARED);
	assert_int_equal(hearth_drift_tick(d, learned + 74 * MIN_MS, ev, EVENTS), 0);
	hearth_drift_free(d);
}

static void
test_bounds_and_input(void **state)
{
	struct hearth_drift_config cfg;
	hearth_drift *d;
	char name[HEARTH_DRIFT_NAME_MAX + 2];
	cJSON *j;

	(void)state;
	hearth_drift_config_defaults(&cfg);
	cfg.max_features = 2;
	assert_int_equal(hearth_drift_new(&cfg, &d), 0);
	assert_int_equal(hearth_drift_observe(d, "a", 1, 0), 0);
	assert_int_equal(hearth_drift_observe(d, "b", 1, 0), 0);
	assert_int_equal(hearth_drift_observe(d, "c", 1, 0), HEARTH_E_FULL);
	assert_int_equal(hearth_drift_observe(d, "a", NAN, 0), HEARTH_E_INVALID);
	assert_int_equal(hearth_drift_observe(d, "a", INFINITY, 0), HEARTH_E_INVALID);
	assert_int_equal(hearth_drift_observe(d, "", 1, 0), HEARTH_E_INVALID);
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(hearth_drift_observe(d, name, 1, 0), HEARTH_E_INVALID);
	assert_int_equal(hearth_drift_count(d), 2);
	j = hearth_drift_health_json(d);
	assert_int_equal(cJSON_GetObjectItem(j, "dropped")->valueint, 1);
	assert_int_equal(cJSON_GetObjectItem(j, "learning")->valueint, 2);
	cJSON_Delete(j);
	hearth_drift_forget(d, "a");
	hearth_drift_forget(d, "zz");
	assert_int_equal(hearth_drift_count(d), 1);
	assert_int_equal(hearth_drift_observe(d, "c", 1, 0), 0);
	assert_false(hearth_drift_drifting(d, "nope"));
	hearth_drift_free(d);

	/* allocation failures leave nothing behind */
	for (long n = 0; n < 10; n++) {
		d = NULL;
		hearth_alloc_fail_after(n);
		if (!hearth_drift_new(NULL, &d))
			(void)hearth_drift_observe(d, "a", 1, 0);
		hearth_alloc_fail_after(-1);
		hearth_drift_free(d);
	}
}

static void
test_config(void **state)
{
	static const struct {
		const char *json;
		const char *why;
	} bad[] = {
	        {"{\"threshold\": \"2\"}", "hearth.json: drift.threshold: expected a number"},
	        {"{\"threshold\": 0}", "hearth.json: drift.threshold: must be a number above 0"},
	        {"{\"window\": 1}", "hearth.json: drift.window: must be from 2 to 1024"},
	        {"{\"window\": 9.5}", "hearth.json: drift.window: expected a whole number"},
	        {"{\"window\": 10, \"min_samples\": 11}",
	         "hearth.json: drift.min_samples: must be from 2 to the window (10)"},
	        {"{\"check_interval_s\": 0}",
	         "hearth.json: drift.check_interval_s: must be from 1 to 604800 seconds"},
	        {"{\"baseline_alpha\": 1}", "hearth.json: drift.baseline_alpha: must be from 0"},
	        {"{\"max_features\": 5000}",
	         "hearth.json: drift.max_features: must be from 1 to 1024"},
	        {"{\"windows\": 10}", "hearth.json: drift.windows: unknown key"},
	        {"[]", "hearth.json: drift: expected an object"},
	};
	struct hearth_drift_config cfg, before;
	char why[256];
	cJSON *j;

	(void)state;
	hearth_drift_config_defaults(&cfg);
	assert_true(cfg.check_interval_ms == 900000);
	assert_true(cfg.threshold == 2.0);
	assert_int_equal(hearth_drift_config_parse(&cfg, NULL, "hearth.json", why, sizeof(why)), 0);
	j = cJSON_Parse("{\"check_interval_s\": 300, \"threshold\": 1.5, \"window\": 48, "
	                "\"min_samples\": 12, \"clear_checks\": 3, \"baseline_alpha\": 0.01}");
	assert_int_equal(hearth_drift_config_parse(&cfg, j, "hearth.json", why, sizeof(why)), 0);
	cJSON_Delete(j);
	assert_true(cfg.check_interval_ms == 300000);
	assert_true(cfg.threshold == 1.5);
	assert_int_equal(cfg.window, 48);
	assert_int_equal(cfg.min_samples, 12);
	assert_int_equal(cfg.clear_checks, 3);
	before = cfg;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = cJSON_Parse(bad[i].json);
		assert_int_equal(
		        hearth_drift_config_parse(&cfg, j, "hearth.json", why, sizeof(why)),
		        HEARTH_E_CONFIG);
		cJSON_Delete(j);
		if (strncmp(why, bad[i].why, strlen(bad[i].why)))
			fail_msg("%s: got \"%s\", want \"%s...\"", bad[i].json, why, bad[i].why);
		assert_memory_equal(&cfg, &before, sizeof(cfg));
	}
	cfg.window = 0;
	{
		hearth_drift *d = (hearth_drift *)1;

		assert_int_equal(hearth_drift_new(&cfg, &d), HEARTH_E_CONFIG);
		assert_null(d);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stationary),
	        cmocka_unit_test(test_spread_x4_drifts_and_clears),
	        cmocka_unit_test(test_spread_x2_is_within_threshold),
	        cmocka_unit_test(test_mean_shift),
	        cmocka_unit_test(test_interval_and_min_samples),
	        cmocka_unit_test(test_bounds_and_input),
	        cmocka_unit_test(test_config),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
