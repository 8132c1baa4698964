/*
 * home.c - see home.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/support/home.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void
home_feed(hearth_context *ctx, const hearth_now *now, const hearth_outbox *out, struct sink *s,
          enum hearth_msg_type type, const char *id, const char *json, bool flag)
{
	hearth_msg m = {.type = type, .flag = flag};

	snprintf(m.id, sizeof(m.id), "%s", id);
	if (json) {
		m.body = cJSON_Parse(json);
		assert_non_null(m.body);
	}
	hearth_context_handle(ctx, &m, now, out);
	hearth_msg_clear(&m);
	assert_int_equal(sink_count(s, HEARTH_MSG_ERROR), 0);
}

hearth_recipe_book *
home_book(const char *const *docs)
{
	char dir[] = "/tmp/hearth-book-XXXXXX", path[96], why[512] = "";
	hearth_recipe_book *b = NULL;
	int n = 0;

	assert_non_null(mkdtemp(dir));
	for (; docs[n]; n++) {
		FILE *fp;

		snprintf(path, sizeof(path), "%s/r%d.json", dir, n);
		fp = fopen(path, "w");
		assert_non_null(fp);
		fputs(docs[n], fp);
		fclose(fp);
	}
	if (hearth_recipe_book_load(dir, &b, NULL, NULL, why, sizeof(why)))
		fail_msg("loading the book: %s", why);
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/r%d.json", dir, i);
		remove(path);
	}
	rmdir(dir);
	assert_int_equal(hearth_recipe_book_count(b), n);
	return b;
}
