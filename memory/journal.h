/*
 * journal.h - the plan journal: the current form of every plan that has not
 * ended (DESIGN.md section 3, `journal`: plan id -> every step's state,
 * bindings, previous device states).
 *
 * Every plan state or step state change rewrites the plan's entry (queued,
 * so all changes of one loop turn commit together); the end of a plan
 * deletes it in the same transaction that adds its episode. On start the
 * daemon replays what is left: those are the plans that were in flight when
 * it stopped. The journal stores bytes: the plan's JSON form belongs to the
 * agents.
 */
#ifndef HEARTH_MEMORY_JOURNAL_H
#define HEARTH_MEMORY_JOURNAL_H

#include "memory/store.h"

#include <stddef.h>

/* Queue the plan's current form (JSON text, copied). 0 or a negative error. */
int hearth_journal_put(hearth_store *st, const char *plan_id, const char *json, size_t len);
/* Queue the removal of the plan's entry (it ended). */
int hearth_journal_del(hearth_store *st, const char *plan_id);
/* Visit every committed entry in plan id order (the replay). */
int hearth_journal_each(hearth_store *st, hearth_store_visit_fn fn, void *ud);
/* Committed entries. */
long hearth_journal_count(hearth_store *st);

#endif
