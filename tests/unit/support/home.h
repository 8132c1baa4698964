/*
 * home.h - a home for the agents' tests: feed the context agent messages as
 * a transport would, and make a recipe book from documents written here.
 * Each fails the running cmocka test when something goes wrong.
 */
#ifndef HEARTH_TESTS_HOME_H
#define HEARTH_TESTS_HOME_H

#include "agents/context/context.h"
#include "recipes/recipe.h"
#include "tests/unit/support/sink.h"

#include <stdbool.h>

/*
 * Hand the context one message (json NULL: no body, e.g. availability with
 * flag); what it posts is collected in s, through out. The context must post
 * no ERROR. The caller empties s (sink_reset) when it has looked.
 */
void home_feed(hearth_context *ctx, const hearth_now *now, const hearth_outbox *out, struct sink *s,
               enum hearth_msg_type type, const char *id, const char *json, bool flag);
/* A book of the NULL-terminated JSON documents, loaded from a temporary
 * folder (removed again); every document must load. */
hearth_recipe_book *home_book(const char *const *docs);

#endif
