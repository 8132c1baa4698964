/*
 * test_matcher.c - the text matcher: template syntax (alternatives, optional
 * parts, nesting, typed slots), tolerance (case, punctuation, filler words),
 * whole-utterance coverage and tie-breaking; then the accuracy test: every
 * utterance of tests/unit/fixtures/utterances.json (none of them a template)
 * against the built-in library's sentences, which must reach 95% exact
 * intent and slots, and prints its figure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platform/alloc.h"
#include "platform/err.h"
#include "recipes/matcher.h"
#include "recipes/recipe.h"

#define UTTERANCES HEARTH_SOURCE_DIR "/tests/unit/fixtures/utterances.json"

static const struct hearth_recipe_slot typed[] = {
        {.name = "room", .type = "room", .required = true},
        {.name = "n", .type = "number", .required = true},
        {.name = "level", .type = "percent", .required = true},
        {.name = "t", .type = "temperature", .required = true},
        {.name = "who", .type = "string", .required = true},
};
#define NTYPED ((int)(sizeof(typed) / sizeof(typed[0])))

static hearth_matcher *
with_rooms(void)
{
	hearth_matcher *m;

	assert_int_equal(hearth_matcher_new(&m), 0);
	assert_int_equal(hearth_matcher_add_room(m, "living", NULL), 0);
	assert_int_equal(hearth_matcher_add_room(m, "living room", "living"), 0);
	assert_int_equal(hearth_matcher_add_room(m, "bedroom", NULL), 0);
	assert_int_equal(hearth_matcher_add_room(m, "kitchen", NULL), 0);
	return m;
}

static void
add(hearth_matcher *m, const char *intent, const char *tmpl)
{
	char why[256];

	assert_int_equal(hearth_matcher_add(m, intent, tmpl, typed, NTYPED, NULL, why, sizeof(why)),
	                 0);
}

/* Match text; expect intent (NULL: no match) and the slots as JSON text. */
static void
expect(const hearth_matcher *m, const char *text, const char *intent, const char *slots)
{
	struct hearth_match r;
	int rc = hearth_matcher_match(m, text, &r);

	if (!intent) {
		if (rc != HEARTH_E_NOT_FOUND)
			fail_msg("\"%s\" matched %s, expected no match", text, r.intent);
		return;
	}
	if (rc)
		fail_msg("\"%s\" did not match (%d), expected %s", text, rc, intent);
	assert_string_equal(r.intent, intent);
	if (slots) {
		char *got = cJSON_PrintUnformatted(r.slots);

		if (strcmp(got, slots))
			fail_msg("\"%s\": slots %s, expected %s", text, got, slots);
		cJSON_free(got);
	}
	cJSON_Delete(r.slots);
}

static void
test_literals_case_punctuation_fillers(void **state)
{
	hearth_matcher *m = with_rooms();

	(void)state;
	add(m, "scene.movie_night", "movie night");
	expect(m, "movie night", "scene.movie_night", "{}");
	expect(m, "Movie Night!", "scene.movie_night", "{}");
	expect(m, "hey hearth, movie night please", "scene.movie_night", "{}");
	expect(m, "could you do a movie night for me?", NULL, NULL); /* "do" is not covered */
	expect(m, "movie", NULL, NULL);
	expect(m, "movie night tonight", NULL, NULL);
	expect(m, "", NULL, NULL);
	expect(m, "please", NULL, NULL);
	hearth_matcher_free(m);
}

static void
test_alternatives_and_optional_nest(void **state)
{
	hearth_matcher *m = with_rooms();

	(void)state;
	add(m, "lights.on",
	    "(turn|switch) on [the] (light|lamp [in the (corner|hall)]) [(now|right away)]");
	expect(m, "turn on the light", "lights.on", "{}");
	expect(m, "switch on lamp", "lights.on", "{}");
	expect(m, "switch on the lamp in the corner", "lights.on", "{}");
	expect(m, "turn on the lamp in the hall right away", "lights.on", "{}");
	expect(m, "turn on the light in the corner", NULL, NULL); /* only the lamp has a corner */
	expect(m, "flip on the light", NULL, NULL);
	/* plurals are the same word: "lights" is "light" */
	expect(m, "Turn on the lights", "lights.on", "{}");
	hearth_matcher_free(m);
}

static void
test_room_slot(void **state)
{
	hearth_matcher *m = with_rooms();

	(void)state;
	add(m, "scene.movie_night", "movie night [in the] {room}");
	add(m, "scene.movie_night", "{room} movie night");
	expect(m, "movie night in the bedroom", "scene.movie_night", "{\"room\":\"bedroom\"}");
	expect(m, "Movie night in the Living Room", "scene.movie_night", "{\"room\":\"living\"}");
	expect(m, "movie night, living-room", "scene.movie_night", "{\"room\":\"living\"}");
	expect(m, "movie night in the living_room", "scene.movie_night", "{\"room\":\"living\"}");
	expect(m, "kitchen movie night", "scene.movie_night", "{\"room\":\"kitchen\"}");
	/* "room" after a room name belongs to the room */
	expect(m, "movie night in the kitchen room", "scene.movie_night", "{\"room\":\"kitchen\"}");
	expect(m, "movie night in the garage", NULL, NULL);
	hearth_matcher_free(m);
}

static void
test_optional_slot(void **state)
{
	static const struct hearth_recipe_slot opt[] = {{.name = "room", .type = "room"}};
	hearth_matcher *m = with_rooms();
	char why[256];

	(void)state;
	/* a slot the recipe does not require may be left unsaid */
	assert_int_equal(hearth_matcher_add(m, "lights.dim", "dim the lights [in the] {room}", opt,
	                                    1, NULL, why, sizeof(why)),
	                 0);
	expect(m, "dim the lights", "lights.dim", "{}");
	expect(m, "dim the lights in the kitchen", "lights.dim", "{\"room\":\"kitchen\"}");
	expect(m, "dim the lights in the garage", NULL, NULL);
	/* a required one may not */
	add(m, "scene.movie_night", "movie night [in the] {room}");
	expect(m, "movie night", NULL, NULL);
	hearth_matcher_free(m);
}

static bool
known_room(void *ud, const char *key)
{
	(void)ud;
	return !strcmp(key, "guest_room") || !strcmp(key, "office");
}

static void
test_room_callback(void **state)
{
	hearth_matcher *m;

	(void)state;
	assert_int_equal(hearth_matcher_new(&m), 0);
	hearth_matcher_set_room_fn(m, known_room, NULL);
	add(m, "lights.on", "lights on in {room}");
	expect(m, "lights on in the Guest Room", "lights.on", "{\"room\":\"guest_room\"}");
	expect(m, "lights on in the guest-room", "lights.on", "{\"room\":\"guest_room\"}");
	expect(m, "lights on in the office", "lights.on", "{\"room\":\"office\"}");
	expect(m, "lights on in the office room", "lights.on", "{\"room\":\"office\"}");
	expect(m, "lights on in the attic", NULL, NULL);
	hearth_matcher_free(m);
}

static void
test_number_percent_temperature_string(void **state)
{
	hearth_matcher *m = with_rooms();

	(void)state;
	add(m, "volume", "volume {n}");
	add(m, "lights.dim", "dim [lights] to {level}");
	add(m, "climate.set", "set [temperature] to {t}");
	add(m, "greet", "say hello to {who}");
	expect(m, "volume 7", "volume", "{\"n\":7}");
	expect(m, "volume twelve", "volume", "{\"n\":12}");
	expect(m, "volume forty two", "volume", "{\"n\":42}");
	expect(m, "dim the lights to 30%", "lights.dim", "{\"level\":30}");
	expect(m, "dim to 30 %", "lights.dim", "{\"level\":30}");
	expect(m, "dim lights to 30 percent", "lights.dim", "{\"level\":30}");
	expect(m, "dim to 30", "lights.dim", "{\"level\":30}");
	expect(m, "dim to twenty five per cent", "lights.dim", "{\"level\":25}");
	expect(m, "dim to 130%", NULL, NULL);
	expect(m, "set temperature to 21", "climate.set", "{\"t\":21}");
	expect(m, "set the temperature to 21.5 degrees", "climate.set", "{\"t\":21.5}");
	expect(m, "set to 21,5°C", "climate.set", "{\"t\":21.5}");
	expect(m, "set to 19°", "climate.set", "{\"t\":19}");
	expect(m, "set to 20 degrees celsius", "climate.set", "{\"t\":20}");
	expect(m, "set to 20 point 5", "climate.set", "{\"t\":20.5}");
	expect(m, "set to warm", NULL, NULL);
	expect(m, "say hello to Bob", "greet", "{\"who\":\"bob\"}");
	expect(m, "say hello to Bob Smith", NULL, NULL); /* a string slot is one word */
	hearth_matcher_free(m);
}

static void
test_fillers_in_templates(void **state)
{
	hearth_matcher *m = with_rooms();

	(void)state;
	/* fillers go from templates as they go from utterances */
	add(m, "door.unlock", "can you please unlock the door for me");
	expect(m, "unlock door", "door.unlock", "{}");
	expect(m, "Could you unlock the door, please?", "door.unlock", "{}");
	expect(m, "hey hearth unlock my door now", "door.unlock", "{}");
	hearth_matcher_free(m);
}

static void
test_best_match_and_ties(void **state)
{
	hearth_matcher *m = with_rooms();
	struct hearth_match r;

	(void)state;
	/* a string slot covers anything, so literal words win */
	add(m, "generic", "turn on {who}");
	add(m, "lights.on", "turn on light");
	expect(m, "turn on light", "lights.on", "{}");
	expect(m, "turn on fan", "generic", "{\"who\":\"fan\"}");
	/* same score and literals: the first template added wins */
	add(m, "first", "good night");
	add(m, "second", "good night");
	expect(m, "good night", "first", "{}");
	/* optional literal matched counts as a literal */
	add(m, "climate.set", "{t} [degrees] in {room}");
	assert_int_equal(hearth_matcher_match(m, "21 degrees in the kitchen", &r), 0);
	assert_string_equal(r.intent, "climate.set");
	assert_int_equal(r.literals, 2);
	assert_true(r.score > 0.9 && r.score <= 1.0);
	cJSON_Delete(r.slots);
	hearth_matcher_free(m);
}

static void
test_syntax_errors(void **state)
{
	static const char *const bad[] = {
	        "(a|b", "a]", "[a", "a|b", "{room", "a {} b", "[the]", "a)",
	};
	hearth_matcher *m;
	char why[256];

	(void)state;
	assert_int_equal(hearth_matcher_new(&m), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (hearth_matcher_add(m, "x", bad[i], NULL, 0, NULL, why, sizeof(why)) !=
		    HEARTH_E_INVALID)
			fail_msg("template \"%s\" accepted", bad[i]);
		assert_non_null(strstr(why, "template"));
	}
	assert_int_equal(hearth_matcher_count(m), 0);
	hearth_matcher_free(m);
}

static void
test_normalize(void **state)
{
	char out[128];

	(void)state;
	hearth_matcher_normalize("Hey Hearth, could you set the LIVING-ROOM to 21.5°C, please?",
	                         out, sizeof(out));
	assert_string_equal(out, "set living room 21.5 degree c");
	hearth_matcher_normalize("Honey, I'm home!", out, sizeof(out));
	assert_string_equal(out, "honey im home");
}

/* ==== Accuracy over the utterance set ==== */

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Exact slot equality: same names, strings equal, numbers equal. */
static bool
same_slots(const cJSON *want, const cJSON *got)
{
	const cJSON *w;

	if (cJSON_GetArraySize(want) != cJSON_GetArraySize(got))
		return false;
	cJSON_ArrayForEach(w, want)
	{
		const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, w->string);

		if (!g)
			return false;
		if (cJSON_IsNumber(w) &&
		    !(cJSON_IsNumber(g) && fabs(w->valuedouble - g->valuedouble) < 1e-9))
			return false;
		if (cJSON_IsString(w) &&
		    !(cJSON_IsString(g) && !strcmp(w->valuestring, g->valuestring)))
			return false;
	}
	return true;
}

static void
report(void *ud, const char *line)
{
	(void)ud;
	fail_msg("library sentence does not compile: %s", line);
}

static void
test_utterance_accuracy(void **state)
{
	hearth_recipe_book *book = NULL;
	hearth_matcher *m;
	char why[256], *text = slurp(UTTERANCES);
	cJSON *doc, *rooms, *room, *tmpls, *t, *utts, *u;
	int total = 0, good = 0, covered[64] = {0}, nintents = 0;
	const char *intents[64];
	struct timespec t0, t1;
	double pct;

	(void)state;
	assert_non_null(text);
	doc = cJSON_Parse(text);
	free(text);
	assert_non_null(doc);
	assert_int_equal(
	        hearth_recipe_book_load(HEARTH_RECIPES_DIR, &book, NULL, NULL, why, sizeof(why)),
	        0);
	assert_int_equal(hearth_matcher_new(&m), 0);
	assert_int_equal(hearth_matcher_add_book(m, book, report, NULL), 0);

	/* Templates of the fixture, only for intents the library has no sentence for. */
	tmpls = cJSON_GetObjectItemCaseSensitive(doc, "templates");
	cJSON_ArrayForEach(t, tmpls)
	{
		const struct hearth_recipe *r = hearth_recipe_book_find(book, t->string);
		const cJSON *s;

		if (r && r->nsentences > 0)
			continue;
		cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(t, "sentences"))
		        assert_int_equal(hearth_matcher_add(m, t->string, s->valuestring,
		                                            r ? r->slots : NULL, r ? r->nslots : 0,
		                                            NULL, why, sizeof(why)),
		                         0);
	}
	rooms = cJSON_GetObjectItemCaseSensitive(doc, "rooms");
	cJSON_ArrayForEach(room, rooms)
	{
		const cJSON *alias;

		cJSON_ArrayForEach(alias, room) assert_int_equal(
		        hearth_matcher_add_room(m, alias->valuestring, room->string), 0);
	}

	/* Every built-in recipe has utterances. */
	utts = cJSON_GetObjectItemCaseSensitive(doc, "utterances");
	for (int i = 0; i < hearth_recipe_book_count(book) && nintents < 64; i++)
		intents[nintents++] = hearth_recipe_book_at(book, i)->intents[0];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	cJSON_ArrayForEach(u, utts)
	{
		const char *utext = cJSON_GetObjectItemCaseSensitive(u, "text")->valuestring;
		const char *want = cJSON_GetObjectItemCaseSensitive(u, "intent")->valuestring;
		const cJSON *wslots = cJSON_GetObjectItemCaseSensitive(u, "slots");
		struct hearth_match r;
		int rc = hearth_matcher_match(m, utext, &r);

		total++;
		for (int i = 0; i < nintents; i++)
			if (!strcmp(intents[i], want))
				covered[i]++;
		if (rc == 0 && !strcmp(r.intent, want) && same_slots(wslots, r.slots)) {
			good++;
		} else if (rc == 0) {
			char *got = cJSON_PrintUnformatted(r.slots);

			printf("  miss: \"%s\": got %s %s, want %s\n", utext, r.intent, got, want);
			cJSON_free(got);
		} else {
			printf("  miss: \"%s\": no match, want %s\n", utext, want);
		}
		if (rc == 0)
			cJSON_Delete(r.slots);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

	pct = total ? 100.0 * good / total : 0;
	printf("utterance accuracy: %d/%d = %.1f%%\n", good, total, pct);
	printf("matcher: %d templates, %.1f us per utterance\n", hearth_matcher_count(m),
	       total ? ((t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3) / total
	             : 0);
	for (int i = 0; i < nintents; i++)
		if (covered[i] == 0)
			fail_msg("no utterance for the built-in intent %s", intents[i]);
	assert_true(total >= 150);
	assert_true(pct >= 95.0);
	hearth_matcher_free(m);
	hearth_recipe_book_free(book);
	cJSON_Delete(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_literals_case_punctuation_fillers),
	        cmocka_unit_test(test_alternatives_and_optional_nest),
	        cmocka_unit_test(test_room_slot),
	        cmocka_unit_test(test_optional_slot),
	        cmocka_unit_test(test_room_callback),
	        cmocka_unit_test(test_number_percent_temperature_string),
	        cmocka_unit_test(test_fillers_in_templates),
	        cmocka_unit_test(test_best_match_and_ties),
	        cmocka_unit_test(test_syntax_errors),
	        cmocka_unit_test(test_normalize),
	        cmocka_unit_test(test_utterance_accuracy),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
