/*
 * journal.c - the plan journal (see journal.h): one entry per plan that has
 * not ended, rewritten at each change. Entries are queued like every other
 * write, so the changes of one loop turn, the end of a plan and its episode
 * commit in one transaction.
 */
#include "memory/journal.h"

#include "memory/store_internal.h"
#include "platform/err.h"
#include "platform/id.h"

#include <string.h>

int
hearth_journal_put(hearth_store *st, const char *plan_id, const char *json, size_t len)
{
	if (!plan_id || !hearth_id_valid_str(plan_id) || !json || !len)
		return HEARTH_E_INVALID;
	return store__put(st, HEARTH_DB_JOURNAL, plan_id, strlen(plan_id), json, len);
}

int
hearth_journal_del(hearth_store *st, const char *plan_id)
{
	if (!plan_id || !hearth_id_valid_str(plan_id))
		return HEARTH_E_INVALID;
	return store__del(st, HEARTH_DB_JOURNAL, plan_id, strlen(plan_id));
}

int
hearth_journal_each(hearth_store *st, hearth_store_visit_fn fn, void *ud)
{
	return store__each(st, HEARTH_DB_JOURNAL, NULL, false, HEARTH_ID_LEN_MAX, fn, ud);
}

long
hearth_journal_count(hearth_store *st)
{
	MDB_txn *txn;
	MDB_stat ms;
	int rc, err;

	if (!store__has_db(st, HEARTH_DB_JOURNAL))
		return 0;
	if ((err = store__read_txn(st, &txn)))
		return err;
	rc = mdb_stat(txn, store__dbi(st, HEARTH_DB_JOURNAL), &ms);
	mdb_txn_abort(txn);
	return rc == MDB_SUCCESS ? (long)ms.ms_entries : store__map_err(rc);
}
