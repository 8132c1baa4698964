/*
 * secrets.c - named byte blobs in the `secrets` database. Puts and deletes
 * are plain queued writes; reads copy a committed value straight from the map
 * into the caller's buffer, so no copy of a secret is left in memory this
 * module owns. Names may be listed and logged, values never: nothing here
 * formats a value, and listing hands out names only. The file mode (0600)
 * and the data dir (0700) are the store's to set at creation.
 */
#include "memory/secrets.h"
#include "memory/store_internal.h"

#include <errno.h>
#include <lmdb.h>
#include <string.h>

#include "platform/err.h"

static bool
name_valid(const char *name)
{
	size_t n;

	if (!name)
		return false;
	n = strlen(name);
	if (!n || n > HEARTH_SECRET_NAME_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return false;
	return true;
}

int
hearth_secret_put(hearth_store *st, const char *name, const void *val, size_t len)
{
	if (!st || !name_valid(name) || !val || !len)
		return HEARTH_E_INVALID;
	if (len > HEARTH_SECRET_VALUE_MAX)
		return HEARTH_E_TOO_LARGE;
	if (store__read_only(st))
		return -EROFS;
	return store__put(st, HEARTH_DB_SECRETS, name, strlen(name), val, len);
}

int
hearth_secret_get(hearth_store *st, const char *name, void *buf, size_t cap, size_t *len)
{
	MDB_val k, v;
	MDB_txn *txn;
	int err, rc;

	if (!st || !name_valid(name) || !len || (cap && !buf))
		return HEARTH_E_INVALID;
	*len = 0;
	if (!store__has_db(st, HEARTH_DB_SECRETS))
		return HEARTH_E_NOT_FOUND;
	err = store__read_txn(st, &txn);
	if (err)
		return err;
	k.mv_size = strlen(name);
	k.mv_data = (void *)name;
	rc = mdb_get(txn, store__dbi(st, HEARTH_DB_SECRETS), &k, &v);
	if (rc == MDB_SUCCESS) {
		*len = v.mv_size;
		if (v.mv_size > cap)
			err = HEARTH_E_TOO_LARGE;
		else
			memcpy(buf, v.mv_data, v.mv_size);
	} else {
		err = store__map_err(rc);
	}
	mdb_txn_abort(txn);
	return err;
}

int
hearth_secret_del(hearth_store *st, const char *name)
{
	if (!st || !name_valid(name))
		return HEARTH_E_INVALID;
	if (store__read_only(st))
		return -EROFS;
	return store__del(st, HEARTH_DB_SECRETS, name, strlen(name));
}

int
hearth_secrets_each(hearth_store *st, hearth_secret_name_fn fn, void *ud)
{
	char name[HEARTH_SECRET_NAME_MAX + 1];
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	int err, rc, ret = 0;

	if (!st || !fn)
		return HEARTH_E_INVALID;
	if (!store__has_db(st, HEARTH_DB_SECRETS))
		return 0;
	err = store__read_txn(st, &txn);
	if (err)
		return err;
	rc = mdb_cursor_open(txn, store__dbi(st, HEARTH_DB_SECRETS), &cur);
	if (rc != MDB_SUCCESS)
		goto abort_txn;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size > HEARTH_SECRET_NAME_MAX) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		ret = fn(ud, name);
		if (ret)
			break;
	}
	if (rc == MDB_NOTFOUND)
		rc = MDB_SUCCESS;
	mdb_cursor_close(cur);
abort_txn:
	mdb_txn_abort(txn);
	if (rc != MDB_SUCCESS)
		return store__map_err(rc);
	return ret < 0 ? ret : 0;
}
