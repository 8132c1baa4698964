/*
 * test_scoring.c - candidate plans and their scores (issue 5 items 4, 6, 7
 * and 8): a "pick": "one" step makes one candidate per usable device, every
 * recipe serving the intent makes its own, each is scored on latency,
 * friction, comfort, privacy and energy, the weights decide the ranking, and
 * the rationale says why the winner won. Also: transitive "after" edges are
 * removed, and a device a running plan holds is a "busy" finding.
 *
 * The home is a den with two dimmable lights: "fast" (learned latency 50 ms,
 * 60 W) and "frugal" (900 ms, 5 W). Learned statistics come through the
 * orchestrator's memory hooks, here a small table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/context/context.h"
#include "agents/msg.h"
#include "agents/orchestrator/orchestrator.h"
#include "agents/plan.h"
#include "platform/json.h"
#include "recipes/recipe.h"
#include "tests/unit/support/home.h"
#include "tests/unit/support/sink.h"

struct fx {
	hearth_recipe_book *book;
	hearth_context *ctx;
	hearth_orch *orch;
	struct sink sink, trash;
	hearth_outbox out, ctx_out;
	hearth_now now;
	double pref_fast, pref_frugal; /* < 0: nothing learned */
	const char *held;              /* device a running plan holds, or NULL */
	const char *standing_by;       /* who set a standing pre-approval, or NULL: none */
	char asked_scope[160];         /* the last scope the planner asked about */
};

static void
assert_contains(const char *hay, const char *needle)
{
	assert_non_null(hay);
	if (!strstr(hay, needle))
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

/* ==== Memory hooks: learned statistics ==== */

static bool
mem_device(void *ud, const char *device, double *latency_ms, double *reliability)
{
	(void)ud;
	if (!strcmp(device, "fast")) {
		*latency_ms = 50;
		*reliability = 1;
		return true;
	}
	if (!strcmp(device, "frugal")) {
		*latency_ms = 900;
		*reliability = 1;
		return true;
	}
	return false;
}

static double
mem_pref(void *ud, const char *recipe, const char *device)
{
	struct fx *f = ud;

	(void)recipe;
	if (device && !strcmp(device, "fast"))
		return f->pref_fast;
	if (device && !strcmp(device, "frugal"))
		return f->pref_frugal;
	return -1;
}

static const char *
mem_holder(void *ud, const char *device)
{
	struct fx *f = ud;

	return f->held && !strcmp(device, f->held) ? "p-running-1" : NULL;
}

static bool
mem_preapproved(void *ud, const char *scope, char *by, size_t by_len)
{
	struct fx *f = ud;

	snprintf(f->asked_scope, sizeof(f->asked_scope), "%s", scope);
	if (!f->standing_by)
		return false;
	snprintf(by, by_len, "%s", f->standing_by);
	return true;
}

/* ==== Fixture ==== */

static void
home_msg(struct fx *f, enum hearth_msg_type type, const char *id, const char *json)
{
	home_feed(f->ctx, &f->now, &f->ctx_out, &f->trash, type, id, json, false);
	sink_reset(&f->trash);
}

/* Make the recipes (a NULL-terminated list of documents) the orchestrator's book. */
static void
load_book(struct fx *f, const char *const *docs)
{
	hearth_recipe_book_free(f->book);
	f->book = home_book(docs);
	hearth_orch_set_book(f->orch, f->book);
}

#define READ_RECIPE                                                                                \
	"{\"id\":\"test.read\",\"version\":\"1.0.0\",\"title\":\"Read\","                          \
	"\"intents\":[\"test.read\"],\"steps\":[{\"id\":\"light\",\"capability\":"                 \
	"\"light.brightness\",\"target\":{\"room\":\"den\"},\"pick\":\"one\",\"args\":{"           \
	"\"on\":true,\"brightness\":100}}]}"

static int
setup(void **state)
{
	static const char *const docs[] = {READ_RECIPE, NULL};
	struct fx *f = calloc(1, sizeof(*f));
	struct hearth_orch_memory mem = {.device = mem_device,
	                                 .preference = mem_pref,
	                                 .holder = mem_holder,
	                                 .preapproved = mem_preapproved};

	assert_non_null(f);
	assert_int_equal(hearth_context_new(64, &f->ctx), 0);
	assert_int_equal(hearth_orch_new(NULL, f->ctx, &f->orch), 0);
	f->out = (hearth_outbox){.post = sink_post, .ud = &f->sink};
	f->ctx_out = (hearth_outbox){.post = sink_post, .ud = &f->trash};
	f->now = (hearth_now){.mono_ms = 10000, .wall_ms = 1700000000000, .local_minute = 600};
	f->pref_fast = f->pref_frugal = -1;
	mem.ud = f;
	hearth_orch_set_memory(f->orch, &mem);
	home_msg(f, HEARTH_MSG_DEVICE_META, "fast",
	         "{\"room\":\"den\",\"kind\":\"light\",\"name\":\"Fast light\",\"power_w\":60,"
	         "\"capabilities\":[\"light.on_off\",\"light.brightness\"]}");
	home_msg(f, HEARTH_MSG_DEVICE_STATE, "fast", "{\"on\":false,\"brightness\":0}");
	home_msg(f, HEARTH_MSG_DEVICE_META, "frugal",
	         "{\"room\":\"den\",\"kind\":\"light\",\"name\":\"Frugal light\",\"power_w\":5,"
	         "\"capabilities\":[\"light.on_off\",\"light.brightness\"]}");
	home_msg(f, HEARTH_MSG_DEVICE_STATE, "frugal", "{\"on\":false,\"brightness\":0}");
	load_book(f, docs);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	sink_reset(&f->sink);
	sink_reset(&f->trash);
	free(f->sink.msgs);
	free(f->trash.msgs);
	hearth_orch_free(f->orch);
	hearth_context_free(f->ctx);
	hearth_recipe_book_free(f->book);
	free(f);
	return 0;
}

static void
weights(struct fx *f, double lat, double fri, double com, double pri, double ene)
{
	struct hearth_orch_scoring s = {.weights = {lat, fri, com, pri, ene}, .alternatives = 8};

	hearth_orch_set_scoring(f->orch, &s);
}

/* Preview intent (JSON) and return the reply's body (valid until sink_reset). */
static const cJSON *
preview(struct fx *f, const char *json)
{
	hearth_msg m = {.type = HEARTH_MSG_INTENT};
	hearth_msg *r;

	sink_reset(&f->sink);
	snprintf(m.id, sizeof(m.id), "i-s");
	m.body = cJSON_Parse(json);
	assert_non_null(m.body);
	hearth_orch_handle(f->orch, &m, &f->now, &f->out);
	hearth_msg_clear(&m);
	r = sink_nth(&f->sink, HEARTH_MSG_INTENT_REPLY, 0);
	if (cJSON_GetObjectItemCaseSensitive(r->body, "error"))
		fail_msg("refused: %s", jstr(r->body, "detail"));
	return r->body;
}

static const char *
step_device(const cJSON *body, int i)
{
	return jstr(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(body, "steps"), i),
	            "device");
}

static const cJSON *
alt(const cJSON *body, int i)
{
	return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(body, "alternatives"), i);
}

static double
num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

/* ==== Tests ==== */

/* The one weight that matters decides which light is picked. */
static void
test_weights_pick_the_device(void **state)
{
	struct fx *f = *state;
	const cJSON *b;

	weights(f, 1, 0, 0, 0, 0);
	b = preview(f, "{\"intent\":\"test.read\",\"preview\":true}");
	assert_string_equal(step_device(b, 0), "fast");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "steps")), 1);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "alternatives")),
	                 2);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(alt(b, 0), "chosen")));
	assert_json(cJSON_GetObjectItemCaseSensitive(alt(b, 0), "devices"), "[\"fast\"]");
	assert_json(cJSON_GetObjectItemCaseSensitive(alt(b, 1), "devices"), "[\"frugal\"]");
	assert_int_equal((int)num(cJSON_GetObjectItemCaseSensitive(
	                                  cJSON_GetObjectItemCaseSensitive(b, "score"), "estimate"),
	                          "latency_ms"),
	                 50);
	assert_contains(jstr(b, "rationale"), "Chosen over Read with Frugal light");
	assert_contains(jstr(b, "rationale"), "done sooner (about 50 ms against 900 ms)");

	weights(f, 0, 0, 0, 0, 1);
	b = preview(f, "{\"intent\":\"test.read\",\"preview\":true}");
	assert_string_equal(step_device(b, 0), "frugal");
	assert_json(cJSON_GetObjectItemCaseSensitive(alt(b, 1), "devices"), "[\"fast\"]");
	assert_contains(jstr(b, "rationale"), "draws less power (about 5 W against 60 W)");

	/* learned preference, comfort only */
	f->pref_fast = 0.9;
	f->pref_frugal = 0.2;
	weights(f, 0, 0, 1, 0, 0);
	b = preview(f, "{\"intent\":\"test.read\",\"preview\":true}");
	assert_string_equal(step_device(b, 0), "fast");
	assert_true(fabs(num(cJSON_GetObjectItemCaseSensitive(b, "score"), "comfort") - 0.9) <
	            1e-9);
	assert_contains(jstr(b, "rationale"), "fits what this home has preferred before");
}

/*
 * Property: for many random weight vectors, the alternatives are ranked by
 * their total, each total is the weighted mean of its dimensions, and the
 * chosen plan (the reply's steps and score) is the first.
 */
static void
test_ranked_as_the_weights_say(void **state)
{
	static const char *const dims[] = {"latency", "friction", "comfort", "privacy", "energy"};
	struct fx *f = *state;
	unsigned seed = 12345;
	int fast_won = 0, frugal_won = 0;

	f->pref_fast = 0.3;
	f->pref_frugal = 0.7;
	for (int it = 0; it < 500; it++) {
		double w[5], wsum = 0, prev = 2;
		const cJSON *b, *a;

		for (int d = 0; d < 5; d++) {
			w[d] = (double)(rand_r(&seed) % 1001) / 100.0; /* 0..10 */
			wsum += w[d];
		}
		if (wsum == 0)
			continue;
		weights(f, w[0], w[1], w[2], w[3], w[4]);
		b = preview(f, "{\"intent\":\"test.read\",\"preview\":true}");
		cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(b, "alternatives"))
		{
			const cJSON *s = cJSON_GetObjectItemCaseSensitive(a, "score");
			double want = 0;

			for (int d = 0; d < 5; d++)
				want += w[d] * num(s, dims[d]);
			want /= wsum;
			/* dimensions and total are rounded to 3 decimals */
			assert_true(fabs(num(s, "total") - want) < 0.002);
			assert_true(num(s, "total") <= prev + 1e-9);
			prev = num(s, "total");
		}
		char *first = cJSON_PrintUnformatted(
		        cJSON_GetObjectItemCaseSensitive(alt(b, 0), "score"));

		assert_non_null(first);
		assert_json(cJSON_GetObjectItemCaseSensitive(b, "score"), first);
		cJSON_free(first);
		if (!strcmp(step_device(b, 0), "fast"))
			fast_won++;
		else
			frugal_won++;
	}
	/* both lights win under some weights: the weights, not the order, decide */
	assert_true(fast_won > 0);
	assert_true(frugal_won > 0);
}

/* Every recipe that serves the intent is a candidate; privacy ranks them. */
static void
test_other_recipe_is_an_alternative(void **state)
{
	static const char *const docs[] = {
	        "{\"id\":\"test.mood.sensing\",\"version\":\"1.0.0\",\"title\":\"Sensing "
	        "mood\",\"intents\":[\"test.mood\"],\"consents\":[\"presence\",\"audio\"],"
	        "\"steps\":[{\"id\":\"l\",\"capability\":\"light.brightness\",\"target\":{"
	        "\"room\":\"den\"},\"args\":{\"brightness\":40}}]}",
	        "{\"id\":\"test.mood.plain\",\"version\":\"1.0.0\",\"title\":\"Plain mood\","
	        "\"intents\":[\"test.mood\"],\"steps\":[{\"id\":\"l\",\"capability\":"
	        "\"light.brightness\",\"target\":{\"room\":\"den\"},\"args\":{\"brightness\":"
	        "40}}]}",
	        NULL};
	struct fx *f = *state;
	const cJSON *b;

	load_book(f, docs);
	weights(f, 0, 0, 0, 1, 0);
	b = preview(f, "{\"intent\":\"test.mood\",\"preview\":true}");
	/* the book is in file-name order: the sensing recipe comes first */
	assert_string_equal(jstr(alt(b, 0), "recipe"), "test.mood.plain");
	assert_string_equal(jstr(alt(b, 1), "recipe"), "test.mood.sensing");
	assert_int_equal(
	        (int)num(cJSON_GetObjectItemCaseSensitive(
	                         cJSON_GetObjectItemCaseSensitive(alt(b, 1), "score"), "estimate"),
	                 "sensitive_classes"),
	        2);
	assert_contains(jstr(b, "rationale"), "Plain mood: set");
	assert_contains(jstr(b, "rationale"),
	                "Chosen over Sensing mood (score 1.00 against 0.33): it uses fewer "
	                "sensitive kinds of data (0 against 2)");
	/* equal weights on nothing but latency: a tie, the book's order wins */
	weights(f, 1, 0, 0, 0, 0);
	b = preview(f, "{\"intent\":\"test.mood\",\"preview\":true}");
	assert_string_equal(jstr(alt(b, 0), "recipe"), "test.mood.sensing");
	assert_contains(jstr(b, "rationale"), "the scores are equal");
}

/* A candidate the hard rules empty is listed as excluded, never chosen. */
static void
test_forbidden_candidate_excluded(void **state)
{
	struct fx *f = *state;
	cJSON *rules = cJSON_Parse("[{\"id\":\"fast_broken\",\"forbid\":{\"capability\":"
	                           "\"light.brightness\",\"device\":\"fast\"},\"reason\":\"it "
	                           "flickers\"}]");
	const cJSON *b, *a;
	int excluded = 0;

	assert_non_null(rules);
	assert_int_equal(hearth_orch_set_rules(f->orch, rules), 0);
	cJSON_Delete(rules);
	weights(f, 1, 0, 0, 0, 0); /* fast would win on latency */
	b = preview(f, "{\"intent\":\"test.read\",\"preview\":true}");
	assert_string_equal(step_device(b, 0), "frugal");
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(b, "alternatives"))
	{
		if (!cJSON_GetObjectItemCaseSensitive(a, "excluded"))
			continue;
		excluded++;
		assert_string_equal(jstr(a, "excluded"), "forbidden");
		assert_json(cJSON_GetObjectItemCaseSensitive(a, "devices"), "[]");
		assert_contains(jstr(a, "detail"), "fast_broken");
	}
	assert_int_equal(excluded, 1);
}

/* c after a and b, b after a: the a -> c edge is implied and removed. */
static void
test_transitive_after_removed(void **state)
{
	static const char *const docs[] = {
	        "{\"id\":\"test.chain\",\"version\":\"1.0.0\",\"intents\":[\"test.chain\"],"
	        "\"steps\":[{\"id\":\"a\",\"capability\":\"light.on_off\",\"target\":{\"room\":"
	        "\"den\"},\"pick\":\"one\",\"args\":{\"on\":true}},"
	        "{\"id\":\"b\",\"capability\":\"light.brightness\",\"target\":{\"room\":\"den\"},"
	        "\"args\":{\"brightness\":40},\"after\":[\"a\"]},"
	        "{\"id\":\"c\",\"capability\":\"light.on_off\",\"target\":{\"room\":\"den\"},"
	        "\"pick\":\"one\",\"args\":{\"on\":false},\"after\":[\"a\",\"b\"]}]}",
	        NULL};
	struct fx *f = *state;
	const cJSON *b, *st;

	load_book(f, docs);
	weights(f, 1, 0, 0, 0, 0);
	b = preview(f, "{\"intent\":\"test.chain\",\"preview\":true}");
	/* a@fast, b@fast, b@frugal, c@fast */
	st = cJSON_GetObjectItemCaseSensitive(b, "steps");
	assert_int_equal(cJSON_GetArraySize(st), 4);
	assert_json(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(st, 1), "after"),
	            "[\"a@fast\"]");
	assert_json(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(st, 2), "after"),
	            "[\"a@fast\"]");
	/* c waited for a, b@fast and b@frugal; a is implied by either b */
	assert_json(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(st, 3), "after"),
	            "[\"b@fast\",\"b@frugal\"]");
}

/* A device a running plan holds is a "busy" finding, once per device. */
static void
test_running_plan_holds_device(void **state)
{
	struct fx *f = *state;
	const cJSON *b, *c;
	int busy = 0;

	f->held = "frugal";
	weights(f, 0, 0, 0, 0, 1); /* frugal wins */
	b = preview(f, "{\"intent\":\"test.read\",\"preview\":true}");
	assert_string_equal(step_device(b, 0), "frugal");
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(b, "critique"))
	{
		if (strcmp(jstr(c, "kind"), "busy"))
			continue;
		busy++;
		assert_contains(jstr(c, "detail"), "Frugal light is in use by the running plan "
		                                   "p-running-1");
	}
	assert_int_equal(busy, 1);
	assert_contains(jstr(b, "rationale"), "Busy: Frugal light is in use");
}

/* A candidate expected to miss the recipe's latency target says so. */
static void
test_over_target_finding(void **state)
{
	static const char *const docs[] = {
	        "{\"id\":\"test.read\",\"version\":\"1.0.0\",\"title\":\"Read\","
	        "\"intents\":[\"test.read\"],\"targets\":{\"latency_ms\":100},\"steps\":[{"
	        "\"id\":\"light\",\"capability\":\"light.brightness\",\"target\":{\"room\":"
	        "\"den\"},\"pick\":\"one\",\"args\":{\"on\":true,\"brightness\":100}}]}",
	        NULL};
	struct fx *f = *state;
	const cJSON *b;

	load_book(f, docs);
	weights(f, 1, 0, 0, 0, 0);
	b = preview(f, "{\"intent\":\"test.read\",\"preview\":true}");
	assert_string_equal(step_device(b, 0), "fast");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "critique")), 0);
	weights(f, 0, 0, 0, 0, 1);
	b = preview(f, "{\"intent\":\"test.read\",\"preview\":true}");
	assert_string_equal(step_device(b, 0), "frugal");
	assert_string_equal(
	        jstr(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "critique"), 0),
	             "kind"),
	        "over_target");
	assert_contains(jstr(b, "rationale"),
	                "Over target: it should take about 900 ms, over the recipe's target of "
	                "100 ms");
}

/* Send a (non-preview) intent; the one PLAN it makes (the sink keeps it). */
static struct hearth_plan *
plan_of(struct fx *f, const char *json)
{
	hearth_msg m = {.type = HEARTH_MSG_INTENT};

	sink_reset(&f->sink);
	snprintf(m.id, sizeof(m.id), "i-p");
	m.body = cJSON_Parse(json);
	assert_non_null(m.body);
	hearth_orch_handle(f->orch, &m, &f->now, &f->out);
	hearth_msg_clear(&m);
	assert_int_equal(f->sink.n, 1);
	return sink_nth(&f->sink, HEARTH_MSG_PLAN, 0)->plan;
}

/*
 * A standing pre-approval covers a plan that would need an approval: any
 * for low and medium risk, only the owner's own grant for high risk. A
 * recipe that never asks cannot run a plan that needs one.
 */
static void
test_preapproval(void **state)
{
	static const char *const docs[] = {
	        "{\"id\":\"test.ask\",\"version\":\"1.0.0\",\"intents\":[\"test.ask\"],"
	        "\"approval\":\"always\",\"slots\":{\"room\":{\"type\":\"room\",\"default\":"
	        "\"den\"}},\"steps\":[{\"id\":\"l\",\"capability\":\"light.brightness\","
	        "\"target\":{\"room\":\"{room}\"},\"args\":{\"brightness\":40}}]}",
	        "{\"id\":\"test.open\",\"version\":\"1.0.0\",\"intents\":[\"test.open\"],"
	        "\"steps\":[{\"id\":\"u\",\"capability\":\"lock.lock\",\"args\":{\"locked\":"
	        "false}}]}",
	        "{\"id\":\"test.sneak\",\"version\":\"1.0.0\",\"intents\":[\"test.sneak\"],"
	        "\"approval\":\"never\",\"steps\":[{\"id\":\"u\",\"capability\":"
	        "\"lock.lock\",\"args\":{\"locked\":false}}]}",
	        NULL};
	struct fx *f = *state;
	struct hearth_plan *p;
	hearth_msg *r;

	home_msg(f, HEARTH_MSG_DEVICE_META, "door",
	         "{\"room\":\"hall\",\"kind\":\"lock\",\"name\":\"Front door\","
	         "\"capabilities\":[\"lock.lock\"]}");
	home_msg(f, HEARTH_MSG_DEVICE_STATE, "door", "{\"locked\":true}");
	load_book(f, docs);

	p = plan_of(f, "{\"intent\":\"test.ask\"}");
	assert_string_equal(f->asked_scope, "recipe:test.ask/room:den");
	assert_int_equal(p->state, HEARTH_PLAN_AWAITING_APPROVAL);
	assert_int_equal(p->risk, HEARTH_RISK_LOW);
	assert_contains(p->rationale, "Needs the owner's approval: its recipe always asks");
	f->standing_by = "phone-1";
	p = plan_of(f, "{\"intent\":\"test.ask\"}");
	assert_int_not_equal(p->state, HEARTH_PLAN_AWAITING_APPROVAL);
	assert_true(p->needs_approval);
	assert_true(p->preapproved);
	assert_contains(p->rationale, "Pre-approved: it would need the owner's approval (its "
	                              "recipe always asks, risk low), and the standing "
	                              "pre-approval of recipe:test.ask/room:den (set by phone-1) "
	                              "covers it.");
	/* the friction score counts the request a plan will make */
	assert_true(fabs(num(p->score, "friction") - 1.0) < 1e-9);

	/* high risk: a learned pre-approval does not cover it, the owner's does */
	p = plan_of(f, "{\"intent\":\"test.open\"}");
	assert_int_equal(p->state, HEARTH_PLAN_AWAITING_APPROVAL);
	assert_int_equal(p->risk, HEARTH_RISK_HIGH);
	assert_true(fabs(num(p->score, "friction") - 0.5) < 1e-9);
	f->standing_by = "owner";
	p = plan_of(f, "{\"intent\":\"test.open\"}");
	assert_true(p->preapproved);
	assert_int_not_equal(p->state, HEARTH_PLAN_AWAITING_APPROVAL);

	/* approval "never": a plan that needs one is refused */
	sink_reset(&f->sink);
	{
		hearth_msg m = {.type = HEARTH_MSG_INTENT};

		snprintf(m.id, sizeof(m.id), "i-n");
		m.body = cJSON_Parse("{\"intent\":\"test.sneak\"}");
		hearth_orch_handle(f->orch, &m, &f->now, &f->out);
		hearth_msg_clear(&m);
	}
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_PLAN), 0);
	r = sink_nth(&f->sink, HEARTH_MSG_INTENT_REPLY, 0);
	assert_string_equal(jstr(r->body, "error"), "forbidden");
	assert_contains(jstr(r->body, "detail"), "its recipe never asks for one");
}

/* Constraint memory overrides the built-in risk classes, both ways. */
static void
test_risk_rules(void **state)
{
	static const char *const docs[] = {
	        READ_RECIPE,
	        "{\"id\":\"test.open\",\"version\":\"1.0.0\",\"intents\":[\"test.open\"],"
	        "\"steps\":[{\"id\":\"u\",\"capability\":\"lock.lock\",\"args\":{\"locked\":"
	        "false}}]}",
	        NULL};
	struct fx *f = *state;
	struct hearth_plan *p;
	cJSON *rules = cJSON_Parse(
	        "[{\"id\":\"lights_matter\",\"risk\":{\"capability\":\"light.brightness\","
	        "\"device\":\"frugal\",\"level\":\"high\"},\"reason\":\"the nursery light\"},"
	        "{\"id\":\"shed_is_fine\",\"risk\":{\"capability\":\"lock.lock\",\"device\":"
	        "\"door\",\"args\":{\"locked\":false},\"level\":\"medium\"},\"reason\":\"only "
	        "the shed\"}]");

	home_msg(f, HEARTH_MSG_DEVICE_META, "door",
	         "{\"room\":\"yard\",\"kind\":\"lock\",\"name\":\"Shed door\","
	         "\"capabilities\":[\"lock.lock\"]}");
	home_msg(f, HEARTH_MSG_DEVICE_STATE, "door", "{\"locked\":true}");
	load_book(f, docs);
	assert_non_null(rules);
	assert_int_equal(hearth_orch_set_rules(f->orch, rules), 0);
	cJSON_Delete(rules);

	/* the frugal light is high risk by rule: energy picks it, and it waits */
	weights(f, 0, 0, 0, 0, 1);
	p = plan_of(f, "{\"intent\":\"test.read\"}");
	assert_string_equal(p->steps[0].device, "frugal");
	assert_int_equal(p->risk, HEARTH_RISK_HIGH);
	assert_int_equal(p->state, HEARTH_PLAN_AWAITING_APPROVAL);
	assert_contains(p->rationale, "rule lights_matter makes Frugal light (light) high risk");
	/* the other light is low: the friction of the approval now tips the
	 * balance when friction weighs as much as energy */
	weights(f, 0, 1, 0, 0, 1);
	p = plan_of(f, "{\"intent\":\"test.read\"}");
	assert_string_equal(p->steps[0].device, "fast");
	assert_int_equal(p->risk, HEARTH_RISK_LOW);
	assert_false(p->needs_approval);

	/* the shed door is only medium: a learned pre-approval covers it */
	f->standing_by = "phone-1";
	p = plan_of(f, "{\"intent\":\"test.open\"}");
	assert_int_equal(p->risk, HEARTH_RISK_MEDIUM);
	assert_true(p->preapproved);
	assert_contains(p->rationale, "rule shed_is_fine makes Shed door (u) medium risk");
}

/* The critique and the score go into the journal (and back) and the episode. */
static void
test_critique_and_score_kept(void **state)
{
	struct fx *f = *state;
	hearth_msg m = {.type = HEARTH_MSG_INTENT};
	hearth_msg *pm;
	struct hearth_plan *q;
	cJSON *j, *ep;
	char why[128] = "";

	f->held = "fast";
	weights(f, 1, 0, 0, 0, 0);
	sink_reset(&f->sink);
	snprintf(m.id, sizeof(m.id), "i-run");
	m.body = cJSON_Parse("{\"intent\":\"test.read\"}");
	hearth_orch_handle(f->orch, &m, &f->now, &f->out);
	hearth_msg_clear(&m);
	pm = sink_nth(&f->sink, HEARTH_MSG_PLAN, 0);
	assert_int_equal(cJSON_GetArraySize(pm->plan->critique), 1);
	j = hearth_plan_journal_json(pm->plan);
	assert_non_null(j);
	q = hearth_plan_from_journal(j, why, sizeof(why));
	assert_non_null(q);
	assert_true(cJSON_Compare(q->critique, pm->plan->critique, 1));
	assert_true(cJSON_Compare(q->score, pm->plan->score, 1));
	ep = hearth_plan_episode_json(q, &f->now);
	assert_string_equal(
	        jstr(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ep, "critique"), 0),
	             "kind"),
	        "busy");
	assert_true(
	        cJSON_Compare(cJSON_GetObjectItemCaseSensitive(ep, "score"), pm->plan->score, 1));
	cJSON_Delete(ep);
	cJSON_Delete(j);
	hearth_plan_free(q);
}

/* The number of alternatives shown follows the configuration. */
static void
test_alternatives_capped(void **state)
{
	struct fx *f = *state;
	struct hearth_orch_scoring s = {.weights = {1, 1, 1, 1, 0.5}, .alternatives = 1};
	const cJSON *b;

	hearth_orch_set_scoring(f->orch, &s);
	b = preview(f, "{\"intent\":\"test.read\",\"preview\":true}");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "alternatives")),
	                 1);
	/* the rationale still names the runner-up it beat */
	assert_contains(jstr(b, "rationale"), "Chosen over Read with");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_weights_pick_the_device, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ranked_as_the_weights_say, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_other_recipe_is_an_alternative, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_forbidden_candidate_excluded, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_transitive_after_removed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_running_plan_holds_device, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_alternatives_capped, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_critique_and_score_kept, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_over_target_finding, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_preapproval, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_risk_rules, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
