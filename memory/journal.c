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
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, err;

	if (!store__has_db(st, HEARTH_DB_JOURNAL))
		return 0;
	if ((err = store__read_txn(st, &txn)))
		return err;
	rc = mdb_cursor_open(txn, store__dbi(st, HEARTH_DB_JOURNAL), &cur);
	if (rc != MDB_SUCCESS) {
		mdb_txn_abort(txn);
		return store__map_err(rc);
	}
	err = 0;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && !err;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char key[HEARTH_ID_LEN_MAX + 1];

		if (k.mv_size > HEARTH_ID_LEN_MAX)
			continue; /* not ours */
		memcpy(key, k.mv_data, k.mv_size);
		key[k.mv_size] = '\0';
		err = fn(ud, key, v.mv_data, v.mv_size);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		return store__map_err(rc);
	return err < 0 ? err : 0;
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
