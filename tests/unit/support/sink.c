/*
 * sink.c - the test outbox shared by the agent unit tests: it keeps every
 * message an agent posts, in order, so a test can assert what the agent
 * said, as the runtime would have put it on the wire.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>

#include "platform/alloc.h"
#include "tests/unit/support/sink.h"

void
sink_post(void *ud, hearth_msg *m)
{
	struct sink *s = ud;

	if (s->n == s->cap) {
		int ncap = s->cap ? s->cap * 2 : 16;
		hearth_msg *nm = realloc(s->msgs, (size_t)ncap * sizeof(*nm));

		assert_non_null(nm);
		s->msgs = nm;
		s->cap = ncap;
	}
	s->msgs[s->n++] = *m; /* the sink owns body, plan and reply from here */
}

void
sink_reset(struct sink *s)
{
	for (int i = 0; i < s->n; i++)
		hearth_msg_clear(&s->msgs[i]);
	s->n = 0;
}

int
sink_count(const struct sink *s, enum hearth_msg_type type)
{
	int n = 0;

	for (int i = 0; i < s->n; i++)
		n += s->msgs[i].type == type;
	return n;
}

/* The k-th (from 0) posted message of type; fails the test when missing. */
hearth_msg *
sink_nth(struct sink *s, enum hearth_msg_type type, int k)
{
	for (int i = 0; i < s->n; i++)
		if (s->msgs[i].type == type && k-- == 0)
			return &s->msgs[i];
	fail_msg("no %s message among %d posted", hearth_msg_type_name(type), s->n);
	return NULL;
}

/* The last posted message of type; fails the test when missing. */
hearth_msg *
sink_last(struct sink *s, enum hearth_msg_type type)
{
	for (int i = s->n - 1; i >= 0; i--)
		if (s->msgs[i].type == type)
			return &s->msgs[i];
	fail_msg("no %s message among %d posted", hearth_msg_type_name(type), s->n);
	return NULL;
}

const char *
jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

void
assert_json(const cJSON *got, const char *want_text)
{
	cJSON *want = cJSON_Parse(want_text);
	bool same;

	assert_non_null(want);
	same = cJSON_Compare(got, want, true);
	if (!same) {
		char *g = got ? cJSON_PrintUnformatted(got) : NULL;

		print_error("got  %s\nwant %s\n", g ? g : "(null)", want_text);
		hearth_free(g);
	}
	cJSON_Delete(want);
	assert_true(same);
}
