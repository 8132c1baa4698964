/*
 * test_ratelimit.c - the per-source token buckets: a burst then refusal,
 * refill with (injected) time and the wait it announces, only the first
 * refusal after a pass answered (the rest counted), sources that do not
 * share a bucket, a bounded table under a flood of made-up sources that
 * forgets the least recently used one, no limit at rate 0, refused keys and
 * failing allocations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "platform/alloc.h"
#include "platform/err.h"
#include "runtime/ratelimit.h"

static hearth_ratelimit *
make(int rate, int burst, size_t max)
{
	hearth_ratelimit *rl = NULL;

	assert_int_equal(hearth_ratelimit_new(rate, burst, max, &rl), 0);
	assert_non_null(rl);
	return rl;
}

static void
test_burst_then_refused(void **state)
{
	hearth_ratelimit *rl = make(2, 5, 16);
	struct hearth_ratelimit_refusal r;

	for (int i = 0; i < 5; i++)
		assert_true(hearth_ratelimit_take(rl, "remote-1", 1000, NULL));
	assert_false(hearth_ratelimit_take(rl, "remote-1", 1000, &r));
	/* 2 tokens per second: the next one in 500 ms. */
	assert_int_equal(r.retry_ms, 500);
	assert_true(r.answer);
	assert_int_equal(r.unanswered, 0);
	assert_false(hearth_ratelimit_take(rl, "remote-1", 1499, &r));
	assert_int_equal(r.retry_ms, 1);
	assert_true(hearth_ratelimit_take(rl, "remote-1", 1500, &r));
	assert_false(hearth_ratelimit_take(rl, "remote-1", 1500, NULL));
	hearth_ratelimit_free(rl);
}

static void
test_refusals_answered_sparingly(void **state)
{
	hearth_ratelimit *rl = make(10, 1, 16);
	struct hearth_ratelimit_refusal r;
	int answered = 0, passed = 0;

	assert_true(hearth_ratelimit_take(rl, "flood", 0, &r));
	/* The first refusal is answered, the next ones are not. */
	assert_false(hearth_ratelimit_take(rl, "flood", 0, &r));
	assert_true(r.answer);
	assert_int_equal(r.unanswered, 0);
	for (int i = 0; i < 50; i++) {
		assert_false(hearth_ratelimit_take(rl, "flood", 1 + i, &r));
		assert_false(r.answer);
	}
	/* After a pass the next refusal is answered, and counts the others. */
	assert_true(hearth_ratelimit_take(rl, "flood", 100, &r));
	assert_false(hearth_ratelimit_take(rl, "flood", 100, &r));
	assert_true(r.answer);
	assert_int_equal(r.unanswered, 50);
	/* A flood at 10,000/s for 10 s: answers no faster than the rate. */
	for (int64_t t = 1000; t < 11000; t++)
		for (int k = 0; k < 10; k++) {
			if (hearth_ratelimit_take(rl, "flood", t, &r))
				passed++;
			else if (r.answer)
				answered++;
		}
	assert_true(passed >= 99 && passed <= 101);
	assert_true(answered <= passed + 1);
	/* Another source is answered at once, whatever the flood did. */
	assert_true(hearth_ratelimit_take(rl, "other", 11000, &r));
	assert_false(hearth_ratelimit_take(rl, "other", 11000, &r));
	assert_true(r.answer);
	hearth_ratelimit_free(rl);
}

static void
test_refill_caps_at_burst(void **state)
{
	hearth_ratelimit *rl = make(10, 3, 16);
	int ok = 0;

	for (int i = 0; i < 3; i++)
		assert_true(hearth_ratelimit_take(rl, "a", 0, NULL));
	assert_false(hearth_ratelimit_take(rl, "a", 0, NULL));
	/* An hour idle refills to the burst, not beyond. */
	for (int i = 0; i < 10; i++)
		ok += hearth_ratelimit_take(rl, "a", 3600 * 1000, NULL);
	assert_int_equal(ok, 3);
	/* Steady at the rate: one every 100 ms is always allowed. */
	for (int64_t t = 3600 * 1000 + 100; t < 3600 * 1000 + 10000; t += 100)
		assert_true(hearth_ratelimit_take(rl, "a", t, NULL));
	/* Time going backwards refills nothing and breaks nothing. */
	assert_false(hearth_ratelimit_take(rl, "a", 5, NULL));
	hearth_ratelimit_free(rl);
}

static void
test_sources_are_separate(void **state)
{
	hearth_ratelimit *rl = make(1, 2, 16);

	assert_true(hearth_ratelimit_take(rl, "flood", 0, NULL));
	assert_true(hearth_ratelimit_take(rl, "flood", 0, NULL));
	for (int i = 0; i < 100; i++)
		assert_false(hearth_ratelimit_take(rl, "flood", 0, NULL));
	assert_true(hearth_ratelimit_take(rl, "steady", 0, NULL));
	assert_true(hearth_ratelimit_take(rl, "steady", 0, NULL));
	assert_false(hearth_ratelimit_take(rl, "steady", 0, NULL));
	assert_int_equal(hearth_ratelimit_count(rl), 2);
	hearth_ratelimit_free(rl);
}

static void
test_flood_of_sources_is_bounded(void **state)
{
	hearth_ratelimit *rl = make(1, 1, 64);
	char key[32];

	assert_true(hearth_ratelimit_take(rl, "owner", 0, NULL));
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "r%08x", (unsigned)i * 2654435761u);
		assert_true(hearth_ratelimit_take(rl, key, 0, NULL));
		assert_true(hearth_ratelimit_count(rl) <= 64);
		/* "owner" keeps being used: it is never the least recent. */
		if (i % 16 == 0)
			assert_false(hearth_ratelimit_take(rl, "owner", 0, NULL));
	}
	assert_int_equal(hearth_ratelimit_count(rl), 64);
	/* The newest made-up source is still known (its bucket empty)... */
	assert_false(hearth_ratelimit_take(rl, key, 0, NULL));
	/* ...and the first ones were forgotten: a fresh, full bucket. */
	assert_true(hearth_ratelimit_take(rl, "r00000000", 0, NULL));
	hearth_ratelimit_free(rl);
}

static void
test_lru_is_the_one_forgotten(void **state)
{
	hearth_ratelimit *rl = make(1, 1, 3);

	assert_true(hearth_ratelimit_take(rl, "a", 0, NULL));
	assert_true(hearth_ratelimit_take(rl, "b", 0, NULL));
	assert_true(hearth_ratelimit_take(rl, "c", 0, NULL));
	assert_false(hearth_ratelimit_take(rl, "a", 0, NULL)); /* a is now the most recent */
	assert_true(hearth_ratelimit_take(rl, "d", 0, NULL));  /* b goes */
	assert_int_equal(hearth_ratelimit_count(rl), 3);
	assert_false(hearth_ratelimit_take(rl, "a", 0, NULL));
	assert_false(hearth_ratelimit_take(rl, "c", 0, NULL));
	assert_false(hearth_ratelimit_take(rl, "d", 0, NULL));
	assert_true(hearth_ratelimit_take(rl, "b", 0, NULL)); /* forgotten: full again; a goes */
	assert_true(hearth_ratelimit_take(rl, "a", 0, NULL));
	hearth_ratelimit_free(rl);
}

static void
test_rate_zero_is_no_limit(void **state)
{
	hearth_ratelimit *rl = make(0, 1, 4);

	for (int i = 0; i < 10000; i++)
		assert_true(hearth_ratelimit_take(rl, "anyone", 0, NULL));
	assert_int_equal(hearth_ratelimit_count(rl), 0);
	hearth_ratelimit_free(rl);
}

static void
test_bad_arguments(void **state)
{
	hearth_ratelimit *rl = NULL;
	char longkey[HEARTH_RATELIMIT_KEY_MAX + 2];

	assert_int_equal(hearth_ratelimit_new(-1, 1, 4, &rl), HEARTH_E_INVALID);
	assert_int_equal(hearth_ratelimit_new(1, 0, 4, &rl), HEARTH_E_INVALID);
	assert_int_equal(hearth_ratelimit_new(1, 1, 0, &rl), HEARTH_E_INVALID);
	assert_null(rl);
	rl = make(1, 5, 4);
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	assert_false(hearth_ratelimit_take(rl, longkey, 0, NULL));
	longkey[HEARTH_RATELIMIT_KEY_MAX] = '\0'; /* exactly the longest */
	assert_true(hearth_ratelimit_take(rl, longkey, 0, NULL));
	assert_false(hearth_ratelimit_take(rl, "", 0, NULL));
	assert_false(hearth_ratelimit_take(rl, NULL, 0, NULL));
	assert_false(hearth_ratelimit_take(NULL, "a", 0, NULL));
	hearth_ratelimit_free(rl);
	hearth_ratelimit_free(NULL);
}

static void
test_alloc_failure(void **state)
{
	for (long n = 0;; n++) {
		hearth_ratelimit *rl = NULL;
		int err;

		hearth_alloc_fail_after(n);
		err = hearth_ratelimit_new(5, 5, 100, &rl);
		hearth_alloc_fail_after(-1);
		if (!err) {
			assert_true(n >= 3);
			assert_true(hearth_ratelimit_take(rl, "a", 0, NULL));
			hearth_ratelimit_free(rl);
			break;
		}
		assert_int_equal(err, -ENOMEM);
		assert_null(rl);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_burst_then_refused),
	        cmocka_unit_test(test_refusals_answered_sparingly),
	        cmocka_unit_test(test_refill_caps_at_burst),
	        cmocka_unit_test(test_sources_are_separate),
	        cmocka_unit_test(test_flood_of_sources_is_bounded),
	        cmocka_unit_test(test_lru_is_the_one_forgotten),
	        cmocka_unit_test(test_rate_zero_is_no_limit),
	        cmocka_unit_test(test_bad_arguments),
	        cmocka_unit_test(test_alloc_failure),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
