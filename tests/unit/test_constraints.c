/*
 * test_constraints.c - constraint memory: validation errors that name the
 * exact place in the input, storing and replacing rule sets (from a cJSON
 * array and from a file) across flush and reopen, adding and removing one
 * rule, the policy hash (defined for the empty set, the same whatever the
 * order of rules and keys, different when a rule changes) and failing
 * allocations. Every test works in its own mkdtemp directory, removed at the
 * end.
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

#include "memory/constraints.h"
#include "memory/store.h"
#include "platform/alloc.h"
#include "platform/crypto.h"
#include "platform/err.h"
#include "platform/json.h"
#include "tests/unit/support/tmpstore.h"

static cJSON *
parse(const char *text)
{
	cJSON *j = NULL;
	char why[128];

	if (hearth_json_parse(text, strlen(text), &j, why, sizeof(why)))
		fail_msg("test JSON does not parse: %s: %s", why, text);
	return j;
}

#define RULE_AWAY                                                                                  \
	"{\"id\":\"no_unlock_when_away\",\"when\":{\"all\":[{\"flag\":\"someone_home\","           \
	"\"is\":false},{\"time\":{\"from\":\"22:00\",\"to\":\"06:00\"}},{\"device\":"              \
	"\"door-1\",\"property\":\"locked\",\"is\":true}]},\"forbid\":{\"capability\":"            \
	"\"lock.lock\",\"args\":{\"locked\":false}},\"approval_lifts\":true,\"reason\":"           \
	"\"never unlock while nobody is home\"}"
/* The same rule with its keys in another order. */
#define RULE_AWAY_SHUFFLED                                                                         \
	"{\"reason\":\"never unlock while nobody is home\",\"approval_lifts\":true,"               \
	"\"forbid\":{\"args\":{\"locked\":false},\"capability\":\"lock.lock\"},\"when\":{\"all\":" \
	"[{\"is\":false,\"flag\":\"someone_home\"},{\"time\":{\"to\":\"06:00\",\"from\":"          \
	"\"22:00\"}},{\"is\":true,\"property\":\"locked\",\"device\":\"door-1\"}]},"               \
	"\"id\":\"no_unlock_when_away\"}"
#define RULE_HEAT                                                                                  \
	"{\"id\":\"heat_cap\",\"cap\":{\"capability\":\"climate.setpoint\",\"property\":"          \
	"\"setpoint\",\"max\":24},\"reason\":\"keep the heating bill sane\"}"
#define RULE_HEAT_25                                                                               \
	"{\"id\":\"heat_cap\",\"cap\":{\"capability\":\"climate.setpoint\",\"property\":"          \
	"\"setpoint\",\"max\":25},\"reason\":\"keep the heating bill sane\"}"
#define RULE_QUIET                                                                                 \
	"{\"id\":\"quiet\",\"when\":{\"any\":[{\"flag\":\"quiet_hours\",\"is\":true},{\"not\":"    \
	"{\"device\":\"tv-1\",\"property\":\"volume\",\"lt\":10,\"gt\":-1}}]},\"cap\":"            \
	"{\"capability\":\"media.volume\",\"property\":\"volume\",\"device\":\"tv-1\","            \
	"\"min\":0,\"max\":20},\"reason\":\"quiet at night\"}"

/* ==== Tests ==== */

static void
test_store_and_reopen(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = tmpstore_open(t);
	cJSON *set = parse("[" RULE_HEAT "," RULE_AWAY "," RULE_QUIET "]"), *got = NULL;
	char why[256], hash[65], hash2[65], *text;

	assert_int_equal(hearth_constraints_replace(st, set, "test", why, sizeof(why)), 0);
	assert_int_equal(hearth_store_pending(st), 1); /* one op for the whole set */
	tmpstore_flush(st);
	hearth_store_close(st);

	st = tmpstore_open(t);
	assert_int_equal(hearth_constraints_get(st, &got, hash), 0);
	assert_int_equal(cJSON_GetArraySize(got), 3);
	/* In id order, in canonical form. */
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(got, 0), "id")->valuestring,
	                    "heat_cap");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(got, 1), "id")->valuestring,
	                    "no_unlock_when_away");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(got, 2), "id")->valuestring,
	                    "quiet");
	text = hearth_json_print(cJSON_GetArrayItem(got, 0));
	assert_string_equal(text, "{\"cap\":{\"capability\":\"climate.setpoint\",\"max\":24,"
	                          "\"property\":\"setpoint\"},\"id\":\"heat_cap\",\"reason\":"
	                          "\"keep the heating bill sane\"}");
	hearth_free(text);
	/* The rules handed out equal the ones loaded. */
	assert_true(cJSON_Compare(cJSON_GetArrayItem(got, 1), cJSON_GetArrayItem(set, 1), true));
	/* Both hashes agree: stored and in memory. */
	assert_int_equal(hearth_constraints_hash_of(set, hash2), 0);
	assert_string_equal(hash, hash2);
	assert_int_equal(hearth_constraints_policy_hash(st, hash2), 0);
	assert_string_equal(hash, hash2);
	cJSON_Delete(got);
	cJSON_Delete(set);
	hearth_store_close(st);
}

static void
test_policy_hash(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = tmpstore_open(t);
	uint8_t md[HEARTH_SHA256_LEN];
	char why[256], empty[65], h1[65], h2[65], h3[65];
	cJSON *a = parse("[" RULE_AWAY "," RULE_HEAT "," RULE_QUIET "]");
	cJSON *b = parse("[" RULE_QUIET "," RULE_AWAY_SHUFFLED "," RULE_HEAT "]");
	cJSON *c = parse("[" RULE_QUIET "," RULE_AWAY "," RULE_HEAT_25 "]");
	cJSON *none = parse("[]"), *rule;

	/* The empty set: SHA-256 of "[]". */
	assert_int_equal(hearth_constraints_policy_hash(st, empty), 0);
	assert_string_equal(empty, HEARTH_POLICY_HASH_EMPTY);
	assert_int_equal(hearth_sha256("[]", 2, md), 0);
	hearth_hex_encode(md, sizeof(md), h1);
	assert_string_equal(empty, h1);

	/* The same rules in another order, keys shuffled: the same hash. */
	assert_int_equal(hearth_constraints_hash_of(a, h1), 0);
	assert_int_equal(hearth_constraints_hash_of(b, h2), 0);
	assert_string_equal(h1, h2);
	assert_int_equal(hearth_constraints_replace(st, b, "b", why, sizeof(why)), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_constraints_policy_hash(st, h3), 0);
	assert_string_equal(h1, h3);

	/* Added one by one, in yet another order: the same hash. */
	assert_int_equal(hearth_constraints_replace(st, none, "none", why, sizeof(why)), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_constraints_policy_hash(st, h3), 0);
	assert_string_equal(h3, HEARTH_POLICY_HASH_EMPTY);
	for (int i = 2; i >= 0; i--) {
		rule = cJSON_GetArrayItem(a, i);
		assert_int_equal(hearth_constraints_add(st, rule, "cli", why, sizeof(why)), 0);
		tmpstore_flush(st);
	}
	assert_int_equal(hearth_constraints_policy_hash(st, h3), 0);
	assert_string_equal(h1, h3);

	/* One number changes: the hash changes; adding it under the same id replaces. */
	assert_int_equal(hearth_constraints_hash_of(c, h2), 0);
	assert_string_not_equal(h1, h2);
	rule = parse(RULE_HEAT_25);
	assert_int_equal(hearth_constraints_add(st, rule, "cli", why, sizeof(why)), 0);
	tmpstore_flush(st);
	cJSON_Delete(rule);
	assert_int_equal(hearth_constraints_policy_hash(st, h3), 0);
	assert_string_equal(h2, h3);

	/* Removing a rule changes it; removing one that is not there does nothing. */
	assert_int_equal(hearth_constraints_remove(st, "quiet"), 0);
	assert_int_equal(hearth_constraints_remove(st, "not_there"), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_constraints_policy_hash(st, h3), 0);
	assert_string_not_equal(h2, h3);
	assert_int_equal(hearth_constraints_remove(st, "bad/id"), HEARTH_E_INVALID);

	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(c);
	cJSON_Delete(none);
	hearth_store_close(st);
}

static void
test_replace_is_whole(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = tmpstore_open(t);
	cJSON *ab = parse("[" RULE_AWAY "," RULE_HEAT "]"), *q = parse("[" RULE_QUIET "]");
	cJSON *bad = parse("[" RULE_QUIET ",{\"id\":\"x\"}]"), *got;
	char why[256];

	assert_int_equal(hearth_constraints_replace(st, ab, "ab", why, sizeof(why)), 0);
	tmpstore_flush(st);
	/* A replacement and an addition queued in one turn apply in order. */
	assert_int_equal(hearth_constraints_replace(st, q, "q", why, sizeof(why)), 0);
	assert_int_equal(
	        hearth_constraints_add(st, cJSON_GetArrayItem(ab, 1), "cli", why, sizeof(why)), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_constraints_get(st, &got, NULL), 0);
	assert_int_equal(cJSON_GetArraySize(got), 2);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(got, 0), "id")->valuestring,
	                    "heat_cap");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(got, 1), "id")->valuestring,
	                    "quiet");
	cJSON_Delete(got);

	/* An invalid set is refused whole: nothing queued, the stored set stays. */
	assert_int_equal(hearth_constraints_replace(st, bad, "bad.json", why, sizeof(why)),
	                 HEARTH_E_INVALID);
	assert_string_equal(why, "bad.json: rules[1]: missing \"reason\"");
	assert_int_equal(hearth_store_pending(st), 0);
	assert_int_equal(hearth_constraints_get(st, &got, NULL), 0);
	assert_int_equal(cJSON_GetArraySize(got), 2);
	cJSON_Delete(got);
	cJSON_Delete(ab);
	cJSON_Delete(q);
	cJSON_Delete(bad);
	hearth_store_close(st);
}

/* One invalid input and the message it must give. */
struct bad_case {
	const char *json;
	const char *why;
};

static void
test_validation_errors(void **state)
{
	static const struct bad_case sets[] = {
	        {"{\"rules\":[]}", "src: rules: expected an array of rules, got object"},
	        {"[" RULE_HEAT "," RULE_QUIET ","
	         "{\"id\":\"r3\",\"when\":{\"all\":[{\"flag\":3,\"is\":true}]},\"forbid\":"
	         "{\"capability\":\"lock.lock\"},\"reason\":\"r\"}]",
	         "src: rules[2].when.all[0].flag: expected a string, got number"},
	        {"[{\"reason\":\"r\",\"forbid\":{\"capability\":\"x\"}}]",
	         "src: rules[0]: missing \"id\""},
	        {"[{\"id\":\"a b\",\"reason\":\"r\",\"forbid\":{\"capability\":\"x\"}}]",
	         "src: rules[0].id: \"a b\" is not an id (1 to 64 characters of A-Z a-z 0-9 _ . "
	         "-)"},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"forbidd\":{\"capability\":\"x\"}}]",
	         "src: rules[0].forbidd: unknown key (expected one of: id, when, forbid, cap, "
	         "risk, approval_lifts, reason)"},
	        {"[{\"id\":\"a\",\"reason\":\"r\"}]",
	         "src: rules[0]: needs exactly one of \"forbid\", \"cap\" or \"risk\""},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"forbid\":{\"capability\":\"x\"},"
	         "\"cap\":{\"capability\":\"x\",\"property\":\"p\",\"max\":1}}]",
	         "src: rules[0]: needs exactly one of \"forbid\", \"cap\" or \"risk\""},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"risk\":{\"capability\":\"x\",\"level\":"
	         "\"severe\"}}]",
	         "src: rules[0].risk.level: expected \"low\", \"medium\" or \"high\""},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"risk\":{\"level\":\"high\",\"room\":"
	         "\"x\"}}]",
	         "src: rules[0].risk.room: unknown key (expected one of: capability, device, args, "
	         "level)"},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"approval_lifts\":true,\"risk\":{"
	         "\"capability\":\"x\",\"level\":\"high\"}}]",
	         "src: rules[0]: \"approval_lifts\" goes with \"forbid\" or \"cap\", not with "
	         "\"risk\""},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"when\":{\"time\":{\"from\":\"22:00\","
	         "\"to\":\"6:00\"}},\"forbid\":{\"capability\":\"x\"}}]",
	         "src: rules[0].when.time.to: expected a time \"HH:MM\" (00:00 to 23:59)"},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"when\":{\"time\":{\"from\":\"22:00\","
	         "\"to\":\"22:00\"}},\"forbid\":{\"capability\":\"x\"}}]",
	         "src: rules[0].when.time: \"from\" and \"to\" are the same time: the window "
	         "would be empty"},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"when\":{\"any\":[{\"flag\":\"f\",\"is\":true},"
	         "{\"device\":\"d\",\"property\":\"p\",\"is\":1,\"lt\":3}]},"
	         "\"forbid\":{\"capability\":\"x\"}}]",
	         "src: rules[0].when.any[1]: \"is\" cannot be combined with \"lt\" or \"gt\""},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"when\":{\"device\":\"d\",\"property\":\"p\"},"
	         "\"forbid\":{\"capability\":\"x\"}}]",
	         "src: rules[0].when: needs \"is\", \"lt\" or \"gt\""},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"when\":{\"device\":\"d\",\"property\":\"p\","
	         "\"lt\":\"3\"},\"forbid\":{\"capability\":\"x\"}}]",
	         "src: rules[0].when.lt: expected a number, got string"},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"when\":{\"flag\":\"f\"},"
	         "\"forbid\":{\"capability\":\"x\"}}]",
	         "src: rules[0].when: missing \"is\" (true or false)"},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"when\":{\"all\":[]},"
	         "\"forbid\":{\"capability\":\"x\"}}]",
	         "src: rules[0].when.all: needs at least one condition"},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"when\":{\"sometimes\":true},"
	         "\"forbid\":{\"capability\":\"x\"}}]",
	         "src: rules[0].when: expected one of \"all\", \"any\", \"not\", \"flag\", "
	         "\"device\" or \"time\""},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"cap\":{\"capability\":\"x\",\"property\":"
	         "\"p\",\"min\":30,\"max\":20}}]",
	         "src: rules[0].cap: \"min\" (30) is above \"max\" (20)"},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"cap\":{\"capability\":\"x\",\"property\":"
	         "\"p\"}}]",
	         "src: rules[0].cap: needs \"min\", \"max\" or both"},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"forbid\":{\"capability\":\"x\",\"args\":[1]}}]",
	         "src: rules[0].forbid.args: expected an object of argument values, got array"},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"approval_lifts\":1,"
	         "\"forbid\":{\"capability\":\"x\"}}]",
	         "src: rules[0].approval_lifts: expected true or false, got number"},
	        {"[{\"id\":\"a\",\"reason\":\"\",\"forbid\":{\"capability\":\"x\"}}]",
	         "src: rules[0].reason: must have 1 to 512 characters"},
	        {"[{\"id\":\"a\",\"reason\":\"r\",\"forbid\":{\"capability\":\"x\","
	         "\"args\":{\"on\":true,\"on\":false}}}]",
	         "src: rules[0].forbid.args: key \"on\" appears twice"},
	        {"[" RULE_HEAT "," RULE_QUIET "," RULE_HEAT_25 "]",
	         "src: rules[2].id: \"heat_cap\" is also the id of rules[0]"},
	};
	char why[256];
	cJSON *j;

	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		j = parse(sets[i].json);
		assert_int_equal(hearth_constraints_validate(j, "src", why, sizeof(why)),
		                 HEARTH_E_INVALID);
		if (strcmp(why, sets[i].why))
			fail_msg("case %zu:\n  got  %s\n  want %s", i, why, sets[i].why);
		cJSON_Delete(j);
	}

	/* One rule: paths start at the rule. */
	j = parse("{\"id\":\"a\",\"reason\":\"r\",\"when\":{\"any\":[{\"flag\":\"f\",\"is\":true},"
	          "{\"not\":{\"device\":\"bad id\",\"property\":\"p\",\"is\":1}}]},"
	          "\"forbid\":{\"capability\":\"x\"}}");
	assert_int_equal(hearth_constraint_validate(j, "cli", why, sizeof(why)), HEARTH_E_INVALID);
	assert_string_equal(why, "cli: when.any[1].not.device: \"bad id\" is not an id (1 to 64 "
	                         "characters of A-Z a-z 0-9 _ . -)");
	cJSON_Delete(j);
	j = parse("[1]");
	assert_int_equal(hearth_constraint_validate(j, NULL, why, sizeof(why)), HEARTH_E_INVALID);
	assert_string_equal(why, "expected a rule object, got array");
	cJSON_Delete(j);

	/* Conditions nested too deep. */
	{
		char deep[2048] =
		        "{\"id\":\"a\",\"reason\":\"r\",\"forbid\":{\"capability\":\"x\"},"
		        "\"when\":";
		for (int i = 0; i < HEARTH_CONSTRAINT_DEPTH_MAX; i++)
			strcat(deep, "{\"not\":");
		strcat(deep, "{\"flag\":\"f\",\"is\":true}");
		for (int i = 0; i < HEARTH_CONSTRAINT_DEPTH_MAX; i++)
			strcat(deep, "}");
		strcat(deep, "}");
		j = parse(deep);
		assert_int_equal(hearth_constraint_validate(j, "deep", why, sizeof(why)),
		                 HEARTH_E_INVALID);
		assert_non_null(strstr(why, "conditions nest deeper than 16"));
		cJSON_Delete(j);
	}

	/* Good rules pass, and the message is cleared. */
	j = parse("[" RULE_AWAY "," RULE_HEAT "," RULE_QUIET "]");
	assert_int_equal(hearth_constraints_validate(j, "src", why, sizeof(why)), 0);
	assert_string_equal(why, "");
	cJSON_Delete(j);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
test_load_file(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = tmpstore_open(t);
	char path[192], why[512], hash[65], want[65];
	cJSON *set = parse("[" RULE_AWAY "," RULE_HEAT "]");

	snprintf(path, sizeof(path), "%s/rules.json", t->root);
	write_file(path, "[" RULE_AWAY ",\n" RULE_HEAT "]\n");
	assert_int_equal(hearth_constraints_load_file(st, path, why, sizeof(why)), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_constraints_policy_hash(st, hash), 0);
	assert_int_equal(hearth_constraints_hash_of(set, want), 0);
	assert_string_equal(hash, want);

	/* Broken files are refused with the path in the message; the set stays. */
	write_file(path, "[" RULE_AWAY ",");
	assert_int_equal(hearth_constraints_load_file(st, path, why, sizeof(why)),
	                 HEARTH_E_BAD_JSON);
	assert_non_null(strstr(why, path));
	write_file(path, "[{\"id\":\"a\",\"reason\":\"r\",\"forbid\":{\"capability\":1}}]");
	assert_int_equal(hearth_constraints_load_file(st, path, why, sizeof(why)),
	                 HEARTH_E_INVALID);
	assert_non_null(strstr(why, "rules[0].forbid.capability: expected a string, got number"));
	assert_true(strncmp(why, path, strlen(path)) == 0);
	snprintf(path, sizeof(path), "%s/missing.json", t->root);
	assert_int_equal(hearth_constraints_load_file(st, path, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, path));
	assert_int_equal(hearth_store_pending(st), 0);
	assert_int_equal(hearth_constraints_policy_hash(st, hash), 0);
	assert_string_equal(hash, want);
	cJSON_Delete(set);
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
			assert_true(n_ < 1000);                                                    \
		}                                                                                  \
		assert_int_equal(hearth_store_pending(st), before_ + 1);                           \
	} while (0)

static void
test_alloc_failure(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = tmpstore_open(t);
	cJSON *set = parse("[" RULE_AWAY "," RULE_HEAT "," RULE_QUIET "]"), *got = NULL;
	cJSON *one = parse(RULE_HEAT_25);
	char why[256], hash[65], want[65];
	int err;

	EXPECT_ALLOC_SAFE(st, hearth_constraints_replace(st, set, "s", why, sizeof(why)));
	EXPECT_ALLOC_SAFE(st, hearth_constraints_add(st, one, "s", why, sizeof(why)));
	EXPECT_ALLOC_SAFE(st, hearth_constraints_remove(st, "quiet"));
	tmpstore_flush(st);

	/* Reading under failing allocations: -ENOMEM and nothing half-made. */
	for (long n = 0;; n++) {
		hearth_alloc_fail_after(n);
		err = hearth_constraints_get(st, &got, hash);
		hearth_alloc_fail_after(-1);
		if (!err)
			break;
		assert_int_equal(err, -ENOMEM);
		assert_null(got);
		assert_true(n < 1000);
	}
	assert_int_equal(cJSON_GetArraySize(got), 2);
	assert_int_equal(hearth_constraints_hash_of(got, want), 0);
	assert_string_equal(hash, want);
	cJSON_Delete(got);
	cJSON_Delete(set);
	cJSON_Delete(one);
	hearth_store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_store_and_reopen, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_policy_hash, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_replace_is_whole, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_validation_errors, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_load_file, tmpstore_setup, tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_alloc_failure, tmpstore_setup,
	                                        tmpstore_teardown),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
