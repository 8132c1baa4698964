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

/* store__each hands key and value; a secrets walk shows names only. */
struct names {
	hearth_secret_name_fn fn;
	void *ud;
};

static int
name_only(void *ud, const char *name, const char *value, size_t len)
{
	struct names *n = ud;

	return n->fn(n->ud, name);
}

int
hearth_secrets_each(hearth_store *st, hearth_secret_name_fn fn, void *ud)
{
	struct names n = {fn, ud};

	if (!fn)
		return HEARTH_E_INVALID;
	return store__each(st, HEARTH_DB_SECRETS, NULL, false, HEARTH_SECRET_NAME_MAX, name_only,
	                   &n);
}
