/*
 * test_strbuf.c - the growing string of platform/strbuf.h: pieces in order,
 * growth past the first allocation, an empty take, out of memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "platform/alloc.h"
#include "platform/strbuf.h"

static void
test_pieces_and_growth(void **state)
{
	struct hearth_strbuf b = {0};
	char *s;

	hearth_strbuf_addf(&b, "set %s to %d", "lamp", 30);
	for (int i = 0; i < 100; i++) /* well past the first 256 bytes */
		hearth_strbuf_addf(&b, "; step %02d", i);
	assert_false(b.oom);
	assert_int_equal(b.len, strlen(b.buf));
	assert_int_equal(strncmp(b.buf, "set lamp to 30; step 00; step 01", 32), 0);
	assert_non_null(strstr(b.buf, "; step 99"));
	s = hearth_strbuf_take(&b);
	assert_int_equal(strlen(s), strlen("set lamp to 30") + 100 * strlen("; step 00"));
	assert_null(b.buf); /* b is empty again */
	assert_int_equal(b.len, 0);
	hearth_free(s);
}

static void
test_empty_take_is_empty_string(void **state)
{
	struct hearth_strbuf b = {0};
	char *s = hearth_strbuf_take(&b);

	assert_string_equal(s, "");
	hearth_free(s);
}

static void
test_out_of_memory_sticks(void **state)
{
	struct hearth_strbuf b = {0};

	hearth_strbuf_addf(&b, "first");
	hearth_alloc_fail_after(0);
	hearth_strbuf_addf(&b, "%0300d", 7); /* needs to grow: fails */
	hearth_alloc_fail_after(-1);
	assert_true(b.oom);
	hearth_strbuf_addf(&b, "ignored");
	assert_null(hearth_strbuf_take(&b)); /* and the buffer is freed */
	assert_false(b.oom);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pieces_and_growth),
	        cmocka_unit_test(test_empty_take_is_empty_string),
	        cmocka_unit_test(test_out_of_memory_sticks),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
