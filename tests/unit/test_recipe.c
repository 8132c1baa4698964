/*
 * test_recipe.c - recipe documents and the recipe book. The built-in
 * library must load clean. A recipe that is wrong anywhere is refused with
 * one line per mistake, each naming the file, the JSON path of the field and
 * what is wrong ("file: steps[0].args.brightness: ..."), because those lines
 * are all a recipe author gets: every mistake at once, and no second line
 * for a check that depends on a field already refused. The book skips what
 * does not load and reports it line by line, in file-name order (fixtures in
 * tests/unit/fixtures/recipes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth_config.h"
#include "platform/alloc.h"
#include "platform/err.h"
#include "recipes/capability.h"
#include "recipes/recipe.h"

#define FIXTURES HEARTH_SOURCE_DIR "/tests/unit/fixtures/recipes"

/* ==== Reports from the book ==== */

#define LINES_MAX 32

struct lines {
	char *v[LINES_MAX];
	int n;
};

static void
collect(void *ud, const char *line)
{
	struct lines *l = ud;

	if (l->n < LINES_MAX)
		l->v[l->n] = strdup(line);
	l->n++;
}

static void
lines_free(struct lines *l)
{
	for (int i = 0; i < l->n && i < LINES_MAX; i++)
		free(l->v[i]);
	l->n = 0;
}

static void
assert_contains(const char *hay, const char *needle)
{
	assert_non_null(hay);
	if (!strstr(hay, needle))
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

/* ==== Parsing helpers ==== */

static struct hearth_recipe *
parse_ok(const char *text)
{
	struct hearth_recipe *r = NULL;
	char why[512] = "";
	int rc = hearth_recipe_parse(text, strlen(text), "t.json", &r, why, sizeof(why));

	if (rc)
		fail_msg("refused: %s", why);
	assert_non_null(r);
	return r;
}

/* The document must be refused with exactly this line. */
static void
parse_bad(const char *text, const char *want_why)
{
	struct hearth_recipe *r = (struct hearth_recipe *)1;
	char why[512] = "";
	int rc = hearth_recipe_parse(text, strlen(text), "t.json", &r, why, sizeof(why));

	assert_int_equal(rc, HEARTH_E_INVALID);
	assert_null(r);
	if (strcmp(why, want_why))
		fail_msg("got  \"%s\"\nwant \"%s\"", why, want_why);
}

/* A recipe document around one steps array (and optional extra top-level text). */
static char *
doc(const char *top, const char *steps)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf),
	         "{\"id\":\"test.r\",\"version\":\"1\",\"intents\":[\"test.r\"],"
	         "\"slots\":{\"room\":{\"type\":\"room\",\"required\":true}}%s%s,"
	         "\"steps\":%s}",
	         top[0] ? "," : "", top, steps);
	return buf;
}

#define STEP_OK "{\"id\":\"a\",\"capability\":\"light.on_off\",\"args\":{\"on\":true}}"

/* ==== Parsing ==== */

static void
test_parse_fields_and_defaults(void **state)
{
	struct hearth_recipe *r;
	const struct hearth_recipe_slot *s;

	r = parse_ok(doc("\"title\":\"Test\",\"unknown_field\":{\"x\":1}",
	                 "[" STEP_OK ",{\"id\":\"b\",\"capability\":\"light.brightness\","
	                 "\"target\":{\"room\":\"{room}\",\"kind\":\"light\"},"
	                 "\"args\":{\"brightness\":30,\"on\":true},"
	                 "\"holds\":{\"brightness\":{\"max\":30},\"on\":true},"
	                 "\"timeout_ms\":2500,\"compensate\":false}]"));
	assert_string_equal(r->id, "test.r");
	assert_string_equal(r->version, "1");
	assert_string_equal(r->title, "Test");
	assert_string_equal(r->file, "t.json");
	assert_int_equal(r->nintents, 1);
	assert_string_equal(r->intents[0], "test.r");
	assert_int_equal(r->approval, HEARTH_APPROVAL_AUTO);
	assert_int_equal(r->nslots, 1);
	s = hearth_recipe_slot(r, "room");
	assert_non_null(s);
	assert_string_equal(s->type, "room");
	assert_true(s->required);
	assert_null(s->def);
	assert_null(hearth_recipe_slot(r, "level"));

	assert_int_equal(r->nsteps, 2);
	/* defaults */
	assert_string_equal(r->steps[0].id, "a");
	assert_int_equal(r->steps[0].cap, hearth_capability_find("light.on_off"));
	assert_null(r->steps[0].room);
	assert_null(r->steps[0].kind);
	assert_null(r->steps[0].holds);
	assert_int_equal(r->steps[0].timeout_ms, HEARTH_STEP_TIMEOUT_DEFAULT_MS);
	assert_true(r->steps[0].compensate);
	/* everything given */
	assert_string_equal(r->steps[1].room, "{room}");
	assert_string_equal(r->steps[1].kind, "light");
	assert_int_equal(cJSON_GetArraySize(r->steps[1].args), 2);
	assert_non_null(r->steps[1].holds);
	assert_int_equal(r->steps[1].timeout_ms, 2500);
	assert_false(r->steps[1].compensate);
	hearth_recipe_free(r);

	r = parse_ok("{\"id\":\"test.x\",\"version\":\"2\",\"intents\":[\"a.b\",\"c.d\"],"
	             "\"approval\":\"always\",\"slots\":{\"level\":{\"type\":\"percent\","
	             "\"default\":40}},\"steps\":[" STEP_OK "]}");
	assert_int_equal(r->approval, HEARTH_APPROVAL_ALWAYS);
	assert_int_equal(r->nintents, 2);
	assert_string_equal(r->intents[1], "c.d");
	s = hearth_recipe_slot(r, "level");
	assert_false(s->required);
	assert_true(cJSON_IsNumber(s->def) && s->def->valuedouble == 40);
	assert_null(r->title);
	hearth_recipe_free(r);
}

static void
test_parse_missing_id(void **state)
{
	parse_bad("{\"version\":\"1\",\"intents\":[\"x\"],\"steps\":[" STEP_OK "]}",
	          "t.json: id: is required (a string)");
	parse_bad("{\"id\":7,\"version\":\"1\",\"intents\":[\"x\"],\"steps\":[" STEP_OK "]}",
	          "t.json: id: must be a string");
}

static void
test_parse_bad_id(void **state)
{
	static const char *const ids[] = {"bad id", "a/b", "scene#1", ""};

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		char text[512];

		snprintf(text, sizeof(text),
		         "{\"id\":\"%s\",\"version\":\"1\",\"intents\":[\"x\"],\"steps\":[" STEP_OK
		         "]}",
		         ids[i]);
		parse_bad(text, "t.json: id: must be 1-64 characters of A-Z a-z 0-9 _ . -");
	}
	parse_bad(doc("",
	              "[{\"id\":\"a b\",\"capability\":\"light.on_off\",\"args\":{\"on\":true}}]"),
	          "t.json: steps[0].id: must be 1-64 characters of A-Z a-z 0-9 _ . -");
}

static void
test_parse_unknown_capability(void **state)
{
	parse_bad(doc("", "[" STEP_OK ",{\"id\":\"b\",\"capability\":\"light.disco\","
	                  "\"args\":{\"on\":true}}]"),
	          "t.json: steps[1].capability: unknown capability \"light.disco\"");
	parse_bad(doc("", "[{\"id\":\"b\",\"args\":{\"on\":true}}]"),
	          "t.json: steps[0].capability: is required (a capability name)");
}

static void
test_parse_sensor_capability(void **state)
{
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"sensor.motion\","
	                  "\"args\":{\"motion\":true}}]"),
	          "t.json: steps[0].capability: \"sensor.motion\" is a sensor and cannot be "
	          "commanded");
}

static void
test_parse_args_out_of_range(void **state)
{
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.brightness\","
	                  "\"args\":{\"brightness\":150}}]"),
	          "t.json: steps[0].args.brightness: brightness must be a number from 0 to 100");
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.on_off\","
	                  "\"args\":{\"on\":\"yes\"}}]"),
	          "t.json: steps[0].args.on: on must be true or false");
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"climate.setpoint\","
	                  "\"args\":{\"setpoint\":2}}]"),
	          "t.json: steps[0].args.setpoint: setpoint must be a number from 5 to 35");
}

static void
test_parse_args_unknown_property(void **state)
{
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.on_off\","
	                  "\"args\":{\"on\":true,\"sparkle\":3}}]"),
	          "t.json: steps[0].args.sparkle: no capability has this property");
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.on_off\",\"args\":{}}]"),
	          "t.json: steps[0].args: must be a non-empty object of properties");
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.on_off\"}]"),
	          "t.json: steps[0].args: must be a non-empty object of properties");
}

static void
test_parse_holds_bound(void **state)
{
	parse_bad(doc("",
	              "[{\"id\":\"a\",\"capability\":\"light.brightness\","
	              "\"args\":{\"brightness\":30},\"holds\":{\"brightness\":{\"below\":30}}}]"),
	          "t.json: steps[0].holds.brightness: a bound is {\"max\":N} or {\"min\":N}");
	parse_bad(doc("",
	              "[{\"id\":\"a\",\"capability\":\"light.brightness\","
	              "\"args\":{\"brightness\":30},\"holds\":{\"brightness\":{\"max\":\"30\"}}}]"),
	          "t.json: steps[0].holds.brightness: a bound is {\"max\":N} or {\"min\":N}");
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.brightness\","
	                  "\"args\":{\"brightness\":30},\"holds\":{\"glow\":true}}]"),
	          "t.json: steps[0].holds.glow: no capability has this property");
	/* a plain value in holds is checked like an arg */
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.brightness\","
	                  "\"args\":{\"brightness\":30},\"holds\":{\"brightness\":300}}]"),
	          "t.json: steps[0].holds.brightness: brightness must be a number from 0 to 100");
}

static void
test_parse_timeout_range(void **state)
{
	static const struct {
		const char *value, *why;
	} bad[] = {
	        {"5", "t.json: steps[0].timeout_ms: must be from 10 to 3600000"},
	        {"3600001", "t.json: steps[0].timeout_ms: must be from 10 to 3600000"},
	        {"-1", "t.json: steps[0].timeout_ms: must be from 10 to 3600000"},
	        {"1.5", "t.json: steps[0].timeout_ms: must be a whole number of milliseconds"},
	        {"\"10s\"", "t.json: steps[0].timeout_ms: must be a whole number of milliseconds"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char steps[256];

		snprintf(steps, sizeof(steps),
		         "[{\"id\":\"a\",\"capability\":\"light.on_off\",\"args\":{\"on\":true},"
		         "\"timeout_ms\":%s}]",
		         bad[i].value);
		parse_bad(doc("", steps), bad[i].why);
	}
	/* the bounds themselves are fine */
	hearth_recipe_free(parse_ok(doc("", "[{\"id\":\"a\",\"capability\":\"light.on_off\","
	                                    "\"args\":{\"on\":true},\"timeout_ms\":10},"
	                                    "{\"id\":\"b\",\"capability\":\"light.on_off\","
	                                    "\"args\":{\"on\":true},\"timeout_ms\":3600000}]")));
}

static void
test_parse_duplicate_step_ids(void **state)
{
	parse_bad(doc("", "[" STEP_OK ",{\"id\":\"b\",\"capability\":\"light.on_off\","
	                  "\"args\":{\"on\":false}}," STEP_OK "]"),
	          "t.json: steps[2].id: \"a\" is used by steps[0] too");
}

static void
test_parse_undeclared_slot(void **state)
{
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.on_off\","
	                  "\"target\":{\"room\":\"{area}\"},\"args\":{\"on\":true}}]"),
	          "t.json: steps[0].target.room: refers to slot \"area\", which slots does not "
	          "declare");
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.on_off\","
	                  "\"target\":{\"room\":7},\"args\":{\"on\":true}}]"),
	          "t.json: steps[0].target.room: must be a string");
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.on_off\","
	                  "\"target\":\"living\",\"args\":{\"on\":true}}]"),
	          "t.json: steps[0].target: must be an object");
	/* a literal room is not a slot reference */
	hearth_recipe_free(
	        parse_ok(doc("", "[{\"id\":\"a\",\"capability\":\"light.on_off\","
	                         "\"target\":{\"room\":\"hall\"},\"args\":{\"on\":true}}]")));
}

static void
test_parse_undeclared_long_slot(void **state)
{
	/*
	 * Regression (fixed): recipe.c parse_step() (line 132) checks slot references through
	 * a 40-byte buffer (ref[40]) and slot_ref() gives up on longer names,
	 * so "{<a 40-64 character name>}" naming no declared slot passes
	 * validation although slot names may be 64 characters long. At run
	 * time the orchestrator's resolve_room() finds no such slot, returns
	 * NULL, and the step then selects devices in the whole home. Size ref
	 * as HEARTH_ID_MAX + 1 (and refuse a "{...}" that is not a valid slot
	 * name).
	 */
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.on_off\",\"target\":{\"room\":"
	                  "\"{a_rather_long_slot_name_for_the_room_to_use}\"},"
	                  "\"args\":{\"on\":true}}]"),
	          "t.json: steps[0].target.room: refers to slot "
	          "\"a_rather_long_slot_name_for_the_room_to_use\", which slots does not declare");
}

static void
test_parse_slot_default_checked(void **state)
{
	static const char *const bad[] = {
	        "{\"room\":{\"type\":\"room\",\"default\":5}}",
	        "{\"room\":{\"type\":\"room\",\"default\":\"\"}}",
	        "{\"level\":{\"type\":\"percent\",\"default\":\"high\"}}",
	};

	/*
	 * Regression (fixed): recipe.c parse_slots() (line 241) copies a slot's "default"
	 * without checking it against the slot's type. A recipe with
	 * {"type":"room","default":5} loads, and every intent that leaves the
	 * slot out is then refused with "bad_request" (slot "room" must be a
	 * room name), blaming the user's request for the recipe's mistake.
	 * Check defaults at load time as resolve_slots() checks given values.
	 */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[512], why[512] = "";
		struct hearth_recipe *r = NULL;

		snprintf(text, sizeof(text),
		         "{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],\"slots\":%s,"
		         "\"steps\":[" STEP_OK "]}",
		         bad[i]);
		assert_int_equal(
		        hearth_recipe_parse(text, strlen(text), "t.json", &r, why, sizeof(why)),
		        HEARTH_E_INVALID);
		assert_null(r);
		assert_contains(why, "t.json: slots.");
		assert_contains(why, ".default: ");
	}
}

static void
test_parse_bad_approval(void **state)
{
	parse_bad(doc("\"approval\":\"sometimes\"", "[" STEP_OK "]"),
	          "t.json: approval: must be \"auto\", \"always\" or \"never\"");
	parse_bad(doc("\"approval\":true", "[" STEP_OK "]"), "t.json: approval: must be a string");
}

static void
test_parse_empty_steps(void **state)
{
	parse_bad(doc("", "[]"), "t.json: steps: must be a non-empty array");
	parse_bad(doc("", "{}"), "t.json: steps: must be a non-empty array");
	parse_bad("{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"]}",
	          "t.json: steps: must be a non-empty array");
	parse_bad(doc("", "[" STEP_OK ",3]"), "t.json: steps[1]: must be an object");
}

static void
test_parse_too_many_steps(void **state)
{
	size_t cap = (CONFIG_HEARTH_MAX_PLAN_STEPS + 1) * 80 + 128, len;
	char *text = malloc(cap), want[128];

	assert_non_null(text);
	len = (size_t)snprintf(text, cap,
	                       "{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],"
	                       "\"steps\":[");
	for (int i = 0; i <= CONFIG_HEARTH_MAX_PLAN_STEPS; i++)
		len += (size_t)snprintf(text + len, cap - len,
		                        "%s{\"id\":\"s%d\",\"capability\":\"light.on_off\","
		                        "\"args\":{\"on\":true}}",
		                        i ? "," : "", i);
	snprintf(text + len, cap - len, "]}");
	snprintf(want, sizeof(want), "t.json: steps: %d steps, at most %d are allowed",
	         CONFIG_HEARTH_MAX_PLAN_STEPS + 1, CONFIG_HEARTH_MAX_PLAN_STEPS);
	parse_bad(text, want);
	free(text);
}

static void
test_parse_other_problems(void **state)
{
	parse_bad("[1,2]", "t.json: (top): a recipe is a JSON object");
	parse_bad("{\"id\":\"t\",\"intents\":[\"t\"],\"steps\":[" STEP_OK "]}",
	          "t.json: version: is required (a string)");
	parse_bad("{\"id\":\"t\",\"version\":\"1\",\"steps\":[" STEP_OK "]}",
	          "t.json: intents: is required (the intent names this recipe serves)");
	parse_bad("{\"id\":\"t\",\"version\":\"1\",\"intents\":[],\"steps\":[" STEP_OK "]}",
	          "t.json: intents: must name at least one intent");
	parse_bad("{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"a\",5],\"steps\":[" STEP_OK "]}",
	          "t.json: intents[1]: must be a string");
	parse_bad("{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],"
	          "\"slots\":{\"room\":{\"type\":\"place\"}},\"steps\":[" STEP_OK "]}",
	          "t.json: slots.room.type: \"place\" is not one of room, string, number, "
	          "percent, temperature");
	parse_bad("{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],"
	          "\"slots\":{\"room\":{\"type\":\"room\",\"required\":1}},\"steps\":[" STEP_OK
	          "]}",
	          "t.json: slots.room.required: must be true or false");
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.on_off\",\"args\":{\"on\":true},"
	                  "\"compensate\":\"no\"}]"),
	          "t.json: steps[0].compensate: must be true or false");
}

static void
test_parse_not_json(void **state)
{
	struct hearth_recipe *r = (struct hearth_recipe *)1;
	char why[256] = "";
	const char *text = "{\"id\":\"x\", this is not JSON";

	assert_int_equal(hearth_recipe_parse(text, strlen(text), "t.json", &r, why, sizeof(why)),
	                 HEARTH_E_BAD_JSON);
	assert_null(r);
	assert_int_equal(strncmp(why, "t.json: ", 8), 0);
	assert_true(strlen(why) > 8);
}

/* ==== Sentences, run mode, consents, targets, after, slot args ==== */

static void
test_parse_new_fields(void **state)
{
	struct hearth_recipe *r;

	(void)state;
	r = parse_ok(doc("\"sentences\":[\"movie night [in the] {room}\","
	                 "\"(start|begin) [a] movie [night] [in the] {room}\"],"
	                 "\"mode\":\"queued\",\"max\":5,\"consents\":[\"presence\",\"media\"],"
	                 "\"targets\":{\"latency_ms\":800,\"max_approvals\":0}",
	                 "[" STEP_OK ",{\"id\":\"b\",\"capability\":\"cover.position\","
	                 "\"args\":{\"position\":0},\"after\":[\"a\"]}]"));
	assert_int_equal(r->nsentences, 2);
	assert_string_equal(r->sentences[1], "(start|begin) [a] movie [night] [in the] {room}");
	assert_int_equal(r->mode, HEARTH_MODE_QUEUED);
	assert_string_equal(hearth_recipe_mode_name(r->mode), "queued");
	assert_int_equal(r->max, 5);
	assert_int_equal(r->nconsents, 2);
	assert_string_equal(r->consents[0], "presence");
	assert_int_equal(r->target_latency_ms, 800);
	assert_int_equal(r->target_max_approvals, 0);
	assert_int_equal(r->steps[0].nafter, 0);
	assert_int_equal(r->steps[1].nafter, 1);
	assert_int_equal(r->steps[1].after[0], 0);
	hearth_recipe_free(r);

	/* Defaults. */
	r = parse_ok(doc("", "[" STEP_OK "]"));
	assert_int_equal(r->nsentences, 0);
	assert_int_equal(r->mode, HEARTH_MODE_SINGLE);
	assert_int_equal(r->max, 1);
	assert_int_equal(r->nconsents, 0);
	assert_int_equal(r->target_latency_ms, 0);
	assert_int_equal(r->target_max_approvals, -1);
	hearth_recipe_free(r);

	/* Empty arrays are fine. */
	r = parse_ok(doc("\"sentences\":[],\"consents\":[]", "[" STEP_OK "]"));
	assert_int_equal(r->nsentences, 0);
	hearth_recipe_free(r);
}

static void
test_parse_bad_sentences(void **state)
{
	static const struct {
		const char *top, *why;
	} cases[] = {
	        {"\"sentences\":\"movie night\"", "t.json: sentences: must be an array of strings"},
	        {"\"sentences\":[\"a\",3]", "t.json: sentences[1]: must be a string"},
	        {"\"sentences\":[\"ok\",\"  \"]", "t.json: sentences[1]: must not be empty"},
	        {"\"sentences\":[\"\"]", "t.json: sentences[0]: must not be empty"},
	        {"\"sentences\":[\"(start|begin movie\"]",
	         "t.json: sentences[0]: \"(\" is not closed"},
	        {"\"sentences\":[\"start] movie\"]",
	         "t.json: sentences[0]: \"]\" has no \"[\" before it"},
	        {"\"sentences\":[\"(start [a) movie]\"]",
	         "t.json: sentences[0]: \")\" closes \"[\""},
	        {"\"sentences\":[\"movie () night\"]", "t.json: sentences[0]: empty group \"()\""},
	        {"\"sentences\":[\"movie night in the {area}\"]",
	         "t.json: sentences[0]: refers to slot \"area\", which slots does not declare"},
	        {"\"sentences\":[\"movie night in the {room\"]",
	         "t.json: sentences[0]: \"{\" is not closed"},
	        {"\"sentences\":[\"movie night in the {}\"]",
	         "t.json: sentences[0]: a slot is {name}, 1-64 characters"},
	        {"\"sentences\":[\"movie night in the {a b}\"]",
	         "t.json: sentences[0]: \"{a b}\" is not a slot name"},
	        {"\"sentences\":[\"movie night}\"]",
	         "t.json: sentences[0]: \"}\" has no \"{\" before it"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse_bad(doc(cases[i].top, "[" STEP_OK "]"), cases[i].why);
}

static void
test_parse_bad_mode_consents_targets(void **state)
{
	static const struct {
		const char *top, *why;
	} cases[] = {
	        {"\"mode\":\"sometimes\"",
	         "t.json: mode: must be \"single\", \"restart\", \"queued\" or \"parallel\""},
	        {"\"mode\":1", "t.json: mode: must be a string"},
	        {"\"max\":0", "t.json: max: must be from 1 to 64"},
	        {"\"max\":65", "t.json: max: must be from 1 to 64"},
	        {"\"max\":\"2\"", "t.json: max: must be a whole number from 1 to 64"},
	        {"\"consents\":{}", "t.json: consents: must be an array of strings"},
	        {"\"consents\":[\"presence\",\"dna\"]",
	         "t.json: consents[1]: \"dna\" is not a data class (presence, media, audio, "
	         "environment, energy, location, camera, device, other)"},
	        {"\"consents\":[\"media\",\"media\"]",
	         "t.json: consents[1]: \"media\" is listed twice"},
	        {"\"targets\":[]",
	         "t.json: targets: must be an object {\"latency_ms\": N, \"max_approvals\": N}"},
	        {"\"targets\":{\"latency_ms\":0}",
	         "t.json: targets.latency_ms: must be from 1 to 3600000"},
	        {"\"targets\":{\"latency_ms\":\"fast\"}",
	         "t.json: targets.latency_ms: must be a whole number of milliseconds"},
	        {"\"targets\":{\"max_approvals\":-1}",
	         "t.json: targets.max_approvals: must be from 0 to 16"},
	        {"\"targets\":{\"max_approvals\":true}",
	         "t.json: targets.max_approvals: must be a whole number"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse_bad(doc(cases[i].top, "[" STEP_OK "]"), cases[i].why);
}

#define STEP_B(after)                                                                              \
	"{\"id\":\"b\",\"capability\":\"cover.position\",\"args\":{\"position\":0},"               \
	"\"after\":" after "}"

static void
test_parse_bad_after(void **state)
{
	(void)state;
	parse_bad(doc("", "[" STEP_OK "," STEP_B("\"a\"") "]"),
	          "t.json: steps[1].after: must be an array of earlier step ids");
	parse_bad(doc("", "[" STEP_OK "," STEP_B("[\"a\",7]") "]"),
	          "t.json: steps[1].after[1]: must be a step id (a string)");
	parse_bad(doc("", "[" STEP_OK "," STEP_B("[\"b\"]") "]"),
	          "t.json: steps[1].after[0]: a step cannot wait for itself");
	parse_bad(doc("", "[" STEP_OK "," STEP_B("[\"zz\"]") "]"),
	          "t.json: steps[1].after[0]: \"zz\" is not an earlier step");
	/* A later step is not an earlier one (no cycles can be written). */
	parse_bad(doc("", "[" STEP_B("[\"a\"]") "," STEP_OK "]"),
	          "t.json: steps[0].after[0]: \"a\" is not an earlier step");
	parse_bad(doc("", "[" STEP_OK "," STEP_B("[\"a\",\"a\"]") "]"),
	          "t.json: steps[1].after[1]: \"a\" is listed twice");
}

static void
test_parse_slot_args(void **state)
{
	struct hearth_recipe *r;
	const char *slots = "\"slots\":{\"room\":{\"type\":\"room\",\"required\":true},"
	                    "\"level\":{\"type\":\"percent\",\"default\":30}}";
	char text[1024];

	(void)state;
	snprintf(text, sizeof(text),
	         "{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],%s,\"steps\":[{\"id\":\"a\","
	         "\"capability\":\"light.on_off\",\"args\":{\"on\":true,\"brightness\":\"{level}\"}"
	         "}]}",
	         slots);
	r = parse_ok(text);
	assert_string_equal(cJSON_GetObjectItem(r->steps[0].args, "brightness")->valuestring,
	                    "{level}");
	hearth_recipe_free(r);

	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.brightness\","
	                  "\"args\":{\"brightness\":\"{level}\"}}]"),
	          "t.json: steps[0].args.brightness: refers to slot \"level\", which slots does "
	          "not declare");
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.brightness\","
	                  "\"args\":{\"brightness\":\"{room}\"}}]"),
	          "t.json: steps[0].args.brightness: slot \"room\" is a room, which cannot give a "
	          "number");
	snprintf(text, sizeof(text),
	         "{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],"
	         "\"slots\":{\"level\":{\"type\":\"percent\",\"default\":300}},\"steps\":[{\"id\":"
	         "\"a\",\"capability\":\"light.brightness\",\"args\":{\"brightness\":\"{level}\"}}]"
	         "}");
	parse_bad(text, "t.json: steps[0].args.brightness: the default of slot \"level\" does not "
	                "fit: brightness must be a number from 0 to 100");
	snprintf(text, sizeof(text),
	         "{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],"
	         "\"slots\":{\"x\":{\"type\":\"number\"}},\"steps\":[{\"id\":"
	         "\"a\",\"capability\":\"light.on_off\",\"args\":{\"on\":\"{x}\"}}]}");
	parse_bad(text, "t.json: steps[0].args.on: slot \"x\" is a number, which cannot give a "
	                "true or false");
}

/* ==== Every problem at once ==== */

/* tests/unit/fixtures/recipes/many/many.json: 24 mistakes, each one line. */
static const char *const many_lines[] = {
        "id: must be 1-64 characters of A-Z a-z 0-9 _ . -",
        "version: must be a string",
        "intents[1]: must be a string",
        "slots.level.type: \"percentage\" is not one of room, string, number, percent, "
        "temperature",
        "sentences[0]: \"[\" is not closed",
        "mode: must be \"single\", \"restart\", \"queued\" or \"parallel\"",
        "max: must be from 1 to 64",
        "consents[1]: \"dna\" is not a data class (presence, media, audio, environment, "
        "energy, location, camera, device, other)",
        "targets.latency_ms: must be from 1 to 3600000",
        "approval: must be \"auto\", \"always\" or \"never\"",
        "steps[0].capability: unknown capability \"light.disco\"",
        "steps[0].target.room: refers to slot \"area\", which slots does not declare",
        "steps[0].pick: must be \"all\" or \"one\"",
        "steps[0].args.on: on must be true or false",
        "steps[0].args.sparkle: no capability has this property",
        "steps[0].holds.brightness: a bound is {\"max\":N} or {\"min\":N}",
        "steps[0].timeout_ms: must be from 10 to 3600000",
        "steps[0].compensate: must be true or false",
        "steps[0].after[0]: a step cannot wait for itself",
        "steps[0].after[1]: \"nothing\" is not an earlier step",
        "steps[1].id: \"lights\" is used by steps[0] too",
        "steps[1].capability: \"sensor.motion\" is a sensor and cannot be commanded",
        "steps[1].after[1]: \"lights\" is listed twice",
        "steps[2].id: is required (a string)",
        /* steps[3].after names "covers": steps[2] has no id, so no line */
};
#define MANY_N ((int)(sizeof(many_lines) / sizeof(many_lines[0])))

static char *
read_fixture(const char *path)
{
	FILE *f = fopen(path, "r");
	static char buf[8192];
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* Splits why at '\n' into v (in place); returns the number of lines. */
static int
split_lines(char *why, char **v, int max)
{
	int n = 0;

	for (char *line = why; line && n < max; n++) {
		char *nl = strchr(line, '\n');

		v[n] = line;
		if (nl)
			*nl = '\0';
		line = nl ? nl + 1 : NULL;
	}
	return n;
}

static void
test_parse_every_problem(void **state)
{
	struct hearth_recipe *r = (struct hearth_recipe *)1;
	char *text = read_fixture(FIXTURES "/many/many.json");
	char why[8192] = "", want[512], *v[64];
	int n;

	(void)state;
	assert_int_equal(hearth_recipe_parse(text, strlen(text), "many.json", &r, why, sizeof(why)),
	                 HEARTH_E_INVALID);
	assert_null(r);
	n = split_lines(why, v, 64);
	for (int i = 0; i < n && i < MANY_N; i++) {
		snprintf(want, sizeof(want), "many.json: %s", many_lines[i]);
		if (strcmp(v[i], want))
			fail_msg("line %d:\ngot  \"%s\"\nwant \"%s\"", i, v[i], want);
	}
	assert_int_equal(n, MANY_N);
}

/* Each document holds one mistake that others depend on: exactly one line. */
static void
test_parse_no_cascade(void **state)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
	        /* slots is not an object: no slot reference is judged */
	        {"{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],\"slots\":[\"room\"],"
	         "\"sentences\":[\"lights on in the {room}\"],\"steps\":[{\"id\":\"a\","
	         "\"capability\":\"light.brightness\",\"target\":{\"room\":\"{room}\"},"
	         "\"args\":{\"brightness\":\"{level}\"}}]}",
	         "t.json: slots: must be an object of slot name -> {type, required, default}"},
	        /* a refused slot type: the args that use the slot are not judged */
	        {"{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],"
	         "\"slots\":{\"level\":{\"type\":\"percentage\",\"default\":300}},"
	         "\"steps\":[{\"id\":\"a\",\"capability\":\"light.brightness\","
	         "\"args\":{\"brightness\":\"{level}\"}}]}",
	         "t.json: slots.level.type: \"percentage\" is not one of room, string, number, "
	         "percent, temperature"},
	        /* a refused default is not judged again where the slot is used */
	        {"{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],"
	         "\"slots\":{\"level\":{\"type\":\"percent\",\"default\":\"high\"}},"
	         "\"steps\":[{\"id\":\"a\",\"capability\":\"light.brightness\","
	         "\"args\":{\"brightness\":\"{level}\"}}]}",
	         "t.json: slots.level.default: must be a number"},
	        /* a step without an id: a later after that names nothing known is its */
	        {"{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],\"steps\":["
	         "{\"capability\":\"light.on_off\",\"args\":{\"on\":true}},"
	         "{\"id\":\"b\",\"capability\":\"light.on_off\",\"args\":{\"on\":true},"
	         "\"after\":[\"lamp\"]}]}",
	         "t.json: steps[0].id: is required (a string)"},
	        /* a step that is not an object: the same */
	        {"{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],\"steps\":[7,"
	         "{\"id\":\"b\",\"capability\":\"light.on_off\",\"args\":{\"on\":true},"
	         "\"after\":[\"lamp\"]}]}",
	         "t.json: steps[0]: must be an object"},
	        /* an invalid step id can still be named in after */
	        {"{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],\"steps\":["
	         "{\"id\":\"a b\",\"capability\":\"light.on_off\",\"args\":{\"on\":true}},"
	         "{\"id\":\"b\",\"capability\":\"light.on_off\",\"args\":{\"on\":true},"
	         "\"after\":[\"a b\"]}]}",
	         "t.json: steps[0].id: must be 1-64 characters of A-Z a-z 0-9 _ . -"},
	        /* a reused step id: after still means the earlier step, not itself */
	        {"{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],\"steps\":["
	         "{\"id\":\"a\",\"capability\":\"light.on_off\",\"args\":{\"on\":true}},"
	         "{\"id\":\"a\",\"capability\":\"light.on_off\",\"args\":{\"on\":true},"
	         "\"after\":[\"a\"]}]}",
	         "t.json: steps[1].id: \"a\" is used by steps[0] too"},
	        /* intents that are not an array are not also "empty" */
	        {"{\"id\":\"t\",\"version\":\"1\",\"intents\":\"t\",\"steps\":[" STEP_OK "]}",
	         "t.json: intents: must be an array of strings"},
	        /* a missing id is not also an invalid one */
	        {"{\"version\":\"1\",\"intents\":[\"t\"],\"steps\":[" STEP_OK "]}",
	         "t.json: id: is required (a string)"},
	        /* a missing capability does not stop the args being checked (and right) */
	        {"{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],\"steps\":["
	         "{\"id\":\"a\",\"capability\":3,\"args\":{\"on\":true}}]}",
	         "t.json: steps[0].capability: must be a capability name (a string)"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse_bad(cases[i].text, cases[i].why);
}

/* Two mistakes in one step, two in the slots, one per section: all reported. */
static void
test_parse_problems_per_field(void **state)
{
	(void)state;
	parse_bad(doc("\"max\":99,\"targets\":{\"latency_ms\":-5,\"max_approvals\":99}",
	              "[{\"id\":\"a\",\"capability\":\"light.brightness\",\"args\":{"
	              "\"brightness\":500,\"on\":1},\"after\":[7,\"zz\"]}]"),
	          "t.json: max: must be from 1 to 64\n"
	          "t.json: targets.latency_ms: must be from 1 to 3600000\n"
	          "t.json: targets.max_approvals: must be from 0 to 16\n"
	          "t.json: steps[0].args.brightness: brightness must be a number from 0 to 100\n"
	          "t.json: steps[0].args.on: on must be true or false\n"
	          "t.json: steps[0].after[0]: must be a step id (a string)\n"
	          "t.json: steps[0].after[1]: \"zz\" is not an earlier step");
	parse_bad("{\"id\":\"t\",\"version\":\"1\",\"intents\":[\"t\"],\"slots\":{"
	          "\"a b\":{\"type\":\"room\",\"required\":\"yes\"},\"n\":3},"
	          "\"sentences\":[\"{a b}\",\"[x]\",\"(y\"],"
	          "\"consents\":[1,\"media\",\"media\"],\"steps\":[" STEP_OK "]}",
	          "t.json: slots.a b: slot names are 1-64 characters of A-Z a-z 0-9 _ . -\n"
	          "t.json: slots.a b.required: must be true or false\n"
	          "t.json: slots.n: must be an object\n"
	          "t.json: sentences[0]: \"{a b}\" is not a slot name\n"
	          "t.json: sentences[2]: \"(\" is not closed\n"
	          "t.json: consents[0]: must be a string\n"
	          "t.json: consents[2]: \"media\" is listed twice");
}

static void
test_parse_pick(void **state)
{
	struct hearth_recipe *r;

	(void)state;
	r = parse_ok(doc(
	        "", "[{\"id\":\"a\",\"capability\":\"light.on_off\",\"pick\":\"one\","
	            "\"args\":{\"on\":true}},{\"id\":\"c\",\"capability\":"
	            "\"light.on_off\",\"pick\":\"all\",\"args\":{\"on\":true}}," STEP_B("[]") "]"));
	assert_true(r->steps[0].pick_one);
	assert_false(r->steps[1].pick_one);
	assert_false(r->steps[2].pick_one); /* the default is all */
	hearth_recipe_free(r);
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.on_off\",\"pick\":\"any\","
	                  "\"args\":{\"on\":true}}]"),
	          "t.json: steps[0].pick: must be \"all\" or \"one\"");
	parse_bad(doc("", "[{\"id\":\"a\",\"capability\":\"light.on_off\",\"pick\":1,"
	                  "\"args\":{\"on\":true}}]"),
	          "t.json: steps[0].pick: must be \"all\" or \"one\"");
}

/* A why too small for every line ends with the count of the others. */
static void
test_parse_problems_overflow(void **state)
{
	char *text = read_fixture(FIXTURES "/many/many.json"), why[400], want[512], *v[64];
	struct hearth_recipe *r = NULL;
	int n, more;

	(void)state;
	assert_int_equal(hearth_recipe_parse(text, strlen(text), "m.json", &r, why, sizeof(why)),
	                 HEARTH_E_INVALID);
	assert_null(r);
	assert_true(strlen(why) < sizeof(why));
	n = split_lines(why, v, 64);
	assert_true(n >= 2 && n < MANY_N);
	for (int i = 0; i < n - 1; i++) {
		snprintf(want, sizeof(want), "m.json: %s", many_lines[i]);
		assert_string_equal(v[i], want);
	}
	more = MANY_N - (n - 1); /* the count is exact */
	snprintf(want, sizeof(want), "m.json: ... and %d more problems", more);
	assert_string_equal(v[n - 1], want);

	/* no room for even one line: only the count */
	char tiny[48];

	assert_int_equal(hearth_recipe_parse(text, strlen(text), "m.json", &r, tiny, sizeof(tiny)),
	                 HEARTH_E_INVALID);
	snprintf(want, sizeof(want), "m.json: ... and %d more problems", MANY_N);
	assert_string_equal(tiny, want);

	/* version, intents and steps missing: 3 */
	assert_int_equal(
	        hearth_recipe_parse("{\"id\":\"t\"}", 10, "m.json", &r, tiny, sizeof(tiny)),
	        HEARTH_E_INVALID);
	assert_string_equal(tiny, "m.json: ... and 3 more problems");
	/* one problem that does not fit says so in the singular */
	const char *one = "{\"id\":\"t\",\"intents\":[\"t\"],\"steps\":[" STEP_OK "]}";

	assert_int_equal(hearth_recipe_parse(one, strlen(one), "m.json", &r, tiny, sizeof(tiny)),
	                 HEARTH_E_INVALID);
	assert_string_equal(tiny, "m.json: ... and 1 more problem");
}

/*
 * Out of memory anywhere in a parse gives -ENOMEM and nothing else: no leak
 * (ASan), and when no allocation failed, the very same lines as without the
 * fault.
 */
static void
test_parse_out_of_memory(void **state)
{
	static const char *const files[] = {FIXTURES "/many/many.json",
	                                    HEARTH_RECIPES_DIR "/scene.movie_night.json"};
	char want[8192], why[8192];

	(void)state;
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		char *text = strdup(read_fixture(files[f]));
		struct hearth_recipe *r = NULL;
		int want_rc, failed = 0;

		assert_non_null(text);
		want_rc = hearth_recipe_parse(text, strlen(text), "f.json", &r, want, sizeof(want));
		hearth_recipe_free(r);
		for (long n = 0; n < 2000; n++) {
			int rc;

			r = NULL;
			hearth_alloc_fail_after(n);
			rc = hearth_recipe_parse(text, strlen(text), "f.json", &r, why,
			                         sizeof(why));
			hearth_alloc_fail_after(-1);
			if (rc == -ENOMEM) {
				assert_null(r);
				failed++;
				continue;
			}
			assert_int_equal(rc, want_rc);
			assert_string_equal(why, want_rc ? want : "");
			hearth_recipe_free(r);
		}
		assert_true(failed > 10); /* the faults did land */
		free(text);
	}
}

/* A small deterministic generator for the mutation test. */
static uint32_t
next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static int
count_nodes(const cJSON *n)
{
	int c = 1;

	for (const cJSON *k = n->child; k; k = k->next)
		c += count_nodes(k);
	return c;
}

/* The k-th node of the tree under n in pre-order (k counts down), with its parent. */
static cJSON *
nth_node(cJSON *n, int *k, cJSON **parent)
{
	for (cJSON *c = n->child; c; c = c->next) {
		cJSON *hit;

		if ((*k)-- == 0) {
			*parent = n;
			return c;
		}
		if ((hit = nth_node(c, k, parent)))
			return hit;
	}
	return NULL;
}

/*
 * Every built-in recipe and the many-mistake one, with one to three values
 * replaced by values of other types (or removed), 300 times each: the parser
 * never crashes (ASan), answers 0 with no text or HEARTH_E_INVALID with at
 * least one line, each line naming the file, and never hands out a recipe
 * with a problem.
 */
static void
test_parse_mutations(void **state)
{
	static const char *const values[] = {
	        "7",       "-1", "1.5",  "\"x\"", "\"\"",          "\"{room}\"",    "\"{nope}\"",
	        "[]",      "{}", "null", "true",  "[\"a\",\"a\"]", "{\"on\":true}", "[{}]",
	        "\"a b\"", "1e9"};
	static const char *const files[] = {
	        "climate.set",   "door.unlock",        "lights.dim",        "lights.off",
	        "lights.on",     "mode.arrive_home",   "mode.away",         "mode.quiet",
	        "scene.bedtime", "scene.good_morning", "scene.movie_night", "scene.welcome_guest"};
	uint32_t seed = 0x5eed1234u;
	int invalid = 0, ok = 0;

	(void)state;
	for (size_t f = 0; f <= sizeof(files) / sizeof(files[0]); f++) {
		char path[512];
		cJSON *orig;

		if (f < sizeof(files) / sizeof(files[0]))
			snprintf(path, sizeof(path), "%s/%s.json", HEARTH_RECIPES_DIR, files[f]);
		else
			snprintf(path, sizeof(path), "%s/many/many.json", FIXTURES);
		orig = cJSON_Parse(read_fixture(path));
		assert_non_null(orig);
		for (int it = 0; it < 300; it++) {
			cJSON *d = cJSON_Duplicate(orig, 1);
			int changes = 1 + (int)(next_rand(&seed) % 3);
			struct hearth_recipe *r = (struct hearth_recipe *)1;
			char why[8192], *text, *v[256];
			int rc, n;

			assert_non_null(d);
			for (int c = 0; c < changes && count_nodes(d) > 1; c++) {
				int k = (int)(next_rand(&seed) % (uint32_t)(count_nodes(d) - 1));
				const char *val = values[next_rand(&seed) %
				                         (sizeof(values) / sizeof(values[0]))];
				cJSON *parent = NULL, *node = nth_node(d, &k, &parent), *nv;

				assert_non_null(node);
				if (next_rand(&seed) % 5 == 0) {
					cJSON_Delete(cJSON_DetachItemViaPointer(parent, node));
					continue;
				}
				nv = cJSON_Parse(val);
				assert_non_null(nv);
				if (cJSON_IsObject(parent))
					assert_true(cJSON_ReplaceItemInObjectCaseSensitive(
					        parent, node->string, nv));
				else
					assert_true(cJSON_ReplaceItemViaPointer(parent, node, nv));
			}
			text = cJSON_PrintUnformatted(d);
			assert_non_null(text);
			rc = hearth_recipe_parse(text, strlen(text), "mut.json", &r, why,
			                         sizeof(why));
			if (rc == 0) {
				assert_non_null(r);
				assert_string_equal(why, "");
				hearth_recipe_free(r);
				ok++;
			} else {
				assert_int_equal(rc, HEARTH_E_INVALID);
				assert_null(r);
				n = split_lines(why, v, 256);
				assert_true(n >= 1);
				for (int i = 0; i < n; i++)
					if (strncmp(v[i], "mut.json: ", 10) || strlen(v[i]) <= 10)
						fail_msg("line %d of %s: \"%s\"", i, text, v[i]);
				invalid++;
			}
			free(text);
			cJSON_Delete(d);
		}
		cJSON_Delete(orig);
	}
	print_message("mutations: %d refused, %d still valid\n", invalid, ok);
	assert_true(invalid > 1000);
}

/* ==== The book ==== */

static void
test_builtin_library_loads_clean(void **state)
{
	struct lines problems = {0};
	hearth_recipe_book *b = NULL;
	const struct hearth_recipe *r;
	char why[256] = "";

	assert_int_equal(hearth_recipe_book_load(HEARTH_RECIPES_DIR, &b, collect, &problems, why,
	                                         sizeof(why)),
	                 0);
	for (int i = 0; i < problems.n && i < LINES_MAX; i++)
		print_error("problem: %s\n", problems.v[i]);
	assert_int_equal(problems.n, 0);
	assert_true(hearth_recipe_book_count(b) >= 1);
	for (int i = 0; i < hearth_recipe_book_count(b); i++) {
		r = hearth_recipe_book_at(b, i);
		assert_non_null(r);
		assert_true(r->nintents >= 1);
		assert_true(r->nsteps >= 1);
	}
	assert_null(hearth_recipe_book_at(b, -1));
	assert_null(hearth_recipe_book_at(b, hearth_recipe_book_count(b)));

	r = hearth_recipe_book_find(b, "scene.movie_night");
	assert_non_null(r);
	assert_contains(r->file, "scene.movie_night.json");
	assert_non_null(hearth_recipe_slot(r, "room"));
	assert_true(hearth_recipe_slot(r, "room")->required);
	assert_int_equal(r->nsteps, 3);
	assert_non_null(r->steps[0].holds);
	assert_null(hearth_recipe_book_find(b, "scene.nothing_like_this"));
	hearth_recipe_book_free(b);
	lines_free(&problems);
}

static void
test_book_skips_and_reports(void **state)
{
	struct lines problems = {0};
	hearth_recipe_book *b = NULL;
	const struct hearth_recipe *r;
	char why[256] = "";

	assert_int_equal(hearth_recipe_book_load(FIXTURES "/mixed", &b, collect, &problems, why,
	                                         sizeof(why)),
	                 0);
	assert_int_equal(hearth_recipe_book_count(b), 1);
	r = hearth_recipe_book_find(b, "test.also_good");
	assert_non_null(r);
	assert_string_equal(r->id, "test.good");
	assert_string_equal(r->version, "1.2.0"); /* the first one stays */
	assert_int_equal(r->approval, HEARTH_APPROVAL_NEVER);
	assert_int_equal(r->steps[0].timeout_ms, 2500);
	assert_false(r->steps[0].compensate);

	/* one line per problem, in file-name order, each naming its file */
	assert_int_equal(problems.n, 3);
	assert_contains(problems.v[0], FIXTURES "/mixed/20-notjson.json: ");
	assert_contains(problems.v[1], FIXTURES "/mixed/30-invalid.json: steps[0].capability: "
	                                        "unknown capability \"light.disco\"");
	assert_contains(problems.v[2], FIXTURES "/mixed/40-dup.json: id: \"test.good\" is already "
	                                        "loaded from another file");
	hearth_recipe_book_free(b);
	lines_free(&problems);

	/* a report callback is optional */
	assert_int_equal(
	        hearth_recipe_book_load(FIXTURES "/mixed", &b, NULL, NULL, why, sizeof(why)), 0);
	assert_int_equal(hearth_recipe_book_count(b), 1);
	hearth_recipe_book_free(b);
}

static void
test_book_duplicate_ids(void **state)
{
	struct lines problems = {0};
	hearth_recipe_book *b = NULL;
	char why[256] = "";

	/*
	 * Regression (fixed): recipe.c hearth_recipe_book_load() (line 490) looks for an
	 * already loaded id with hearth_recipe_book_find(b, r->id), which
	 * matches *intents*, not ids. So 2.json, whose id "test.same" is
	 * already loaded from 1.json, loads (its intents differ), while
	 * 3.json, whose id "test.one" is new, is refused because 1.json serves
	 * an intent of that name. Compare r->id with the loaded recipes' ids.
	 */
	assert_int_equal(hearth_recipe_book_load(FIXTURES "/dup_ids", &b, collect, &problems, why,
	                                         sizeof(why)),
	                 0);
	assert_int_equal(hearth_recipe_book_count(b), 2);
	assert_string_equal(hearth_recipe_book_at(b, 0)->id, "test.same");
	assert_string_equal(hearth_recipe_book_at(b, 0)->version, "1");
	assert_string_equal(hearth_recipe_book_at(b, 1)->id, "test.one");
	assert_null(hearth_recipe_book_find(b, "test.two"));
	assert_int_equal(problems.n, 1);
	assert_contains(problems.v[0], "/dup_ids/2.json: id: \"test.same\" is already loaded");
	hearth_recipe_book_free(b);
	lines_free(&problems);
}

/* A file with several problems: one report per line, each naming the file. */
static void
test_book_reports_each_line(void **state)
{
	struct lines problems = {0};
	hearth_recipe_book *b = NULL;
	char why[256] = "", want[512];

	(void)state;
	assert_int_equal(
	        hearth_recipe_book_load(FIXTURES "/many", &b, collect, &problems, why, sizeof(why)),
	        0);
	assert_int_equal(hearth_recipe_book_count(b), 0);
	assert_int_equal(problems.n, MANY_N);
	for (int i = 0; i < MANY_N; i++) {
		snprintf(want, sizeof(want), FIXTURES "/many/many.json: %s", many_lines[i]);
		assert_string_equal(problems.v[i], want);
	}
	hearth_recipe_book_free(b);
	lines_free(&problems);
}

static void
test_book_missing_folder(void **state)
{
	hearth_recipe_book *b = (hearth_recipe_book *)1;
	char why[256] = "";

	assert_true(hearth_recipe_book_load(FIXTURES "/no-such-folder", &b, NULL, NULL, why,
	                                    sizeof(why)) < 0);
	assert_null(b);
	assert_contains(why, "cannot read recipe folder");
	assert_contains(why, "no-such-folder");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_fields_and_defaults),
	        cmocka_unit_test(test_parse_missing_id),
	        cmocka_unit_test(test_parse_bad_id),
	        cmocka_unit_test(test_parse_unknown_capability),
	        cmocka_unit_test(test_parse_sensor_capability),
	        cmocka_unit_test(test_parse_args_out_of_range),
	        cmocka_unit_test(test_parse_args_unknown_property),
	        cmocka_unit_test(test_parse_holds_bound),
	        cmocka_unit_test(test_parse_timeout_range),
	        cmocka_unit_test(test_parse_duplicate_step_ids),
	        cmocka_unit_test(test_parse_undeclared_slot),
	        cmocka_unit_test(test_parse_undeclared_long_slot),
	        cmocka_unit_test(test_parse_slot_default_checked),
	        cmocka_unit_test(test_parse_bad_approval),
	        cmocka_unit_test(test_parse_empty_steps),
	        cmocka_unit_test(test_parse_too_many_steps),
	        cmocka_unit_test(test_parse_other_problems),
	        cmocka_unit_test(test_parse_not_json),
	        cmocka_unit_test(test_parse_new_fields),
	        cmocka_unit_test(test_parse_bad_sentences),
	        cmocka_unit_test(test_parse_bad_mode_consents_targets),
	        cmocka_unit_test(test_parse_bad_after),
	        cmocka_unit_test(test_parse_slot_args),
	        cmocka_unit_test(test_parse_every_problem),
	        cmocka_unit_test(test_parse_no_cascade),
	        cmocka_unit_test(test_parse_problems_per_field),
	        cmocka_unit_test(test_parse_pick),
	        cmocka_unit_test(test_parse_problems_overflow),
	        cmocka_unit_test(test_parse_out_of_memory),
	        cmocka_unit_test(test_parse_mutations),
	        cmocka_unit_test(test_builtin_library_loads_clean),
	        cmocka_unit_test(test_book_skips_and_reports),
	        cmocka_unit_test(test_book_duplicate_ids),
	        cmocka_unit_test(test_book_reports_each_line),
	        cmocka_unit_test(test_book_missing_folder),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
