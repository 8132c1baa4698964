/*
 * test_episodic.c - episodic memory queries and upkeep: round trips across
 * flush and reopen, every filter and combinations of them on a few hundred
 * synthetic episodes (checked against a brute-force count), the age window
 * with a controlled clock, pruning, annotations and failing allocations.
 * Every test works in its own mkdtemp directory, removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "memory/episodic.h"
#include "memory/store.h"
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/json.h"
#include "tests/unit/support/tmpstore.h"

#define N_EPISODES 300
#define T0         1700000000000LL /* ms: a fixed base time */

/* ==== Synthetic episodes ==== */

static const char *const recipes[] = {"scene.movie_night", "scene.good_morning", "lights.off"};

/* What episode i holds, so the tests can count what a query must find. */
static int64_t
ep_ts(int i)
{
	return T0 + (int64_t)i * 1000;
}

static const char *
ep_recipe(int i)
{
	return recipes[i % 3];
}

static const char *
ep_outcome(int i)
{
	return i % 7 == 0 ? "failed" : i % 11 == 0 ? "compensated" : "completed";
}

/* Steps: lamp-(i % 4) always, tv-1 when i % 5 == 0. */
static bool
ep_has_device(int i, const char *dev)
{
	char lamp[16];

	snprintf(lamp, sizeof(lamp), "lamp-%d", i % 4);
	return !strcmp(dev, lamp) || (i % 5 == 0 && !strcmp(dev, "tv-1"));
}

static void
add_synthetic(hearth_store *st, int i)
{
	char json[1024], tv[160] = "";

	if (i % 5 == 0)
		snprintf(tv, sizeof(tv),
		         ",{\"id\":\"s2\",\"device\":\"tv-1\",\"capability\":\"media.power\","
		         "\"args\":{\"on\":true},\"state\":\"confirmed\"}");
	snprintf(json, sizeof(json),
	         "{\"v\":1,\"id\":\"p-%d\",\"intent_id\":\"i-%d\",\"intent\":\"do %d\","
	         "\"recipe\":\"%s\",\"slots\":{},\"outcome\":\"%s\",\"ts\":%lld,"
	         "\"ended_at\":%lld,\"latency_ms\":{\"first_command\":12,\"total\":80},"
	         "\"steps\":[{\"id\":\"s1\",\"device\":\"lamp-%d\",\"capability\":"
	         "\"light.power\",\"args\":{\"on\":true},\"state\":\"confirmed\"}%s],"
	         "\"rationale\":\"because\"}",
	         i, i, i, ep_recipe(i), ep_outcome(i), (long long)ep_ts(i) - 50,
	         (long long)ep_ts(i), i % 4, tv);
	assert_int_equal(hearth_store_episode_add(st, ep_ts(i), json, strlen(json)), 0);
}

static hearth_store *
open_with_synthetic(const struct tmp *t)
{
	hearth_store *st = tmpstore_open(t);

	for (int i = 0; i < N_EPISODES; i++)
		add_synthetic(st, i);
	tmpstore_flush(st);
	return st;
}

/* Collects the plan numbers a query visits, in order. */
struct got {
	int n;
	int idx[N_EPISODES + 8];
	int stop_after;
};

static int
collect(void *ud, const struct hearth_episode *ep)
{
	struct got *g = ud;
	const char *id;

	assert_non_null(ep->doc);
	assert_int_equal(hearth_json_get_str(ep->doc, "id", &id), 0);
	assert_true(g->n < N_EPISODES + 8);
	g->idx[g->n++] = atoi(id + 2);
	/* The key time is the episode's ended_at. */
	assert_int_equal(ep->ts_ms, ep_ts(atoi(id + 2)));
	assert_true(ep->len > 0 && ep->json[0] == '{');
	return g->stop_after && g->n >= g->stop_after;
}

static bool
matches(int i, const struct hearth_episode_query *q)
{
	if (q->from_ms > 0 && ep_ts(i) < q->from_ms)
		return false;
	if (q->to_ms > 0 && ep_ts(i) >= q->to_ms)
		return false;
	if (q->recipe && strcmp(q->recipe, ep_recipe(i)))
		return false;
	if (q->outcome && strcmp(q->outcome, ep_outcome(i)))
		return false;
	if (q->device && !ep_has_device(i, q->device))
		return false;
	return true;
}

/* Run q and check it visits exactly the brute-force answer, in order. */
static void
check_query(hearth_store *st, const struct hearth_episode_query *q)
{
	struct got g = {0};
	int want[N_EPISODES], nwant = 0;
	long n;

	for (int k = 0; k < N_EPISODES; k++) {
		int i = q->oldest_first ? k : N_EPISODES - 1 - k;

		if (matches(i, q) && (q->limit <= 0 || nwant < q->limit))
			want[nwant++] = i;
	}
	n = hearth_episodes_query(st, q, collect, &g);
	assert_int_equal(n, nwant);
	assert_int_equal(g.n, nwant);
	for (int k = 0; k < nwant; k++)
		assert_int_equal(g.idx[k], want[k]);
}

/* ==== Tests ==== */

static void
test_roundtrip_reopen(void **state)
{
	struct tmp *t = *state;
	struct hearth_episode_query q = {0};
	struct got g = {0};
	hearth_store *st = tmpstore_open(t);

	for (int i = 0; i < 10; i++)
		add_synthetic(st, i);
	/* Nothing is visible before the flush. */
	assert_int_equal(hearth_episodes_query(st, NULL, collect, &g), 0);
	tmpstore_flush(st);
	hearth_store_close(st);

	st = tmpstore_open(t);
	assert_int_equal(hearth_episodes_query(st, NULL, collect, &g), 10);
	for (int k = 0; k < 10; k++)
		assert_int_equal(g.idx[k], 9 - k);
	memset(&g, 0, sizeof(g));
	q.oldest_first = true;
	assert_int_equal(hearth_episodes_query(st, &q, collect, &g), 10);
	for (int k = 0; k < 10; k++)
		assert_int_equal(g.idx[k], k);
	hearth_store_close(st);
}

static void
test_filters(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_with_synthetic(t);
	const char *devices[] = {"lamp-0", "lamp-3", "tv-1", "nothing-here"};
	const char *outcomes[] = {"completed", "failed", "compensated"};

	/* Time ranges: inside, at the edges, empty, open at one end. */
	for (int dir = 0; dir < 2; dir++) {
		struct hearth_episode_query q = {.oldest_first = dir};

		check_query(st, &q);
		q.from_ms = ep_ts(100);
		q.to_ms = ep_ts(200); /* exclusive: 100..199 */
		check_query(st, &q);
		q.from_ms = ep_ts(100) + 1; /* 101..199 */
		check_query(st, &q);
		q.from_ms = 0;
		q.to_ms = ep_ts(50);
		check_query(st, &q);
		q.from_ms = ep_ts(250);
		q.to_ms = 0;
		check_query(st, &q);
		q.from_ms = ep_ts(N_EPISODES) + 5; /* after the newest */
		check_query(st, &q);
		q.from_ms = 1;
		q.to_ms = T0; /* before the oldest */
		check_query(st, &q);
		q.from_ms = T0 - 5000;
		q.to_ms = ep_ts(N_EPISODES) + 5000; /* around everything */
		check_query(st, &q);
	}
	/* Each field filter alone, then in combinations, both directions. */
	for (int dir = 0; dir < 2; dir++) {
		for (int r = 0; r < 3; r++) {
			struct hearth_episode_query q = {.recipe = recipes[r], .oldest_first = dir};

			check_query(st, &q);
			for (int o = 0; o < 3; o++) {
				q.outcome = outcomes[o];
				check_query(st, &q);
				for (int d = 0; d < 4; d++) {
					q.device = devices[d];
					check_query(st, &q);
					q.from_ms = ep_ts(40);
					q.to_ms = ep_ts(260);
					check_query(st, &q);
					q.limit = 3;
					check_query(st, &q);
					q.limit = 0;
					q.from_ms = q.to_ms = 0;
				}
				q.device = NULL;
			}
		}
		for (int d = 0; d < 4; d++) {
			struct hearth_episode_query q = {.device = devices[d], .oldest_first = dir};

			check_query(st, &q);
		}
		for (int o = 0; o < 3; o++) {
			struct hearth_episode_query q = {.outcome = outcomes[o],
			                                 .oldest_first = dir};

			check_query(st, &q);
		}
	}
	/* A filter value no writer would leave unescaped still matches exactly. */
	{
		struct hearth_episode_query q = {.recipe = "scene.\"x\""};

		check_query(st, &q);
	}
	hearth_store_close(st);
}

static void
test_limit_and_stop(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_with_synthetic(t);
	struct hearth_episode_query q = {.limit = 5};
	struct got g = {0};

	check_query(st, &q);
	q.oldest_first = true;
	q.recipe = "lights.off";
	check_query(st, &q);

	/* The visitor stops the walk; the count says how many it saw. */
	g.stop_after = 4;
	assert_int_equal(hearth_episodes_query(st, NULL, collect, &g), 4);
	assert_int_equal(g.idx[0], N_EPISODES - 1);

	/* Bad arguments. */
	q = (struct hearth_episode_query){.from_ms = ep_ts(10), .to_ms = ep_ts(10)};
	assert_int_equal(hearth_episodes_query(st, &q, collect, &g), HEARTH_E_INVALID);
	assert_int_equal(hearth_episodes_query(st, NULL, NULL, &g), HEARTH_E_INVALID);
	assert_int_equal(hearth_episodes_query(NULL, NULL, collect, &g), HEARTH_E_INVALID);
	hearth_store_close(st);
}

static int
stop_negative(void *ud, const struct hearth_episode *ep)
{
	return -42;
}

static void
test_corrupt_record_skipped(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = tmpstore_open(t);
	struct got g = {0};

	add_synthetic(st, 1);
	assert_int_equal(hearth_store_episode_add(st, ep_ts(2), "not json", 8), 0);
	assert_int_equal(hearth_store_episode_add(st, ep_ts(3), "[1,2]", 5), 0);
	add_synthetic(st, 4);
	tmpstore_flush(st);
	assert_int_equal(hearth_episodes_query(st, NULL, collect, &g), 2);
	assert_int_equal(g.idx[0], 4);
	assert_int_equal(g.idx[1], 1);
	/* A negative visitor return comes back. */
	assert_int_equal(hearth_episodes_query(st, NULL, stop_negative, NULL), -42);
	hearth_store_close(st);
}

/* A clock the test moves. */
static int64_t
fake_now(void *ud)
{
	return *(int64_t *)ud;
}

static void
test_age_window(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_with_synthetic(t);
	int64_t now = ep_ts(N_EPISODES - 1);
	struct hearth_episode_age age = {.max_age_ms = 100 * 1000, .now = fake_now, .now_ud = &now};
	struct hearth_episode_query q = {.oldest_first = true};
	struct got g = {0};

	assert_int_equal(hearth_episodes_set_max_age(st, &age), 0);
	/* The hook runs at the next flush that writes. */
	assert_int_equal(hearth_episodes_query(st, NULL, collect, &g), N_EPISODES);
	add_synthetic(st, N_EPISODES);
	tmpstore_flush(st);
	/* Kept: key time >= now - 100 s, i.e. episodes 199..300. */
	memset(&g, 0, sizeof(g));
	assert_int_equal(hearth_episodes_query(st, &q, collect, &g), N_EPISODES + 1 - 199);
	assert_int_equal(g.idx[0], 199);

	/* The clock moves on: at the next flush more goes. */
	now += 50 * 1000;
	add_synthetic(st, N_EPISODES + 1);
	tmpstore_flush(st);
	memset(&g, 0, sizeof(g));
	assert_int_equal(hearth_episodes_query(st, &q, collect, &g), N_EPISODES + 2 - 249);
	assert_int_equal(g.idx[0], 249);

	/* No limit: nothing more goes. */
	age.max_age_ms = 0;
	now += 1000 * 1000;
	add_synthetic(st, N_EPISODES + 2);
	tmpstore_flush(st);
	memset(&g, 0, sizeof(g));
	assert_int_equal(hearth_episodes_query(st, &q, collect, &g), N_EPISODES + 3 - 249);
	hearth_store_close(st);
}

static void
test_prune(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_with_synthetic(t);
	struct hearth_episode_query q = {.oldest_first = true};
	struct got g = {0};

	assert_int_equal(hearth_episodes_prune(st, ep_ts(150), 0), HEARTH_E_INVALID);
	/* Nothing can be older than the epoch: no op at all. */
	assert_int_equal(hearth_episodes_prune(st, 5, 10), 0);
	assert_int_equal(hearth_store_pending(st), 0);

	assert_int_equal(hearth_episodes_prune(st, ep_ts(150), 30 * 1000), 0);
	assert_int_equal(hearth_store_pending(st), 1);
	tmpstore_flush(st);
	assert_int_equal(hearth_episodes_query(st, &q, collect, &g), N_EPISODES - 120);
	assert_int_equal(g.idx[0], 120);
	hearth_store_close(st);

	/* Pruned episodes stay pruned across a reopen; a read-only store refuses. */
	st = tmpstore_open(t);
	memset(&g, 0, sizeof(g));
	assert_int_equal(hearth_episodes_query(st, &q, collect, &g), N_EPISODES - 120);
	hearth_store_close(st);
	{
		struct hearth_store_opts o = {.dir = t->dir, .read_only = true};
		struct hearth_episode_age age = {.max_age_ms = 1};
		char why[256];

		assert_int_equal(hearth_store_open(&o, &st, why, sizeof(why)), 0);
		assert_int_equal(hearth_episodes_prune(st, ep_ts(150), 1000), -EROFS);
		assert_int_equal(hearth_episodes_set_max_age(st, &age), -EROFS);
		assert_int_equal(hearth_episode_annotate(st, "p-1", "feedback", "1"), -EROFS);
		hearth_store_close(st);
	}
}

/* Finds one plan's episode and copies a field's compact text. */
struct find {
	const char *plan;
	const char *key;
	char text[256];
	int found;
};

static int
find_field(void *ud, const struct hearth_episode *ep)
{
	struct find *f = ud;
	const char *id;
	char *s;

	if (hearth_json_get_str(ep->doc, "id", &id) || strcmp(id, f->plan))
		return 0;
	f->found++;
	s = hearth_json_print(cJSON_GetObjectItemCaseSensitive(ep->doc, f->key));
	snprintf(f->text, sizeof(f->text), "%s", s ? s : "(none)");
	hearth_free(s);
	return 0;
}

static void
field_of(hearth_store *st, const char *plan, const char *key, char *out, size_t len)
{
	struct find f = {.plan = plan, .key = key};

	assert_true(hearth_episodes_query(st, NULL, find_field, &f) >= 0);
	assert_int_equal(f.found, 1);
	snprintf(out, len, "%s", f.text);
}

static void
test_annotate(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_with_synthetic(t);
	char text[256];

	assert_int_equal(hearth_episode_annotate(st, "p-10", "feedback", "{\"rating\":-1}"), 0);
	assert_int_equal(hearth_episode_annotate(st, "p-20", "overrides",
	                                         "[{\"device\":\"lamp-0\",\"after_ms\":4000}]"),
	                 0);
	/* An episode added this turn can be annotated this turn. */
	add_synthetic(st, N_EPISODES);
	assert_int_equal(hearth_episode_annotate(st, "p-300", "feedback", "\"thanks\""), 0);
	/* A plan that is not there: logged, nothing else changes. */
	assert_int_equal(hearth_episode_annotate(st, "p-9999", "feedback", "1"), 0);
	tmpstore_flush(st);
	hearth_store_close(st);

	st = tmpstore_open(t);
	field_of(st, "p-10", "feedback", text, sizeof(text));
	assert_string_equal(text, "{\"rating\":-1}");
	field_of(st, "p-20", "overrides", text, sizeof(text));
	assert_string_equal(text, "[{\"device\":\"lamp-0\",\"after_ms\":4000}]");
	field_of(st, "p-300", "feedback", text, sizeof(text));
	assert_string_equal(text, "\"thanks\"");
	field_of(st, "p-11", "feedback", text, sizeof(text));
	assert_string_equal(text, "(none)");
	/* The rest of the record is intact. */
	field_of(st, "p-10", "recipe", text, sizeof(text));
	assert_string_equal(text, "\"scene.good_morning\"");
	/* Annotating again replaces the value. */
	assert_int_equal(hearth_episode_annotate(st, "p-10", "feedback", "{\"rating\":1}"), 0);
	tmpstore_flush(st);
	field_of(st, "p-10", "feedback", text, sizeof(text));
	assert_string_equal(text, "{\"rating\":1}");

	/* Refusals queue nothing. */
	assert_int_equal(hearth_episode_annotate(st, "p-10", "feedback", "{bad"),
	                 HEARTH_E_BAD_JSON);
	assert_int_equal(hearth_episode_annotate(st, "p-10", "id", "\"x\""), HEARTH_E_INVALID);
	assert_int_equal(hearth_episode_annotate(st, "p/10", "feedback", "1"), HEARTH_E_INVALID);
	assert_int_equal(hearth_episode_annotate(st, "p-10", "", "1"), HEARTH_E_INVALID);
	assert_int_equal(hearth_store_pending(st), 0);
	hearth_store_close(st);
}

/*
 * Make every allocation of call fail in turn: each failure is -ENOMEM and
 * leaves the queue as it was; the call finally succeeds.
 */
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
	hearth_store *st = tmpstore_open(t);
	struct hearth_episode_query q = {.recipe = "lights.off"};
	struct got g = {0};
	char text[256];
	long n;

	/* The first write also grows the queue from nothing. */
	EXPECT_ALLOC_SAFE(st, hearth_episodes_prune(st, ep_ts(0), 1000));
	for (int i = 0; i < 20; i++)
		add_synthetic(st, i);
	EXPECT_ALLOC_SAFE(st, hearth_episode_annotate(st, "p-5", "feedback", "{\"r\":[1,2]}"));
	tmpstore_flush(st);
	field_of(st, "p-5", "feedback", text, sizeof(text));
	assert_string_equal(text, "{\"r\":[1,2]}");

	/* A query that runs out of memory says so and visits nothing more. */
	for (long k = 0;; k++) {
		memset(&g, 0, sizeof(g));
		hearth_alloc_fail_after(k);
		n = hearth_episodes_query(st, &q, collect, &g);
		hearth_alloc_fail_after(-1);
		if (n >= 0)
			break;
		assert_int_equal(n, -ENOMEM);
		assert_true(k < 1000);
	}
	assert_int_equal(n, 6); /* episodes 2, 5, 8, 11, 14 and 17 */
	hearth_store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_roundtrip_reopen, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_filters, tmpstore_setup, tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_limit_and_stop, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_corrupt_record_skipped, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_age_window, tmpstore_setup, tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_prune, tmpstore_setup, tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_annotate, tmpstore_setup, tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_alloc_failure, tmpstore_setup,
	                                        tmpstore_teardown),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
