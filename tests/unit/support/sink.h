/*
 * sink.h - a hearth_outbox for tests that keeps what an agent posts, in
 * order. The sink owns the posted messages' bodies, plans and replies;
 * sink_reset() frees them. The lookups fail the running cmocka test when the
 * message is missing.
 */
#ifndef HEARTH_TESTS_SINK_H
#define HEARTH_TESTS_SINK_H

#include "agents/msg.h"

#include <cjson/cJSON.h>

struct sink {
	hearth_msg *msgs;
	int n, cap;
};

/* The outbox post function: hearth_outbox out = {sink_post, &sink}. */
void sink_post(void *ud, hearth_msg *m);
void sink_reset(struct sink *s);
int sink_count(const struct sink *s, enum hearth_msg_type type);
/* The k-th (from 0) / the last posted message of type. */
hearth_msg *sink_nth(struct sink *s, enum hearth_msg_type type, int k);
hearth_msg *sink_last(struct sink *s, enum hearth_msg_type type);

/* The string under key, or NULL. */
const char *jstr(const cJSON *o, const char *key);
/* Fail unless got equals the JSON text want_text. */
void assert_json(const cJSON *got, const char *want_text);

#endif
