/*
 * test_library.c - the built-in recipe library (recipes/library). Every
 * recipe loads without a problem, the expected ones are there, each with
 * sentence templates for the text matcher, and each binds to devices of the
 * demo home (tests/sim/homes/demo.json) with typical slot values: a step
 * selects devices by capability, the room (literal, "{slot}" or the whole
 * home) and kind, as the orchestrator does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth_config.h"
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/json.h"
#include "recipes/capability.h"
#include "recipes/recipe.h"

#define DEMO_HOME HEARTH_SOURCE_DIR "/tests/sim/homes/demo.json"

struct lib {
	hearth_recipe_book *book;
	cJSON *home;
};

static void
report(void *ud, const char *line)
{
	int *n = ud;

	print_error("problem: %s\n", line);
	(*n)++;
}

static cJSON *
read_json(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;
	cJSON *js = NULL;
	char why[128];

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	if (hearth_json_parse(buf, (size_t)n, &js, why, sizeof(why)))
		fail_msg("%s: %s", path, why);
	free(buf);
	return js;
}

static int
setup(void **state)
{
	struct lib *l = calloc(1, sizeof(*l));
	int problems = 0;
	char why[256] = "";

	if (!l || hearth_recipe_book_load(HEARTH_RECIPES_DIR, &l->book, report, &problems, why,
	                                  sizeof(why))) {
		print_error("cannot load %s: %s\n", HEARTH_RECIPES_DIR, why);
		return -1;
	}
	if (problems)
		return -1;
	l->home = read_json(DEMO_HOME);
	*state = l;
	return 0;
}

static int
teardown(void **state)
{
	struct lib *l = *state;

	hearth_recipe_book_free(l->book);
	cJSON_Delete(l->home);
	free(l);
	return 0;
}

/* Every built-in recipe, and the slot values to try it with in the demo home. */
static const struct {
	const char *id;
	const char *slots; /* JSON */
	int min_devices;   /* at least this many step bindings in the demo home */
} expected[] = {
        {"scene.movie_night", "{\"room\":\"living\"}", 3},
        {"scene.good_morning", "{\"room\":\"bedroom\"}", 2},
        {"scene.bedtime", "{\"room\":\"bedroom\"}", 3},
        {"mode.away", "{}", 9},
        {"mode.arrive_home", "{}", 2},
        {"door.unlock", "{\"room\":\"hallway\"}", 1},
        {"lights.on", "{\"room\":\"kitchen\"}", 1},
        {"lights.off", "{\"room\":\"living\"}", 2},
        {"lights.dim", "{\"room\":\"bedroom\",\"level\":20}", 1},
        {"climate.set", "{\"room\":\"living\",\"temperature\":22}", 0},
        {"mode.quiet", "{\"room\":\"living\"}", 1},
        {"scene.welcome_guest", "{}", 2},
        {"lights.reading", "{\"room\":\"living\"}", 1},
};

#define NEXPECTED ((int)(sizeof(expected) / sizeof(expected[0])))

static void
test_every_recipe_present(void **state)
{
	struct lib *l = *state;

	assert_true(hearth_recipe_book_count(l->book) >= 10);
	assert_int_equal(hearth_recipe_book_count(l->book), NEXPECTED);
	for (int i = 0; i < NEXPECTED; i++) {
		const struct hearth_recipe *r = hearth_recipe_book_find(l->book, expected[i].id);

		if (!r)
			fail_msg("%s is not in the library", expected[i].id);
		assert_string_equal(r->id, expected[i].id);
		assert_non_null(r->title);
		assert_true(r->nsentences >= 3 && r->nsentences <= 6);
		for (int k = 0; k < r->nsentences; k++) {
			char why[160];

			if (hearth_recipe_check_sentence(r, r->sentences[k], why, sizeof(why)))
				fail_msg("%s: sentences[%d]: %s", r->id, k, why);
		}
	}
}

/* The door is the one high-risk recipe: it always asks. Nothing else does. */
static void
test_approvals(void **state)
{
	struct lib *l = *state;

	for (int i = 0; i < hearth_recipe_book_count(l->book); i++) {
		const struct hearth_recipe *r = hearth_recipe_book_at(l->book, i);
		bool unlocks = false;

		for (int k = 0; k < r->nsteps; k++) {
			const cJSON *v = cJSON_GetObjectItem(r->steps[k].args, "locked");

			if (cJSON_IsFalse(v))
				unlocks = true;
		}
		if (unlocks != (r->approval == HEARTH_APPROVAL_ALWAYS))
			fail_msg("%s: unlocks=%d approval=%s", r->id, unlocks,
			         hearth_recipe_approval_name(r->approval));
	}
	assert_int_equal(hearth_recipe_book_find(l->book, "door.unlock")->approval,
	                 HEARTH_APPROVAL_ALWAYS);
}

/* An args value with a "{slot}" resolved: the given slot value, else the default. */
static const cJSON *
resolve(const cJSON *v, const cJSON *slots, const struct hearth_recipe *r)
{
	size_t n;
	char name[HEARTH_SLOT_NAME_MAX + 1];
	const cJSON *s;

	if (!cJSON_IsString(v))
		return v;
	n = strlen(v->valuestring);
	if (n < 3 || v->valuestring[0] != '{' || v->valuestring[n - 1] != '}')
		return v;
	snprintf(name, sizeof(name), "%.*s", (int)(n - 2), v->valuestring + 1);
	s = cJSON_GetObjectItem(slots, name);
	if (!s)
		s = hearth_recipe_slot(r, name)->def;
	return s;
}

static bool
has_cap(const cJSON *dev, const char *cap)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, cJSON_GetObjectItem(dev, "capabilities"))
	{
		if (cJSON_IsString(c) && !strcmp(c->valuestring, cap))
			return true;
	}
	return false;
}

static void
test_binds_on_demo_home(void **state)
{
	struct lib *l = *state;
	const cJSON *devices = cJSON_GetObjectItem(l->home, "devices");

	for (int i = 0; i < NEXPECTED; i++) {
		const struct hearth_recipe *r = hearth_recipe_book_find(l->book, expected[i].id);
		cJSON *slots = cJSON_Parse(expected[i].slots);
		int bound = 0;

		assert_non_null(r);
		assert_non_null(slots);
		for (int k = 0; k < r->nsteps; k++) {
			const struct hearth_recipe_step *st = &r->steps[k];
			const char *cap = hearth_capability_at(st->cap)->name;
			const char *room = st->room;
			const cJSON *d, *a;

			if (room && room[0] == '{') {
				const cJSON *v;
				char name[HEARTH_SLOT_NAME_MAX + 1];

				snprintf(name, sizeof(name), "%.*s", (int)(strlen(room) - 2),
				         room + 1);
				v = cJSON_GetObjectItem(slots, name);
				room = cJSON_IsString(v) ? v->valuestring : NULL;
			}
			/* Every args value resolves to one the capability accepts. */
			cJSON_ArrayForEach(a, st->args)
			{
				const cJSON *v = resolve(a, slots, r);
				char why[128];

				assert_non_null(v);
				if (hearth_capability_check_value(a->string, v, why, sizeof(why)))
					fail_msg("%s: steps[%d].args.%s: %s", r->id, k, a->string,
					         why);
			}
			cJSON_ArrayForEach(d, devices)
			{
				const char *droom =
				        cJSON_GetStringValue(cJSON_GetObjectItem(d, "room"));
				const char *dkind =
				        cJSON_GetStringValue(cJSON_GetObjectItem(d, "kind"));

				if (!has_cap(d, cap) || (room && (!droom || strcmp(room, droom))) ||
				    (st->kind && (!dkind || strcmp(st->kind, dkind))))
					continue;
				bound++;
			}
		}
		if (bound < expected[i].min_devices)
			fail_msg("%s binds %d device steps in the demo home, want at least %d",
			         r->id, bound, expected[i].min_devices);
		cJSON_Delete(slots);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_every_recipe_present),
	        cmocka_unit_test(test_approvals),
	        cmocka_unit_test(test_binds_on_demo_home),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, setup, teardown);
}
