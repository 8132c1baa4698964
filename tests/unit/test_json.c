/*
 * test_json.c - platform/json: parsing of hostile bytes (garbage, trailing
 * garbage, embedded NUL, deep nesting, unterminated buffers, out of memory),
 * the typed getters on every kind of mismatch, printing, and value equality
 * with a tolerance on numbers.
 */
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/json.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int
setup(void **state)
{
	hearth_alloc_init();
	hearth_alloc_fail_after(-1);
	return 0;
}

/* Parse a C string; fails the test unless it parses. */
static cJSON *
parse_ok(const char *text)
{
	cJSON *root = NULL;
	char why[80] = "untouched";

	assert_int_equal(hearth_json_parse(text, strlen(text), &root, why, sizeof(why)), 0);
	assert_non_null(root);
	return root;
}

/* Parse len bytes expecting HEARTH_E_BAD_JSON; returns the reason. */
static void
parse_bad(const char *bytes, size_t len, char *why, size_t why_len)
{
	cJSON *root = (cJSON *)1;

	assert_int_equal(hearth_json_parse(bytes, len, &root, why, why_len), HEARTH_E_BAD_JSON);
	assert_null(root);
	assert_true(strlen(why) > 0);
}

/* ==== Parsing ==== */

static void
test_parse_ok(void **state)
{
	cJSON *root = parse_ok(" {\"id\":\"i-42\",\"n\":3,\"slots\":{\"room\":\"bedroom\"},"
	                       "\"list\":[1,2,3],\"preview\":false,\"none\":null}\n");

	assert_true(cJSON_IsObject(root));
	assert_int_equal(cJSON_GetArraySize(root), 6);
	cJSON_Delete(root);
}

static void
test_parse_any_top_level(void **state)
{
	const char *texts[] = {"42", "-0.5e3", "\"s\"", "true", "false", "null", "[]", "{}"};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		cJSON_Delete(parse_ok(texts[i]));
}

static void
test_parse_garbage(void **state)
{
	char why[80];
	const char *texts[] = {"{not json", "{\"a\":}",    "[1,]",      "nul", "'single'",
	                       "\"\\x\"",   "\"\\ud800\"", "{\"a\" 1}", "}"};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		parse_bad(texts[i], strlen(texts[i]), why, sizeof(why));
		assert_non_null(strstr(why, "byte"));
	}
	parse_bad("{\"a\":}", 6, why, sizeof(why));
	assert_string_equal(why, "not valid JSON near byte 5");
}

static void
test_parse_empty_and_truncated(void **state)
{
	char why[80];

	parse_bad("", 0, why, sizeof(why));
	assert_string_equal(why, "empty input");
	parse_bad("   ", 3, why, sizeof(why));
	parse_bad("{\"a\":[1,2", 9, why, sizeof(why));
	assert_non_null(strstr(why, "ends too early"));
}

static void
test_parse_trailing_garbage(void **state)
{
	char why[80];

	parse_bad("{} x", 4, why, sizeof(why));
	assert_string_equal(why, "not valid JSON near byte 3");
	parse_bad("{}{}", 4, why, sizeof(why));
	parse_bad("1 2", 3, why, sizeof(why));
	/* trailing white space is fine */
	cJSON_Delete(parse_ok("{} \r\n\t"));
}

static void
test_parse_embedded_nul(void **state)
{
	static const char obj[] = "{}\0garbage";
	static const char str[] = "\"a\0b\"";
	char why[80];

	/* cJSON alone would stop at the NUL and accept "{}" */
	parse_bad(obj, sizeof(obj) - 1, why, sizeof(why));
	assert_string_equal(why, "NUL byte in input at byte 2");
	parse_bad(str, sizeof(str) - 1, why, sizeof(why));
	parse_bad("\0", 1, why, sizeof(why));
}

static void
test_parse_not_nul_terminated(void **state)
{
	/* only the first len bytes count; nothing past them is read */
	char bytes[8];
	cJSON *root = NULL;
	long long n = 0;

	memcpy(bytes, "{\"a\":12}", 8);
	assert_int_equal(hearth_json_parse(bytes, 8, &root, NULL, 0), 0);
	assert_int_equal(hearth_json_get_int(root, "a", &n), 0);
	assert_int_equal(n, 12);
	cJSON_Delete(root);

	assert_int_equal(hearth_json_parse("[1]]]", 3, &root, NULL, 0), 0);
	cJSON_Delete(root);
}

static char *
nested(const char *open, size_t depth, const char *close)
{
	size_t lo = strlen(open), lc = strlen(close);
	char *s = malloc(depth * (lo + lc) + 2);
	char *p = s;

	assert_non_null(s);
	for (size_t i = 0; i < depth; i++, p += lo)
		memcpy(p, open, lo);
	*p++ = '1';
	for (size_t i = 0; i < depth; i++, p += lc)
		memcpy(p, close, lc);
	*p = '\0';
	return s;
}

static void
test_parse_huge_nesting(void **state)
{
	size_t n = 100000;
	char *open = malloc(n);
	char why[80];
	char *s;
	cJSON *root;

	assert_non_null(open);
	memset(open, '[', n);
	parse_bad(open, n, why, sizeof(why));
	assert_non_null(strstr(why, "nested too deeply"));
	free(open);

	s = nested("[", n, "]");
	parse_bad(s, strlen(s), why, sizeof(why));
	assert_non_null(strstr(why, "nested too deeply"));
	free(s);

	s = nested("{\"a\":", n, "}");
	parse_bad(s, strlen(s), why, sizeof(why));
	assert_non_null(strstr(why, "nested too deeply"));
	free(s);

	/* exactly at the limit is still fine, one more is not */
	s = nested("[", CJSON_NESTING_LIMIT, "]");
	assert_int_equal(hearth_json_parse(s, strlen(s), &root, why, sizeof(why)), 0);
	cJSON_Delete(root);
	free(s);
	s = nested("[", CJSON_NESTING_LIMIT + 1, "]");
	parse_bad(s, strlen(s), why, sizeof(why));
	assert_non_null(strstr(why, "nested too deeply"));
	free(s);
}

static void
test_parse_long_number(void **state)
{
	/*
	 * RFC-valid, but upstream cJSON reads at most 63 characters of a number
	 * (Debian's patched 1.7.15 reads them all). Either way it is never
	 * mistaken for running out of memory.
	 */
	char text[101];
	cJSON *root = NULL;
	int rc;

	memset(text, '7', 100);
	text[100] = '\0';
	rc = hearth_json_parse(text, 100, &root, NULL, 0);
	assert_true(rc == 0 || rc == HEARTH_E_BAD_JSON);
	cJSON_Delete(root);
	memset(text, '7', 63);
	text[63] = '\0';
	cJSON_Delete(parse_ok(text));
}

static void
test_parse_out_of_memory(void **state)
{
	static const char text[] = "{\"id\":\"i-42\",\"slots\":{\"room\":\"bed\\u00e9\"},"
	                           "\"v\":[1,2.5,true,null,\"x\"]}";
	cJSON *root = NULL;
	char why[80];
	int rc;
	long n;

	hearth_alloc_fail_after(0);
	assert_int_equal(hearth_json_parse(text, strlen(text), &root, why, sizeof(why)), -ENOMEM);
	assert_null(root);

	/* fail each allocation in turn: out of memory is never reported as bad JSON */
	for (n = 1;; n++) {
		hearth_alloc_fail_after(n);
		rc = hearth_json_parse(text, strlen(text), &root, why, sizeof(why));
		hearth_alloc_fail_after(-1);
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_null(root);
	}
	assert_true(n > 5);
	cJSON_Delete(root);
}

static void
test_parse_why_optional(void **state)
{
	cJSON *root = NULL;
	char tiny[4];

	assert_int_equal(hearth_json_parse("x", 1, &root, NULL, 0), HEARTH_E_BAD_JSON);
	assert_int_equal(hearth_json_parse("x", 1, &root, tiny, sizeof(tiny)), HEARTH_E_BAD_JSON);
	assert_int_equal(strlen(tiny), 3);
}

/* ==== Getters ==== */

static const char typed[] = "{\"s\":\"text\",\"n\":2.5,\"i\":-7,\"t\":true,\"f\":false,"
                            "\"z\":null,\"o\":{\"k\":1},\"a\":[1],\"big\":1e300,"
                            "\"min\":-9223372036854775808,\"two63\":9223372036854775808}";

static void
test_get_matching_types(void **state)
{
	cJSON *root = parse_ok(typed);
	const char *s = NULL;
	double d = 0;
	long long i = 0;
	bool b = false;

	assert_int_equal(hearth_json_get_str(root, "s", &s), 0);
	assert_string_equal(s, "text");
	assert_int_equal(hearth_json_get_num(root, "n", &d), 0);
	assert_true(d == 2.5);
	assert_int_equal(hearth_json_get_num(root, "i", &d), 0);
	assert_true(d == -7.0);
	assert_int_equal(hearth_json_get_int(root, "i", &i), 0);
	assert_int_equal(i, -7);
	assert_int_equal(hearth_json_get_int(root, "min", &i), 0);
	assert_true(i == LLONG_MIN);
	assert_int_equal(hearth_json_get_bool(root, "t", &b), 0);
	assert_true(b);
	assert_int_equal(hearth_json_get_bool(root, "f", &b), 0);
	assert_false(b);
	assert_non_null(hearth_json_obj(root, "o"));
	assert_non_null(hearth_json_arr(root, "a"));
	cJSON_Delete(root);
}

static void
test_get_type_mismatch(void **state)
{
	cJSON *root = parse_ok(typed);
	const char *s = "unchanged";
	double d = 99;
	long long i = 99;
	bool b = true;

	/* string getter on everything that is not a string */
	assert_int_equal(hearth_json_get_str(root, "n", &s), HEARTH_E_INVALID);
	assert_int_equal(hearth_json_get_str(root, "t", &s), HEARTH_E_INVALID);
	assert_int_equal(hearth_json_get_str(root, "o", &s), HEARTH_E_INVALID);
	assert_int_equal(hearth_json_get_str(root, "a", &s), HEARTH_E_INVALID);
	assert_string_equal(s, "unchanged");

	/* number getter: no coercion from strings or booleans */
	assert_int_equal(hearth_json_get_num(root, "s", &d), HEARTH_E_INVALID);
	assert_int_equal(hearth_json_get_num(root, "t", &d), HEARTH_E_INVALID);
	assert_int_equal(hearth_json_get_num(root, "a", &d), HEARTH_E_INVALID);
	assert_true(d == 99);

	/* integer getter: not fractional, not out of range */
	assert_int_equal(hearth_json_get_int(root, "n", &i), HEARTH_E_INVALID);
	assert_int_equal(hearth_json_get_int(root, "big", &i), HEARTH_E_INVALID);
	assert_int_equal(hearth_json_get_int(root, "two63", &i), HEARTH_E_INVALID);
	assert_int_equal(hearth_json_get_int(root, "s", &i), HEARTH_E_INVALID);
	assert_int_equal(hearth_json_get_int(root, "f", &i), HEARTH_E_INVALID);
	assert_int_equal(i, 99);

	/* boolean getter: 0/1 and "true" are not booleans */
	assert_int_equal(hearth_json_get_bool(root, "i", &b), HEARTH_E_INVALID);
	assert_int_equal(hearth_json_get_bool(root, "s", &b), HEARTH_E_INVALID);
	assert_int_equal(hearth_json_get_bool(root, "o", &b), HEARTH_E_INVALID);
	assert_true(b);

	/* object / array accessors */
	assert_null(hearth_json_obj(root, "a"));
	assert_null(hearth_json_obj(root, "s"));
	assert_null(hearth_json_arr(root, "o"));
	assert_null(hearth_json_arr(root, "z"));
	cJSON_Delete(root);
}

static void
test_get_missing_and_null(void **state)
{
	cJSON *root = parse_ok(typed);
	cJSON *arr = parse_ok("[1,2]");
	const char *s;
	double d;
	long long i;
	bool b;

	assert_int_equal(hearth_json_get_str(root, "nope", &s), -ENOENT);
	assert_int_equal(hearth_json_get_str(root, "z", &s), -ENOENT);
	assert_int_equal(hearth_json_get_num(root, "z", &d), -ENOENT);
	assert_int_equal(hearth_json_get_int(root, "z", &i), -ENOENT);
	assert_int_equal(hearth_json_get_bool(root, "z", &b), -ENOENT);
	/* keys are case-sensitive */
	assert_int_equal(hearth_json_get_str(root, "S", &s), -ENOENT);
	/* not an object at all */
	assert_int_equal(hearth_json_get_num(arr, "0", &d), -ENOENT);
	assert_int_equal(hearth_json_get_num(NULL, "n", &d), -ENOENT);
	assert_null(hearth_json_obj(NULL, "o"));
	assert_null(hearth_json_arr(root, "nope"));
	cJSON_Delete(arr);
	cJSON_Delete(root);
}

static void
test_type_name(void **state)
{
	cJSON *root = parse_ok(typed);

	assert_string_equal(hearth_json_type_name(cJSON_GetObjectItem(root, "s")), "string");
	assert_string_equal(hearth_json_type_name(cJSON_GetObjectItem(root, "n")), "number");
	assert_string_equal(hearth_json_type_name(cJSON_GetObjectItem(root, "t")), "boolean");
	assert_string_equal(hearth_json_type_name(cJSON_GetObjectItem(root, "f")), "boolean");
	assert_string_equal(hearth_json_type_name(cJSON_GetObjectItem(root, "z")), "null");
	assert_string_equal(hearth_json_type_name(cJSON_GetObjectItem(root, "o")), "object");
	assert_string_equal(hearth_json_type_name(cJSON_GetObjectItem(root, "a")), "array");
	assert_string_equal(hearth_json_type_name(NULL), "missing");
	cJSON_Delete(root);
}

/* ==== Printing ==== */

static void
test_print(void **state)
{
	cJSON *root = parse_ok("{ \"a\" : [1, 2.5, \"x\"],\n \"b\": {\"c\": null} }");
	char *text = hearth_json_print(root);

	assert_non_null(text);
	assert_string_equal(text, "{\"a\":[1,2.5,\"x\"],\"b\":{\"c\":null}}");
	hearth_free(text);

	hearth_alloc_fail_after(0);
	assert_null(hearth_json_print(root));
	hearth_alloc_fail_after(-1);
	assert_null(hearth_json_print(NULL));
	cJSON_Delete(root);
}

/* ==== Equality ==== */

static bool
equal_text(const char *a, const char *b, double eps)
{
	cJSON *x = parse_ok(a), *y = parse_ok(b);
	bool eq = hearth_json_value_equal(x, y, eps);

	/* equality is symmetric */
	assert_true(eq == hearth_json_value_equal(y, x, eps));
	cJSON_Delete(x);
	cJSON_Delete(y);
	return eq;
}

static void
test_equal_numbers_eps(void **state)
{
	assert_true(equal_text("1", "1", 0));
	assert_true(equal_text("1", "1.0", 0));
	assert_true(equal_text("20", "20.4", 0.5));
	assert_true(equal_text("20", "19.5", 0.5));
	assert_false(equal_text("20", "20.6", 0.5));
	assert_false(equal_text("1", "1.001", 0));
	assert_true(equal_text("[1,2]", "[1.01,1.99]", 0.05));
	assert_true(equal_text("{\"t\":21}", "{\"t\":21.1}", 0.2));
	/* out-of-range numbers become infinity, which still equals itself */
	assert_true(equal_text("1e999", "2e999", 0));
	assert_false(equal_text("1e999", "-1e999", 1e308));
	assert_false(equal_text("{\"t\":21}", "{\"t\":22}", 0.2));
}

static void
test_equal_objects_key_order(void **state)
{
	assert_true(equal_text("{\"a\":1,\"b\":\"x\",\"c\":{\"d\":[true,null]}}",
	                       "{\"c\":{\"d\":[true,null]},\"b\":\"x\",\"a\":1}", 0));
	assert_false(equal_text("{\"a\":1,\"b\":2}", "{\"a\":1}", 0));
	assert_false(equal_text("{\"a\":1}", "{\"A\":1}", 0));
	assert_false(equal_text("{\"a\":1,\"b\":2}", "{\"a\":1,\"c\":2}", 0));
	/* duplicate keys pair up in order and cannot stand in for a missing one */
	assert_false(equal_text("{\"a\":1,\"a\":1}", "{\"a\":1,\"b\":1}", 0));
	assert_true(equal_text("{\"a\":1,\"b\":0,\"a\":[2]}", "{\"b\":0,\"a\":1,\"a\":[2]}", 0));
	assert_false(equal_text("{\"a\":1,\"a\":[2]}", "{\"a\":[2],\"a\":1}", 0));
	assert_true(equal_text("{}", "{}", 0));
}

static void
test_equal_other_types(void **state)
{
	assert_false(equal_text("[1,2]", "[2,1]", 0));
	assert_false(equal_text("[1,2]", "[1,2,3]", 0));
	assert_false(equal_text("1", "\"1\"", 1));
	assert_false(equal_text("true", "false", 0));
	assert_false(equal_text("true", "1", 1));
	assert_false(equal_text("null", "false", 0));
	assert_false(equal_text("[]", "{}", 0));
	assert_true(equal_text("\"on\"", "\"on\"", 0));
	assert_false(equal_text("\"on\"", "\"ON\"", 0));
	assert_true(equal_text("null", "null", 0));
	assert_true(hearth_json_value_equal(NULL, NULL, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(test_parse_ok, setup),
	        cmocka_unit_test_setup(test_parse_any_top_level, setup),
	        cmocka_unit_test_setup(test_parse_garbage, setup),
	        cmocka_unit_test_setup(test_parse_empty_and_truncated, setup),
	        cmocka_unit_test_setup(test_parse_trailing_garbage, setup),
	        cmocka_unit_test_setup(test_parse_embedded_nul, setup),
	        cmocka_unit_test_setup(test_parse_not_nul_terminated, setup),
	        cmocka_unit_test_setup(test_parse_huge_nesting, setup),
	        cmocka_unit_test_setup(test_parse_long_number, setup),
	        cmocka_unit_test_setup(test_parse_out_of_memory, setup),
	        cmocka_unit_test_setup(test_parse_why_optional, setup),
	        cmocka_unit_test_setup(test_get_matching_types, setup),
	        cmocka_unit_test_setup(test_get_type_mismatch, setup),
	        cmocka_unit_test_setup(test_get_missing_and_null, setup),
	        cmocka_unit_test_setup(test_type_name, setup),
	        cmocka_unit_test_setup(test_print, setup),
	        cmocka_unit_test_setup(test_equal_numbers_eps, setup),
	        cmocka_unit_test_setup(test_equal_objects_key_order, setup),
	        cmocka_unit_test_setup(test_equal_other_types, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
