/*
 * test_orchestrator.c - the orchestration agent: an INTENT in, a PLAN (or a
 * preview reply, or a refusal) out. The book is the built-in recipe library;
 * the home is a context registry fed through its own messages (a living
 * room with a dimmable lamp, a blind and a TV). Each test changes the home or
 * the intent and checks what the user would see: the plan's steps and args,
 * the rationale, the reply's JSON, the error codes, and where the answer goes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/context/context.h"
#include "agents/msg.h"
#include "agents/orchestrator/orchestrator.h"
#include "agents/plan.h"
#include "agents/resource/resource.h"
#include "hearth_config.h"
#include "platform/alloc.h"
#include "platform/id.h"
#include "platform/log.h"
#include "recipes/capability.h"
#include "recipes/recipe.h"
#include "tests/unit/support/home.h"
#include "tests/unit/support/sink.h"

/* ==== A test outbox: what the agent posts, in order ==== */

/* ==== JSON helpers ==== */

static void
assert_contains(const char *hay, const char *needle)
{
	assert_non_null(hay);
	if (!strstr(hay, needle))
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

/* ==== Fixture: the built-in book and a living room ==== */

struct fx {
	hearth_recipe_book *book;
	hearth_context *ctx;
	hearth_orch *orch;
	struct sink sink;  /* what the orchestrator posts */
	struct sink trash; /* what the context posts while the home is set up */
	hearth_outbox out, ctx_out;
	hearth_now now;
};

static void
count_problem(void *ud, const char *line)
{
	int *n = ud;

	print_error("recipe problem: %s\n", line);
	(*n)++;
}

static void
home_msg(struct fx *f, enum hearth_msg_type type, const char *id, const char *json, bool flag)
{
	home_feed(f->ctx, &f->now, &f->ctx_out, &f->trash, type, id, json, flag);
	sink_reset(&f->trash);
}

static void
device(struct fx *f, const char *id, const char *meta_json, const char *state_json)
{
	home_msg(f, HEARTH_MSG_DEVICE_META, id, meta_json, false);
	if (state_json)
		home_msg(f, HEARTH_MSG_DEVICE_STATE, id, state_json, false);
}

static void
report(struct fx *f, const char *id, const char *state_json)
{
	home_msg(f, HEARTH_MSG_DEVICE_STATE, id, state_json, false);
}

#define LAMP_META                                                                                  \
	"{\"room\":\"living\",\"kind\":\"light\",\"name\":\"Floor lamp\","                         \
	"\"capabilities\":[\"light.on_off\",\"light.brightness\"]}"
#define BLIND_META "{\"room\":\"living\",\"kind\":\"blind\",\"capabilities\":[\"cover.position\"]}"
#define TV_META    "{\"room\":\"living\",\"kind\":\"tv\",\"capabilities\":[\"media.power\"]}"

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char why[256] = "";
	int problems = 0;

	assert_non_null(f);
	assert_int_equal(hearth_recipe_book_load(HEARTH_RECIPES_DIR, &f->book, count_problem,
	                                         &problems, why, sizeof(why)),
	                 0);
	assert_int_equal(problems, 0);
	assert_non_null(hearth_recipe_book_find(f->book, "scene.movie_night"));
	assert_int_equal(hearth_context_new(256, &f->ctx), 0);
	assert_int_equal(hearth_orch_new(f->book, f->ctx, &f->orch), 0);
	f->out = (hearth_outbox){.post = sink_post, .ud = &f->sink};
	f->ctx_out = (hearth_outbox){.post = sink_post, .ud = &f->trash};
	f->now = (hearth_now){.mono_ms = 10000, .wall_ms = 1700000000000};

	device(f, "lamp", LAMP_META, "{\"on\":true,\"brightness\":80}");
	device(f, "blind", BLIND_META, "{\"position\":100}");
	device(f, "tv", TV_META, "{\"on\":false}");
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

/* Send an intent; the message's leftovers are freed here. */
static void
intent(struct fx *f, const char *id, const char *json)
{
	hearth_msg m = {.type = HEARTH_MSG_INTENT};

	snprintf(m.id, sizeof(m.id), "%s", id);
	m.body = cJSON_Parse(json);
	assert_non_null(m.body);
	hearth_orch_handle(f->orch, &m, &f->now, &f->out);
	hearth_msg_clear(&m);
}

#define MOVIE_LIVING "{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":\"living\"}}"

/* The one PLAN posted (and nothing else). */
static struct hearth_plan *
the_plan(struct fx *f)
{
	hearth_msg *m;

	assert_int_equal(f->sink.n, 1);
	m = sink_nth(&f->sink, HEARTH_MSG_PLAN, 0);
	assert_non_null(m->plan);
	assert_string_equal(m->id, m->plan->id);
	return m->plan;
}

static struct hearth_step *
step_on(struct hearth_plan *p, const char *dev)
{
	for (int i = 0; i < p->nsteps; i++)
		if (!strcmp(p->steps[i].device, dev))
			return &p->steps[i];
	fail_msg("no step on %s", dev);
	return NULL;
}

/* The refusal: an INTENT_REPLY {"id","error","detail"} and an ERROR; returns the detail. */
static const char *
assert_refused(struct fx *f, const char *id, const char *code)
{
	hearth_msg *r, *e;

	assert_int_equal(f->sink.n, 2);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_PLAN), 0);
	r = sink_nth(&f->sink, HEARTH_MSG_INTENT_REPLY, 0);
	e = sink_nth(&f->sink, HEARTH_MSG_ERROR, 0);
	assert_string_equal(r->id, id);
	assert_string_equal(jstr(r->body, "id"), id);
	assert_string_equal(jstr(r->body, "error"), code);
	assert_non_null(jstr(r->body, "detail"));
	assert_null(cJSON_GetObjectItemCaseSensitive(r->body, "plan_id"));
	assert_string_equal(jstr(e->body, "error"), code);
	assert_string_equal(jstr(e->body, "topic"), "intent");
	assert_string_equal(jstr(e->body, "detail"), jstr(r->body, "detail"));
	return jstr(r->body, "detail");
}

/* ==== Plans ==== */

static void
test_movie_night_plan(void **state)
{
	struct fx *f = *state;
	struct hearth_plan *p;

	intent(f, "i-1", MOVIE_LIVING);
	p = the_plan(f);
	assert_int_equal(p->nsteps, 3);
	assert_string_equal(p->steps[0].id, "lights");
	assert_string_equal(p->steps[0].device, "lamp");
	assert_int_equal(p->steps[0].cap, hearth_capability_find("light.on_off"));
	assert_json(p->steps[0].args, "{\"on\":true,\"brightness\":30}");
	assert_string_equal(p->steps[1].id, "covers");
	assert_string_equal(p->steps[1].device, "blind");
	assert_json(p->steps[1].args, "{\"position\":0}");
	assert_string_equal(p->steps[2].id, "media");
	assert_string_equal(p->steps[2].device, "tv");
	assert_json(p->steps[2].args, "{\"on\":true}");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(p->steps[i].state, HEARTH_STEP_PENDING);
		assert_false(p->steps[i].optimistic);
		assert_true(p->steps[i].compensate);
		assert_int_equal(p->steps[i].timeout_ms, HEARTH_STEP_TIMEOUT_DEFAULT_MS);
		assert_null(p->steps[i].note);
	}
	assert_string_equal(p->intent_id, "i-1");
	assert_string_equal(p->intent, "scene.movie_night");
	assert_string_equal(p->recipe, "scene.movie_night");
	assert_string_equal(p->recipe_version, "1.0.0");
	assert_json(p->slots, "{\"room\":\"living\"}");
	assert_false(p->preview);
	assert_true(p->t_received == f->now.mono_ms);
	assert_true(p->wall_received == f->now.wall_ms);
	/* the plan id goes into topics: a protocol id */
	assert_true(hearth_id_valid_str(p->id));
	assert_int_equal(strncmp(p->id, "p-", 2), 0);
	assert_contains(p->rationale, "Movie night in living");
	assert_contains(p->rationale, "Floor lamp (lights) to on, brightness 30");
	assert_contains(p->rationale, "blind (covers) to position 0");
	assert_contains(p->rationale, "tv (media) to on");
	assert_null(strstr(p->rationale, "left alone"));

	/* a second intent gets another plan id */
	{
		char first[HEARTH_ID_MAX + 1];

		snprintf(first, sizeof(first), "%s", p->id);
		sink_reset(&f->sink);
		intent(f, "i-2", MOVIE_LIVING);
		assert_string_not_equal(the_plan(f)->id, first);
	}
}

static void
test_step_already_holds_is_skipped(void **state)
{
	struct fx *f = *state;
	struct hearth_plan *p;
	struct hearth_step *st;

	report(f, "lamp", "{\"on\":true,\"brightness\":20}");
	intent(f, "i-1", MOVIE_LIVING);
	p = the_plan(f);
	assert_int_equal(p->nsteps, 3);
	st = step_on(p, "lamp");
	assert_int_equal(st->state, HEARTH_STEP_SKIPPED);
	assert_non_null(st->note);
	assert_string_equal(st->note, "already on, brightness 20");
	assert_int_equal(step_on(p, "blind")->state, HEARTH_STEP_PENDING);
	assert_int_equal(step_on(p, "tv")->state, HEARTH_STEP_PENDING);
	assert_contains(p->rationale, "Floor lamp is left alone: already on, brightness 20");
	assert_null(strstr(p->rationale, "Floor lamp (lights)"));

	/* at exactly the bound it holds too; above it does not */
	sink_reset(&f->sink);
	report(f, "lamp", "{\"brightness\":30}");
	intent(f, "i-2", MOVIE_LIVING);
	assert_int_equal(step_on(the_plan(f), "lamp")->state, HEARTH_STEP_SKIPPED);
	sink_reset(&f->sink);
	report(f, "lamp", "{\"brightness\":31}");
	intent(f, "i-3", MOVIE_LIVING);
	assert_int_equal(step_on(the_plan(f), "lamp")->state, HEARTH_STEP_PENDING);
	/* off at 20 is not "on at 30 or less" */
	sink_reset(&f->sink);
	report(f, "lamp", "{\"on\":false,\"brightness\":20}");
	intent(f, "i-4", MOVIE_LIVING);
	assert_int_equal(step_on(the_plan(f), "lamp")->state, HEARTH_STEP_PENDING);
}

static void
test_every_step_holds(void **state)
{
	struct fx *f = *state;
	struct hearth_plan *p;
	struct hearth_resource_opts opts = {.retries = 2, .backoff_ms = 500, .max_plans = 4};
	hearth_resource *res;
	struct sink rs = {0};
	hearth_outbox rout = {.post = sink_post, .ud = &rs};
	hearth_msg *pm;

	report(f, "lamp", "{\"brightness\":25}");
	report(f, "blind", "{\"position\":0}");
	report(f, "tv", "{\"on\":true}");
	intent(f, "i-1", MOVIE_LIVING);
	p = the_plan(f);
	assert_int_equal(p->nsteps, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(p->steps[i].state, HEARTH_STEP_SKIPPED);
	assert_contains(p->rationale, "nothing to do");
	assert_contains(p->rationale, "Every step already holds, so the plan is complete.");
	assert_contains(p->rationale, "blind is left alone: already position 0");

	/* the resource agent takes it and completes it at once, sending nothing */
	assert_int_equal(hearth_resource_new(&opts, f->ctx, &res), 0);
	pm = sink_nth(&f->sink, HEARTH_MSG_PLAN, 0);
	hearth_resource_handle(res, pm, &f->now, &rout);
	assert_null(pm->plan); /* taken */
	assert_int_equal(sink_count(&rs, HEARTH_MSG_DEVICE_COMMAND), 0);
	assert_string_equal(jstr(sink_nth(&rs, HEARTH_MSG_INTENT_REPLY, 0)->body, "state"),
	                    "completed");
	assert_string_equal(jstr(sink_nth(&rs, HEARTH_MSG_EPISODE, 0)->body, "outcome"),
	                    "completed");
	assert_int_equal(hearth_resource_active(res), 0);
	sink_reset(&rs);
	free(rs.msgs);
	hearth_resource_free(res);
}

static void
test_preview(void **state)
{
	struct fx *f = *state;
	hearth_msg *r;
	const cJSON *steps, *st;

	hearth_orch_set_policy_hash(f->orch, "ab12cd34");
	intent(f, "i-9",
	       "{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":\"living\"},"
	       "\"preview\":true,\"source\":\"phone-1\",\"user\":\"alice\"}");
	assert_int_equal(f->sink.n, 1);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_PLAN), 0);
	r = sink_nth(&f->sink, HEARTH_MSG_INTENT_REPLY, 0);
	assert_string_equal(r->id, "i-9");
	assert_string_equal(jstr(r->body, "id"), "i-9");
	assert_string_equal(jstr(r->body, "intent"), "scene.movie_night");
	assert_string_equal(jstr(r->body, "state"), "previewed");
	assert_string_equal(jstr(r->body, "recipe"), "scene.movie_night");
	/* the plan records the policy it was planned under */
	assert_string_equal(jstr(r->body, "policy_hash"), "ab12cd34");
	assert_int_equal(strncmp(jstr(r->body, "plan_id"), "p-", 2), 0);
	assert_json(cJSON_GetObjectItemCaseSensitive(r->body, "slots"), "{\"room\":\"living\"}");
	assert_contains(jstr(r->body, "rationale"), "Movie night in living");
	assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(r->body, "alternatives")));
	assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(r->body, "score")));
	assert_null(cJSON_GetObjectItemCaseSensitive(r->body, "error"));
	steps = cJSON_GetObjectItemCaseSensitive(r->body, "steps");
	assert_int_equal(cJSON_GetArraySize(steps), 3);
	st = cJSON_GetArrayItem(steps, 0);
	assert_json(st, "{\"id\":\"lights\",\"device\":\"lamp\",\"capability\":\"light.on_off\","
	                "\"args\":{\"on\":true,\"brightness\":30},\"state\":\"pending\"}");
	assert_json(cJSON_GetArrayItem(steps, 1),
	            "{\"id\":\"covers\",\"device\":\"blind\",\"capability\":\"cover.position\","
	            "\"args\":{\"position\":0},\"state\":\"pending\"}");
	assert_json(cJSON_GetArrayItem(steps, 2),
	            "{\"id\":\"media\",\"device\":\"tv\",\"capability\":\"media.power\","
	            "\"args\":{\"on\":true},\"state\":\"pending\"}");

	/* preview:false is an ordinary run */
	sink_reset(&f->sink);
	intent(f, "i-10",
	       "{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":\"living\"},"
	       "\"preview\":false}");
	assert_false(the_plan(f)->preview);
}

/* ==== Refusals ==== */

static void
test_unknown_intent(void **state)
{
	struct fx *f = *state;

	intent(f, "i-1", "{\"intent\":\"scene.disco\",\"slots\":{\"room\":\"living\"}}");
	assert_contains(assert_refused(f, "i-1", "no_match"), "scene.disco");
	sink_reset(&f->sink);
	/* text no sentence covers: no_match naming the text */
	intent(f, "i-2", "{\"text\":\"play some jazz in the living room\"}");
	assert_contains(assert_refused(f, "i-2", "no_match"), "play some jazz");
}

static void
test_text_intent(void **state)
{
	struct fx *f = *state;
	struct hearth_plan *p;

	/* text: the book's sentences; the room through the context's rooms */
	intent(f, "i-1", "{\"text\":\"Hey hearth, movie night in the Living Room please!\"}");
	p = the_plan(f);
	assert_string_equal(p->intent, "scene.movie_night");
	assert_json(p->slots, "{\"room\":\"living\"}");
	sink_reset(&f->sink);
	/* explicit slots override what the text said */
	intent(f, "i-2",
	       "{\"text\":\"movie night in the living room\",\"slots\":{\"room\":\"attic\"}}");
	assert_contains(assert_refused(f, "i-2", "unknown_room"), "attic");
}

static void
test_missing_room_slot(void **state)
{
	struct fx *f = *state;

	intent(f, "i-1", "{\"intent\":\"scene.movie_night\"}");
	assert_contains(assert_refused(f, "i-1", "bad_request"), "room");
	sink_reset(&f->sink);
	intent(f, "i-2", "{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":null}}");
	assert_contains(assert_refused(f, "i-2", "bad_request"), "room");
	sink_reset(&f->sink);
	intent(f, "i-3", "{\"intent\":\"scene.movie_night\",\"slots\":{\"where\":\"living\"}}");
	assert_contains(assert_refused(f, "i-3", "bad_request"), "room");
	sink_reset(&f->sink);
	intent(f, "i-4", "{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":\"\"}}");
	assert_contains(assert_refused(f, "i-4", "bad_request"), "room");
}

static void
test_unknown_room(void **state)
{
	struct fx *f = *state;

	intent(f, "i-1", "{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":\"attic\"}}");
	assert_contains(assert_refused(f, "i-1", "unknown_room"), "attic");
	/* room names compare as room keys */
	sink_reset(&f->sink);
	intent(f, "i-2", "{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":\"LIVING\"}}");
	assert_int_equal(the_plan(f)->nsteps, 3);
}

static void
test_room_without_capable_devices(void **state)
{
	struct fx *f = *state;

	device(f, "pir", "{\"room\":\"pantry\",\"capabilities\":[\"sensor.motion\"]}", NULL);
	intent(f, "i-1", "{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":\"pantry\"}}");
	assert_contains(assert_refused(f, "i-1", "no_devices"), "scene.movie_night");
}

static void
test_wrong_types(void **state)
{
	static const struct {
		const char *json;
		const char *in_detail;
	} bad[] = {
	        {"{\"intent\":5,\"slots\":{\"room\":\"living\"}}", "intent"},
	        {"{\"text\":[\"movie\"]}", "text"},
	        {"{\"slots\":{\"room\":\"living\"}}", "intent"},
	        {"{\"intent\":\"scene.movie_night\",\"slots\":[\"living\"]}", "slots"},
	        {"{\"intent\":\"scene.movie_night\",\"slots\":\"living\"}", "slots"},
	        {"{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":\"living\"},"
	         "\"preview\":\"yes\"}",
	         "preview"},
	        {"{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":\"living\"},\"source\":"
	         "\"remote-012345678901234567890123456789012345678901234567890123456789012\"}",
	         "source"},
	        {"{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":\"living\"},\"user\":7}",
	         "user"},
	        {"{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":\"living\"},\"user\":\"\"}",
	         "user"},
	        {"{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":42}}", "room"},
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *detail;

		intent(f, "i-bad", bad[i].json);
		detail = assert_refused(f, "i-bad", "bad_request");
		if (!strstr(detail, bad[i].in_detail))
			fail_msg("case %zu: detail \"%s\" does not name %s", i, detail,
			         bad[i].in_detail);
		sink_reset(&f->sink);
	}
}

/* ==== Binding ==== */

static void
test_offline_device_left_out(void **state)
{
	struct fx *f = *state;
	struct hearth_plan *p;

	device(f, "reader",
	       "{\"room\":\"living\",\"name\":\"Reading lamp\","
	       "\"capabilities\":[\"light.on_off\",\"light.brightness\"]}",
	       "{\"on\":false}");
	home_msg(f, HEARTH_MSG_DEVICE_AVAIL, "reader", NULL, false);
	intent(f, "i-1", MOVIE_LIVING);
	p = the_plan(f);
	assert_int_equal(p->nsteps, 3);
	for (int i = 0; i < p->nsteps; i++)
		assert_string_not_equal(p->steps[i].device, "reader");
	assert_contains(p->rationale, "Reading lamp is offline and is left out");

	/* back online: it is planned on */
	sink_reset(&f->sink);
	home_msg(f, HEARTH_MSG_DEVICE_AVAIL, "reader", NULL, true);
	intent(f, "i-2", MOVIE_LIVING);
	p = the_plan(f);
	assert_int_equal(p->nsteps, 4);
	assert_json(step_on(p, "reader")->args, "{\"on\":true,\"brightness\":30}");
	assert_null(strstr(p->rationale, "offline"));
}

static void
test_offline_note_reads_well(void **state)
{
	struct fx *f = *state;
	struct hearth_plan *p;

	/*
	 * Regression (fixed): orchestrator.c bind_steps() (lines 301 and 308) writes the second
	 * and later notes as "%s %s is offline" / "%s %s speaks ..." with an
	 * empty first argument, so the rationale reads "...left out.  Spot is
	 * offline..." (two spaces). Print "Note: " once, then "%s is offline
	 * and is left out. ".
	 */
	device(f, "reader",
	       "{\"room\":\"living\",\"name\":\"Reading lamp\","
	       "\"capabilities\":[\"light.on_off\"]}",
	       "{\"on\":false}");
	device(f, "spot",
	       "{\"room\":\"living\",\"name\":\"Spot\","
	       "\"capabilities\":[\"light.on_off\"]}",
	       "{\"on\":false}");
	home_msg(f, HEARTH_MSG_DEVICE_AVAIL, "reader", NULL, false);
	home_msg(f, HEARTH_MSG_DEVICE_AVAIL, "spot", NULL, false);
	intent(f, "i-1", MOVIE_LIVING);
	p = the_plan(f);
	assert_contains(p->rationale, "Reading lamp is offline and is left out");
	assert_contains(p->rationale, "Spot is offline and is left out");
	assert_null(strstr(p->rationale, "  "));
}

static void
test_non_mqtt_device_left_out(void **state)
{
	struct fx *f = *state;
	struct hearth_plan *p;

	device(f, "ir",
	       "{\"room\":\"living\",\"name\":\"IR blaster\",\"transport\":\"coap\","
	       "\"uri\":\"coap://10.0.0.9/ir\",\"capabilities\":[\"media.power\"]}",
	       "{\"on\":false}");
	intent(f, "i-1", MOVIE_LIVING);
	p = the_plan(f);
	assert_int_equal(p->nsteps, 3);
	for (int i = 0; i < p->nsteps; i++)
		assert_string_not_equal(p->steps[i].device, "ir");
	assert_contains(p->rationale, "IR blaster speaks coap");
	assert_contains(p->rationale, "left out");
	sink_reset(&f->sink);

	/* once the runtime says it drives CoAP, the device is planned on */
	hearth_orch_allow_transport(f->orch, "coap");
	intent(f, "i-2", MOVIE_LIVING);
	p = the_plan(f);
	assert_int_equal(p->nsteps, 4);
	assert_non_null(step_on(p, "ir"));
}

static void
test_on_off_light_gets_on_only(void **state)
{
	struct fx *f = *state;
	struct hearth_plan *p;

	device(f, "bulb", "{\"room\":\"living\",\"capabilities\":[\"light.on_off\"]}",
	       "{\"on\":false}");
	intent(f, "i-1", MOVIE_LIVING);
	p = the_plan(f);
	assert_int_equal(p->nsteps, 4);
	assert_json(step_on(p, "bulb")->args, "{\"on\":true}");
	assert_string_equal(step_on(p, "bulb")->id, "lights");
	assert_contains(p->rationale, "bulb (lights) to on");
	/* an on/off light that is on already holds: brightness is not its business */
	sink_reset(&f->sink);
	report(f, "bulb", "{\"on\":true}");
	intent(f, "i-2", MOVIE_LIVING);
	assert_int_equal(step_on(the_plan(f), "bulb")->state, HEARTH_STEP_SKIPPED);
}

static void
test_optimistic_device_never_skipped(void **state)
{
	struct fx *f = *state;
	struct hearth_plan *p;

	/* never reported state */
	device(f, "ir", "{\"room\":\"living\",\"capabilities\":[\"media.power\"]}", NULL);
	/* says it is optimistic, and reports what already holds */
	device(f, "relay",
	       "{\"room\":\"living\",\"capabilities\":[\"media.power\"],\"optimistic\":true}",
	       "{\"on\":true}");
	intent(f, "i-1", MOVIE_LIVING);
	p = the_plan(f);
	assert_int_equal(p->nsteps, 5);
	assert_true(step_on(p, "ir")->optimistic);
	assert_int_equal(step_on(p, "ir")->state, HEARTH_STEP_PENDING);
	assert_true(step_on(p, "relay")->optimistic);
	assert_int_equal(step_on(p, "relay")->state, HEARTH_STEP_PENDING);
	assert_contains(p->rationale, "ir (media) to on (it does not report state");
}

static void
test_too_many_steps(void **state)
{
	struct fx *f = *state;

	/*
	 * Regression (fixed): orchestrator.c bind_steps() reads devs[j] (line 289) before it
	 * checks j against CONFIG_HEARTH_MAX_PLAN_STEPS (line 293): with more
	 * matching devices than the array holds it reads past the end (UBSan:
	 * "index 64 out of bounds"). Check the bound before the read.
	 */

	for (int i = 0; i < CONFIG_HEARTH_MAX_PLAN_STEPS; i++) {
		char id[16];

		snprintf(id, sizeof(id), "spot%d", i);
		device(f, id, "{\"room\":\"living\",\"capabilities\":[\"light.on_off\"]}",
		       "{\"on\":false}");
	}
	intent(f, "i-1", MOVIE_LIVING);
	assert_contains(assert_refused(f, "i-1", "too_large"), "steps");
}

/* ==== Reply address ==== */

static void
test_reply_address_moves(void **state)
{
	struct fx *f = *state;
	hearth_msg m = {.type = HEARTH_MSG_INTENT};
	struct hearth_plan *p;
	hearth_msg *r;

	/* into the plan */
	snprintf(m.id, sizeof(m.id), "i-1");
	m.body = cJSON_Parse(MOVIE_LIVING);
	m.reply.topic = hearth_strdup("phone/alice/replies");
	m.reply.corr = hearth_memdup("\x01\x02\x03", 3);
	m.reply.corr_len = 3;
	hearth_orch_handle(f->orch, &m, &f->now, &f->out);
	assert_null(m.reply.topic);
	assert_null(m.reply.corr);
	hearth_msg_clear(&m);
	p = the_plan(f);
	assert_string_equal(p->reply.topic, "phone/alice/replies");
	assert_int_equal(p->reply.corr_len, 3);
	assert_memory_equal(p->reply.corr, "\x01\x02\x03", 3);
	sink_reset(&f->sink);

	/* into the preview reply */
	m = (hearth_msg){.type = HEARTH_MSG_INTENT};
	snprintf(m.id, sizeof(m.id), "i-2");
	m.body = cJSON_Parse("{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":\"living\"},"
	                     "\"preview\":true}");
	m.reply.topic = hearth_strdup("phone/bob");
	hearth_orch_handle(f->orch, &m, &f->now, &f->out);
	assert_null(m.reply.topic);
	hearth_msg_clear(&m);
	r = sink_nth(&f->sink, HEARTH_MSG_INTENT_REPLY, 0);
	assert_string_equal(r->reply.topic, "phone/bob");
	assert_null(r->reply.corr);
	sink_reset(&f->sink);

	/* into the refusal (the ERROR carries none) */
	m = (hearth_msg){.type = HEARTH_MSG_INTENT};
	snprintf(m.id, sizeof(m.id), "i-3");
	m.body = cJSON_Parse("{\"intent\":\"nope\"}");
	m.reply.topic = hearth_strdup("phone/carol");
	m.reply.corr = hearth_memdup("xy", 2);
	m.reply.corr_len = 2;
	hearth_orch_handle(f->orch, &m, &f->now, &f->out);
	assert_null(m.reply.topic);
	hearth_msg_clear(&m);
	r = sink_nth(&f->sink, HEARTH_MSG_INTENT_REPLY, 0);
	assert_string_equal(r->reply.topic, "phone/carol");
	assert_int_equal(r->reply.corr_len, 2);
	assert_memory_equal(r->reply.corr, "xy", 2);
	assert_null(sink_nth(&f->sink, HEARTH_MSG_ERROR, 0)->reply.topic);
}

static void
test_other_messages_ignored(void **state)
{
	struct fx *f = *state;
	hearth_msg m = {.type = HEARTH_MSG_DEVICE_CHANGED, .flag = true};

	snprintf(m.id, sizeof(m.id), "lamp");
	hearth_orch_handle(f->orch, &m, &f->now, &f->out);
	assert_int_equal(f->sink.n, 0);
}

/* Without consent to read a device's state, the planner cannot tell that a
 * step already holds: it plans it, and the denied read is counted. */
static void
test_privacy_denied_read_is_not_skipped(void **state)
{
	struct fx *f = *state;
	hearth_privacy *g = hearth_context_privacy(f->ctx);
	struct hearth_plan *p;

	report(f, "lamp", "{\"on\":true,\"brightness\":20}");
	hearth_privacy_set(g, HEARTH_CONSUMER_PLANNER, HEARTH_CLASS_DEVICE, false);
	intent(f, "i-1", MOVIE_LIVING);
	p = the_plan(f);
	assert_int_equal(step_on(p, "lamp")->state, HEARTH_STEP_PENDING);
	assert_true(hearth_privacy_denied(g, HEARTH_CONSUMER_PLANNER, HEARTH_CLASS_DEVICE) >= 1);
}

/* A "{slot}" value in a recipe's args becomes the slot's value: the given
 * one, else the default. */
static void
test_slot_values_fill_args(void **state)
{
	struct fx *f = *state;
	struct hearth_plan *p;

	intent(f, "i-1",
	       "{\"intent\":\"lights.dim\",\"slots\":{\"room\":\"living\",\"level\":40}}");
	p = the_plan(f);
	assert_json(step_on(p, "lamp")->args, "{\"on\":true,\"brightness\":40}");
	sink_reset(&f->sink);

	intent(f, "i-2", "{\"intent\":\"lights.dim\",\"slots\":{\"room\":\"living\"}}");
	p = the_plan(f);
	assert_json(step_on(p, "lamp")->args, "{\"on\":true,\"brightness\":30}");
}

/* Unlocking is high risk: the plan goes out awaiting the owner's approval
 * (the approval agent asks and answers the intent), a preview shows it. */
static void
test_approval_needed_plan_waits(void **state)
{
	struct fx *f = *state;
	struct hearth_plan *p;
	hearth_msg *r;

	device(f, "door",
	       "{\"room\":\"hallway\",\"name\":\"Front door\",\"capabilities\":[\"lock.lock\"]}",
	       "{\"locked\":true}");
	intent(f, "i-1", "{\"intent\":\"door.unlock\",\"slots\":{\"room\":\"hallway\"}}");
	assert_int_equal(f->sink.n, 1); /* the PLAN only: no reply, no command */
	p = the_plan(f);
	assert_int_equal(p->state, HEARTH_PLAN_AWAITING_APPROVAL);
	assert_true(p->needs_approval);
	assert_false(p->preapproved);
	assert_int_equal(p->risk, HEARTH_RISK_HIGH);
	assert_string_equal(p->approval_scope, "recipe:door.unlock/room:hallway");
	assert_contains(p->rationale,
	                "Needs the owner's approval: it unlocks Front door (risk high); nothing "
	                "is done before it.");
	sink_reset(&f->sink);
	intent(f, "i-2",
	       "{\"intent\":\"door.unlock\",\"slots\":{\"room\":\"hallway\"},\"preview\":true}");
	r = sink_nth(&f->sink, HEARTH_MSG_INTENT_REPLY, 0);
	assert_string_equal(jstr(r->body, "state"), "previewed");
	assert_string_equal(jstr(r->body, "risk"), "high");
	assert_json(cJSON_GetObjectItemCaseSensitive(r->body, "approval"),
	            "{\"preapproved\":false,\"scope\":\"recipe:door.unlock/room:hallway\"}");
	sink_reset(&f->sink);
	/* a low-risk plan says so and needs nothing */
	intent(f, "i-3", "{\"intent\":\"scene.movie_night\",\"slots\":{\"room\":\"living\"}}");
	p = the_plan(f);
	assert_int_equal(p->risk, HEARTH_RISK_LOW);
	assert_false(p->needs_approval);
	assert_int_equal(p->state, HEARTH_PLAN_PREVIEWED); /* not set: the resource agent runs it */
}

/* ==== Critique and after, with recipes built here ==== */

/* Parse one recipe document, load it as the orchestrator's only book, and
 * send its intent as a preview; returns the reply (the book is freed by the
 * caller through *book). */
static hearth_msg *
preview_recipe(struct fx *f, const char *json, hearth_recipe_book **book)
{
	const char *const docs[] = {json, NULL};

	*book = home_book(docs);
	hearth_orch_set_book(f->orch, *book);
	intent(f, "i-c", "{\"intent\":\"test.crit\",\"preview\":true}");
	assert_int_equal(f->sink.n, 1);
	return sink_nth(&f->sink, HEARTH_MSG_INTENT_REPLY, 0);
}

/* The one finding of kind in a reply's critique; its detail. */
static const char *
finding_of(const cJSON *body, const char *kind)
{
	const cJSON *c, *hit = NULL;

	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(body, "critique"))
	{
		if (!strcmp(jstr(c, "kind"), kind)) {
			assert_null(hit);
			hit = c;
		}
	}
	assert_non_null(hit);
	return jstr(hit, "detail");
}

#define CRIT_HEAD "{\"id\":\"test.crit\",\"version\":\"1.0.0\",\"intents\":[\"test.crit\"],"

static void
test_critique_conflict(void **state)
{
	struct fx *f = *state;
	hearth_recipe_book *b = NULL;
	hearth_msg *r = preview_recipe(
	        f,
	        CRIT_HEAD
	        "\"steps\":["
	        "{\"id\":\"dim\",\"capability\":\"light.brightness\",\"target\":{\"room\":"
	        "\"living\"},\"args\":{\"brightness\":30}},"
	        "{\"id\":\"bright\",\"capability\":\"light.brightness\",\"target\":{"
	        "\"room\":\"living\"},\"args\":{\"brightness\":70}}]}",
	        &b);

	assert_contains(finding_of(r->body, "conflict"), "dim and bright both set brightness");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r->body, "critique")),
	                 1);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r->body, "steps")), 2);
	assert_contains(jstr(r->body, "rationale"), "Conflict: steps dim and bright");
	sink_reset(&f->sink);
	hearth_recipe_book_free(b);
}

static void
test_critique_redundant(void **state)
{
	struct fx *f = *state;
	hearth_recipe_book *b = NULL;
	hearth_msg *r = preview_recipe(
	        f,
	        CRIT_HEAD "\"steps\":["
	                  "{\"id\":\"a\",\"capability\":\"light.brightness\",\"target\":{\"room\":"
	                  "\"living\"},\"args\":{\"brightness\":30}},"
	                  "{\"id\":\"tv\",\"capability\":\"media.power\",\"args\":{\"on\":true}},"
	                  "{\"id\":\"b\",\"capability\":\"light.brightness\",\"target\":{\"room\":"
	                  "\"living\"},\"args\":{\"brightness\":30},\"after\":[\"tv\"]}]}",
	        &b);
	const cJSON *steps = cJSON_GetObjectItemCaseSensitive(r->body, "steps");

	assert_contains(finding_of(r->body, "redundant"), "step b on Floor lamp repeats step a");
	assert_int_equal(cJSON_GetArraySize(steps), 2); /* the second lamp step is gone */
	assert_string_equal(jstr(cJSON_GetArrayItem(steps, 0), "id"), "a");
	assert_string_equal(jstr(cJSON_GetArrayItem(steps, 1), "id"), "tv");
	assert_contains(jstr(r->body, "rationale"), "Redundant: step b");
	sink_reset(&f->sink);
	hearth_recipe_book_free(b);
}

static void
test_critique_missing_consent(void **state)
{
	struct fx *f = *state;
	hearth_recipe_book *b = NULL;
	hearth_msg *r = preview_recipe(
	        f,
	        CRIT_HEAD "\"consents\":[\"presence\",\"camera\"],\"steps\":["
	                  "{\"id\":\"tv\",\"capability\":\"media.power\",\"args\":{\"on\":true}}]}",
	        &b);

	/* presence is the planner's by default; camera is not */
	assert_contains(finding_of(r->body, "missing_consent"), "consent for camera data");
	assert_contains(finding_of(r->body, "missing_consent"), "class:camera/planner");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r->body, "critique")),
	                 1);
	assert_contains(jstr(r->body, "rationale"), "Missing consent: test.crit needs");
	sink_reset(&f->sink);
	hearth_recipe_book_free(b);
}

/* A clean plan has an empty critique; after becomes plan-step dependencies. */
static void
test_after_becomes_plan_dependencies(void **state)
{
	struct fx *f = *state;
	hearth_recipe_book *b = NULL;
	hearth_msg *r = preview_recipe(
	        f,
	        CRIT_HEAD "\"steps\":["
	                  "{\"id\":\"covers\",\"capability\":\"cover.position\",\"args\":{"
	                  "\"position\":0}},"
	                  "{\"id\":\"lights\",\"capability\":\"light.brightness\",\"args\":{"
	                  "\"brightness\":30}},"
	                  "{\"id\":\"media\",\"capability\":\"media.power\",\"args\":{\"on\":true},"
	                  "\"after\":[\"covers\",\"lights\"]}]}",
	        &b);
	const cJSON *steps = cJSON_GetObjectItemCaseSensitive(r->body, "steps");

	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r->body, "critique")),
	                 0);
	assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(steps, 0), "after"));
	assert_json(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(steps, 2), "after"),
	            "[\"covers@blind\",\"lights@lamp\"]");
	sink_reset(&f->sink);
	hearth_recipe_book_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_approval_needed_plan_waits, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_slot_values_fill_args, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_privacy_denied_read_is_not_skipped, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_movie_night_plan, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_step_already_holds_is_skipped, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_every_step_holds, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_preview, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unknown_intent, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_text_intent, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_missing_room_slot, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unknown_room, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_room_without_capable_devices, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_offline_device_left_out, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_offline_note_reads_well, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_non_mqtt_device_left_out, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_on_off_light_gets_on_only, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_optimistic_device_never_skipped, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_too_many_steps, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_reply_address_moves, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_other_messages_ignored, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_critique_conflict, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_critique_redundant, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_critique_missing_consent, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_after_becomes_plan_dependencies, setup,
	                                        teardown),
	};

	hearth_alloc_init();
	hearth_log_set_level(HEARTH_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
