/*
 * test_flags.c - derived flags: the built-in defaults, each condition kind
 * (all, any, not, flag, device is / lt / gt, time windows, including windows
 * that wrap midnight), room flags, user flags over built-ins and each other,
 * load errors that name the place in the input (unknown keys, unknown flags,
 * cycles, reserved names), the set of changes each evaluation returns, held
 * inputs, and failing allocations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "agents/context/flags.h"
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/json.h"

static cJSON *
parse(const char *text)
{
	cJSON *j = NULL;
	char why[128];

	if (hearth_json_parse(text, strlen(text), &j, why, sizeof(why)))
		fail_msg("test JSON does not parse: %s: %s", why, text);
	return j;
}

/* A set loaded from text (NULL: defaults), which must load. */
static hearth_flags *
load(const char *text)
{
	cJSON *defs = text ? parse(text) : NULL;
	hearth_flags *f = NULL;
	char why[256];
	int err = hearth_flags_load(defs, "hearth.json", &f, why, sizeof(why));

	cJSON_Delete(defs);
	if (err)
		fail_msg("load failed (%d): %s", err, why);
	return f;
}

/* The error loading text gives, with its message in why. */
static int
load_err(const char *text, char *why, size_t len)
{
	cJSON *defs = parse(text);
	hearth_flags *f = NULL;
	int err = hearth_flags_load(defs, "hearth.json", &f, why, len);

	cJSON_Delete(defs);
	assert_null(f);
	return err;
}

/* A fake registry: device "t-1" temperature, "tv" on, "door" locked. */
struct home {
	cJSON *state;     /* {"t-1": {"temperature": 21}, ...} */
	const char *held; /* device whose values are held, or NULL */
};

static enum hearth_flag_input
lookup(void *ud, const char *device, const char *property, const cJSON **value)
{
	struct home *h = ud;
	const cJSON *dev = cJSON_GetObjectItemCaseSensitive(h->state, device);

	if (h->held && !strcmp(h->held, device))
		return HEARTH_FLAG_INPUT_HOLD;
	*value = dev ? cJSON_GetObjectItemCaseSensitive(dev, property) : NULL;
	return *value ? HEARTH_FLAG_INPUT_OK : HEARTH_FLAG_INPUT_NONE;
}

static int
eval_at(hearth_flags *f, int minute, const struct hearth_flag_room *rooms, int nrooms,
        struct home *h, struct hearth_flag_change *ch)
{
	struct hearth_flag_inputs in = {
	        .minute = minute,
	        .weekday = 1,
	        .rooms = rooms,
	        .nrooms = nrooms,
	        .lookup = h ? lookup : NULL,
	        .ud = h,
	};

	return hearth_flags_eval(f, &in, ch, HEARTH_FLAGS_MAX);
}

static bool
changed(const struct hearth_flag_change *ch, int n, const char *name, bool value)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(ch[i].name, name))
			return ch[i].value == value;
	return false;
}

static bool
in_changes(const struct hearth_flag_change *ch, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(ch[i].name, name))
			return true;
	return false;
}

#define HM(h, m) ((h)*60 + (m))

static void
test_defaults(void **state)
{
	struct hearth_flag_change ch[HEARTH_FLAGS_MAX];
	struct hearth_flag_room living = {"living", true};
	struct hearth_flag_info info;
	hearth_flags *f = load(NULL);
	int n;

	(void)state;
	assert_int_equal(hearth_flags_count(f), 4);
	assert_int_equal(hearth_flags_at(f, 0, &info), 0);
	assert_true(info.builtin);
	assert_false(info.known);
	/* first evaluation: every flag, at noon, nobody anywhere */
	n = eval_at(f, HM(12, 0), NULL, 0, NULL, ch);
	assert_int_equal(n, 4);
	assert_true(changed(ch, n, "night", false));
	assert_true(changed(ch, n, "quiet_hours", false));
	assert_true(changed(ch, n, "someone_home", false));
	assert_true(changed(ch, n, "away", true));
	/* nothing changed: nothing reported */
	assert_int_equal(eval_at(f, HM(12, 1), NULL, 0, NULL, ch), 0);
	/* someone in the living room: the room flag, someone_home and away */
	n = eval_at(f, HM(12, 2), &living, 1, NULL, ch);
	assert_int_equal(n, 3);
	assert_true(changed(ch, n, "room.living.occupied", true));
	assert_true(changed(ch, n, "someone_home", true));
	assert_true(changed(ch, n, "away", false));
	assert_int_equal(hearth_flags_get(f, "room.living.occupied"), 1);
	assert_int_equal(hearth_flags_get(f, "room.Living.occupied"), 1);
	assert_int_equal(hearth_flags_get(f, "room.attic.occupied"), 0);
	assert_int_equal(hearth_flags_get(f, "nope"), HEARTH_E_NOT_FOUND);
	/* 22:00 is night and quiet hours; 06:00 ends night, 07:00 quiet hours */
	n = eval_at(f, HM(22, 0), &living, 1, NULL, ch);
	assert_int_equal(n, 2);
	assert_true(changed(ch, n, "night", true));
	assert_true(changed(ch, n, "quiet_hours", true));
	n = eval_at(f, HM(5, 59), &living, 1, NULL, ch);
	assert_int_equal(n, 0);
	n = eval_at(f, HM(6, 0), &living, 1, NULL, ch);
	assert_int_equal(n, 1);
	assert_true(changed(ch, n, "night", false));
	n = eval_at(f, HM(7, 0), &living, 1, NULL, ch);
	assert_int_equal(n, 1);
	assert_true(changed(ch, n, "quiet_hours", false));
	/* the room goes quiet, then is no longer reported: stays false */
	living.occupied = false;
	n = eval_at(f, HM(8, 0), &living, 1, NULL, ch);
	assert_int_equal(n, 3);
	assert_true(changed(ch, n, "away", true));
	assert_int_equal(eval_at(f, HM(8, 1), NULL, 0, NULL, ch), 0);
	hearth_flags_free(f);
}

static void
test_time_windows(void **state)
{
	struct hearth_flag_change ch[HEARTH_FLAGS_MAX];
	hearth_flags *f = load("[{\"name\": \"late\", \"when\": {\"time\": {\"from\": \"23:30\", "
	                       "\"to\": \"00:15\"}}},"
	                       " {\"name\": \"lunch\", \"when\": {\"time\": {\"from\": \"12:00\", "
	                       "\"to\": \"13:00\"}}}]");
	static const struct {
		int minute;
		bool late, lunch;
	} cases[] = {
	        {HM(23, 29), false, false}, {HM(23, 30), true, false}, {HM(23, 59), true, false},
	        {HM(0, 0), true, false},    {HM(0, 14), true, false},  {HM(0, 15), false, false},
	        {HM(11, 59), false, false}, {HM(12, 0), false, true},  {HM(12, 59), false, true},
	        {HM(13, 0), false, false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		eval_at(f, cases[i].minute, NULL, 0, NULL, ch);
		assert_int_equal(hearth_flags_get(f, "late"), cases[i].late);
		assert_int_equal(hearth_flags_get(f, "lunch"), cases[i].lunch);
	}
	hearth_flags_free(f);
}

static void
test_conditions(void **state)
{
	struct hearth_flag_change ch[HEARTH_FLAGS_MAX];
	struct home h = {.state = parse("{\"t-1\": {\"temperature\": 18.5}, \"tv\": {\"on\": true, "
	                                "\"input\": \"hdmi1\"}}")};
	hearth_flags *f = load(
	        "[{\"name\": \"cold\", \"when\": {\"device\": \"t-1\", \"property\": "
	        "\"temperature\", \"lt\": 19}},"
	        " {\"name\": \"mild\", \"when\": {\"device\": \"t-1\", \"property\": "
	        "\"temperature\", \"gt\": 18, \"lt\": 24}},"
	        " {\"name\": \"tv_on\", \"when\": {\"device\": \"tv\", \"property\": \"on\", "
	        "\"is\": true}},"
	        " {\"name\": \"console\", \"when\": {\"device\": \"tv\", \"property\": \"input\", "
	        "\"is\": \"hdmi2\"}},"
	        " {\"name\": \"tv_cold\", \"when\": {\"all\": [{\"flag\": \"tv_on\", \"is\": "
	        "true}, "
	        "{\"flag\": \"cold\", \"is\": true}]}},"
	        " {\"name\": \"either\", \"when\": {\"any\": [{\"flag\": \"console\", \"is\": "
	        "true}, "
	        "{\"not\": {\"flag\": \"tv_on\", \"is\": true}}]}},"
	        " {\"name\": \"ghost\", \"when\": {\"device\": \"none\", \"property\": \"x\", "
	        "\"lt\": 1}},"
	        " {\"name\": \"not_num\", \"when\": {\"device\": \"tv\", \"property\": \"on\", "
	        "\"gt\": 0}},"
	        " {\"name\": \"kitchen_busy\", \"when\": {\"flag\": \"room.Kitchen.occupied\", "
	        "\"is\": true}}]");
	struct hearth_flag_room kitchen = {"kitchen", true};
	int n;

	(void)state;
	n = eval_at(f, HM(12, 0), NULL, 0, &h, ch);
	assert_int_equal(hearth_flags_get(f, "cold"), 1);
	assert_int_equal(hearth_flags_get(f, "mild"), 1);
	assert_int_equal(hearth_flags_get(f, "tv_on"), 1);
	assert_int_equal(hearth_flags_get(f, "console"), 0);
	assert_int_equal(hearth_flags_get(f, "tv_cold"), 1);
	assert_int_equal(hearth_flags_get(f, "either"), 0);
	assert_int_equal(hearth_flags_get(f, "ghost"), 0);
	assert_int_equal(hearth_flags_get(f, "not_num"), 0);
	assert_int_equal(hearth_flags_get(f, "kitchen_busy"), 0);
	/* 9 user flags, 4 built-ins, the kitchen's room flag named in a condition */
	assert_int_equal(n, 14);

	/* warmer, TV switched to the console */
	cJSON_SetNumberValue(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(h.state, "t-1"), "temperature"), 24);
	cJSON_SetValuestring(cJSON_GetObjectItem(cJSON_GetObjectItem(h.state, "tv"), "input"),
	                     "hdmi2");
	n = eval_at(f, HM(12, 1), &kitchen, 1, &h, ch);
	assert_true(changed(ch, n, "cold", false));
	assert_true(changed(ch, n, "mild", false)); /* lt is exclusive */
	assert_true(changed(ch, n, "console", true));
	assert_true(changed(ch, n, "tv_cold", false));
	assert_true(changed(ch, n, "either", true));
	assert_true(changed(ch, n, "room.kitchen.occupied", true));
	assert_true(changed(ch, n, "kitchen_busy", true));
	assert_true(changed(ch, n, "someone_home", true));
	assert_true(changed(ch, n, "away", false));
	assert_int_equal(n, 9);
	assert_false(in_changes(ch, n, "tv_on"));

	/* a held device keeps what depends on it (tv_on, console, not_num); flags
	 * reading those see their kept values */
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h.state, "tv"), "on", cJSON_CreateFalse());
	h.held = "tv";
	n = eval_at(f, HM(12, 2), &kitchen, 1, &h, ch);
	assert_int_equal(n, 0);
	assert_int_equal(hearth_flags_get(f, "tv_on"), 1);
	{
		struct hearth_flag_info info;
		bool seen = false;

		for (int i = 0; !hearth_flags_at(f, i, &info); i++)
			if (!strcmp(info.name, "tv_on")) {
				assert_true(info.held);
				seen = true;
			}
		assert_true(seen);
		cJSON *j = hearth_flags_json(f);

		assert_non_null(j);
		assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "held")), 3);
		assert_true(cJSON_IsTrue(
		        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "flags"), "tv_on")));
		cJSON_Delete(j);
	}
	h.held = NULL;
	n = eval_at(f, HM(12, 3), &kitchen, 1, &h, ch);
	assert_true(changed(ch, n, "tv_on", false));
	cJSON_Delete(h.state);
	hearth_flags_free(f);
}

static void
test_user_overrides_builtin(void **state)
{
	struct hearth_flag_change ch[HEARTH_FLAGS_MAX];
	struct hearth_flag_room rooms[] = {{"garage", true}, {"living", false}};
	/* defined out of order: away_late reads night before night's definition */
	hearth_flags *f =
	        load("[{\"name\": \"away_late\", \"when\": {\"all\": [{\"flag\": \"away\", \"is\": "
	             "true}, "
	             "{\"flag\": \"night\", \"is\": true}]}},"
	             " {\"name\": \"night\", \"when\": {\"time\": {\"from\": \"23:00\", \"to\": "
	             "\"05:00\"}}},"
	             " {\"name\": \"someone_home\", \"when\": {\"flag\": \"room.living.occupied\", "
	             "\"is\": true}}]");
	struct hearth_flag_info info;
	int n;

	(void)state;
	/* garage occupancy no longer counts: someone_home only looks at the living room */
	n = eval_at(f, HM(22, 30), rooms, 2, NULL, ch);
	assert_int_equal(hearth_flags_get(f, "night"), 0);
	assert_int_equal(hearth_flags_get(f, "someone_home"), 0);
	assert_int_equal(hearth_flags_get(f, "away"), 1);
	assert_int_equal(hearth_flags_get(f, "away_late"), 0);
	assert_int_equal(hearth_flags_get(f, "quiet_hours"), 1);
	assert_int_equal(n, 2 + 5);
	n = eval_at(f, HM(23, 0), rooms, 2, NULL, ch);
	assert_int_equal(n, 2);
	assert_true(changed(ch, n, "night", true));
	assert_true(changed(ch, n, "away_late", true));
	/* evaluation order puts dependencies first */
	for (int i = 0, seen_night = 0; !hearth_flags_at(f, i, &info); i++) {
		if (!strcmp(info.name, "night"))
			seen_night = 1;
		if (!strcmp(info.name, "away_late"))
			assert_true(seen_night);
		if (!strcmp(info.name, "night") || !strcmp(info.name, "someone_home"))
			assert_false(info.builtin);
		if (!strcmp(info.name, "quiet_hours"))
			assert_true(info.builtin);
	}
	hearth_flags_free(f);
}

static void
test_errors(void **state)
{
	static const struct {
		const char *defs;
		int err;
		const char *why;
	} cases[] = {
	        {"{}", HEARTH_E_INVALID,
	         "hearth.json: flags: expected an array of flag definitions, got object"},
	        {"[1]", HEARTH_E_INVALID, "hearth.json: flags[0]: expected a flag object"},
	        {"[{\"name\": \"a\"}]", HEARTH_E_INVALID,
	         "hearth.json: flags[0]: missing \"when\""},
	        {"[{\"when\": {\"flag\": \"night\", \"is\": true}}]", HEARTH_E_INVALID,
	         "hearth.json: flags[0]: missing \"name\""},
	        {"[{\"name\": \"a b\", \"when\": {\"flag\": \"night\", \"is\": true}}]",
	         HEARTH_E_INVALID, "hearth.json: flags[0].name: \"a b\" is not a flag name"},
	        {"[{\"name\": \"room.x.occupied\", \"when\": {\"flag\": \"night\", \"is\": true}}]",
	         HEARTH_E_INVALID,
	         "hearth.json: flags[0].name: \"room.x.occupied\": names starting"},
	        {"[{\"name\": \"a\", \"when\": {\"flag\": \"night\", \"is\": true}, \"x\": 1}]",
	         HEARTH_E_INVALID, "hearth.json: flags[0].x: unknown key"},
	        {"[{\"name\": \"a\", \"when\": {\"flag\": \"night\", \"is\": true}},"
	         " {\"name\": \"a\", \"when\": {\"flag\": \"night\", \"is\": false}}]",
	         HEARTH_E_INVALID,
	         "hearth.json: flags[1].name: \"a\" is also the name of flags[0]"},
	        {"[{\"name\": \"a\", \"when\": {\"flag\": \"night\", \"is\": true}},"
	         " {\"name\": \"b\", \"when\": {\"all\": [{\"device\": \"bad id\", \"property\": "
	         "\"on\", \"is\": true}]}}]",
	         HEARTH_E_INVALID,
	         "hearth.json: flags[1].when.all[0].device: \"bad id\" is not an id"},
	        {"[{\"name\": \"a\", \"when\": {\"any\": []}}]", HEARTH_E_INVALID,
	         "hearth.json: flags[0].when.any: needs at least one condition"},
	        {"[{\"name\": \"a\", \"when\": {\"time\": {\"from\": \"25:00\", \"to\": "
	         "\"06:00\"}}}]",
	         HEARTH_E_INVALID, "hearth.json: flags[0].when.time.from: expected a time"},
	        {"[{\"name\": \"a\", \"when\": {\"weekday\": 1}}]", HEARTH_E_INVALID,
	         "hearth.json: flags[0].when: expected one of"},
	        {"[{\"name\": \"a\", \"when\": {\"not\": {\"any\": [{\"flag\": \"night\", \"is\": "
	         "true}, {\"flag\": \"nope\", \"is\": true}]}}}]",
	         HEARTH_E_INVALID,
	         "hearth.json: flags[0].when.not.any[1].flag: unknown flag \"nope\""},
	        {"[{\"name\": \"a\", \"when\": {\"flag\": \"a\", \"is\": true}}]", HEARTH_E_INVALID,
	         "hearth.json: flags[0].when: flag \"a\" depends on itself: a -> a"},
	        {"[{\"name\": \"a\", \"when\": {\"flag\": \"b\", \"is\": true}},"
	         " {\"name\": \"b\", \"when\": {\"not\": {\"flag\": \"c\", \"is\": true}}},"
	         " {\"name\": \"c\", \"when\": {\"flag\": \"a\", \"is\": false}}]",
	         HEARTH_E_INVALID,
	         "hearth.json: flags[0].when: flag \"a\" depends on itself: a -> b -> c -> a"},
	        /* a cycle through a built-in's default */
	        {"[{\"name\": \"someone_home\", \"when\": {\"flag\": \"away\", \"is\": false}}]",
	         HEARTH_E_INVALID,
	         "hearth.json: flags[0].when: flag \"someone_home\" depends on itself: "
	         "someone_home -> away -> someone_home"},
	};
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int err = load_err(cases[i].defs, why, sizeof(why));

		if (err != cases[i].err || strncmp(why, cases[i].why, strlen(cases[i].why)))
			fail_msg("case %zu: got %d \"%s\", want %d \"%s...\"", i, err, why,
			         cases[i].err, cases[i].why);
	}
}

static void
test_bounds(void **state)
{
	char why[256];
	cJSON *defs = cJSON_CreateArray(), *d;
	hearth_flags *f = NULL;
	char name[32];
	int err;

	(void)state;
	for (int i = 0; i <= HEARTH_FLAGS_DEFINED_MAX; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		d = parse("{\"when\": {\"flag\": \"night\", \"is\": true}}");
		cJSON_AddStringToObject(d, "name", name);
		cJSON_AddItemToArray(defs, d);
	}
	err = hearth_flags_load(defs, "hearth.json", &f, why, sizeof(why));
	assert_int_equal(err, HEARTH_E_TOO_LARGE);
	assert_string_equal(why, "hearth.json: flags: 65 flags, at most 64 are allowed");
	cJSON_Delete(defs);

	/* rooms beyond the bound are left out and counted */
	f = load(NULL);
	{
		struct hearth_flag_room rooms[HEARTH_FLAGS_ROOMS_MAX + 3];
		char names[HEARTH_FLAGS_ROOMS_MAX + 3][16];
		struct hearth_flag_change ch[HEARTH_FLAGS_MAX];
		cJSON *j;

		for (int i = 0; i < HEARTH_FLAGS_ROOMS_MAX + 3; i++) {
			snprintf(names[i], sizeof(names[i]), "r%d", i);
			rooms[i].room = names[i];
			rooms[i].occupied = true;
		}
		err = eval_at(f, 0, rooms, HEARTH_FLAGS_ROOMS_MAX + 3, NULL, ch);
		assert_int_equal(err, HEARTH_FLAGS_ROOMS_MAX + 4);
		j = hearth_flags_json(f);
		assert_int_equal(cJSON_GetObjectItem(j, "rooms_dropped")->valueint, 3);
		cJSON_Delete(j);
	}
	hearth_flags_free(f);
}

static void
test_alloc_failures(void **state)
{
	const char *text = "[{\"name\": \"a\", \"when\": {\"all\": [{\"device\": \"t-1\", "
	                   "\"property\": \"temperature\", \"lt\": 19}, {\"flag\": "
	                   "\"room.hall.occupied\", \"is\": true}]}}]";
	cJSON *defs = parse(text);
	bool ok = false;

	(void)state;
	for (long n = 0; n < 200 && !ok; n++) {
		hearth_flags *f = NULL;
		char why[256];
		int err;

		hearth_alloc_fail_after(n);
		err = hearth_flags_load(defs, "hearth.json", &f, why, sizeof(why));
		hearth_alloc_fail_after(-1);
		if (!err) {
			ok = true;
			hearth_flags_free(f);
		} else {
			assert_null(f);
		}
	}
	assert_true(ok);
	cJSON_Delete(defs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_time_windows),
	        cmocka_unit_test(test_conditions),
	        cmocka_unit_test(test_user_overrides_builtin),
	        cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_bounds),
	        cmocka_unit_test(test_alloc_failures),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
