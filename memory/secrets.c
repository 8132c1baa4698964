/*
 * secrets.c - named byte blobs in the `secrets` database. Puts and deletes
 * are plain queued writes; reads copy a committed value straight from the map
 * into the caller's buffer, so no copy of a secret is left in memory this
 * module owns. Names may be listed and logged, values never: nothing here
 * formats a value, and listing hands out names only (with, for a paired
 * phone, its pairing time). The file mode (0600)
 * and the data dir (0700) are the store's to set at creation.
 */
#include "memory/secrets.h"
#include "memory/store_internal.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "memory/audit.h"
#include "platform/alloc.h"
#include "platform/crypto.h"
#include "platform/err.h"
#include "platform/json.h"
#include "platform/id.h"
#include "platform/log.h"

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

/* ==== Approvers ==== */

#define APPROVER_VALUE_LEN (HEARTH_APPROVER_KEY_LEN + 8)

static int
approver_secret(const char *name, char out[sizeof(HEARTH_APPROVER_PREFIX) + 64])
{
	if (!name || !hearth_id_valid_str(name))
		return HEARTH_E_INVALID;
	snprintf(out, sizeof(HEARTH_APPROVER_PREFIX) + 64, HEARTH_APPROVER_PREFIX "%s", name);
	return 0;
}

/* The store's files hold the keys: owner only, whatever made them. */
static void
protect_files(hearth_store *st)
{
	static const char *const files[] = {"data.mdb", "lock.mdb"};
	char path[4096];
	struct stat sb;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", store__dir(st), files[i]);
		if (stat(path, &sb) || !(sb.st_mode & 077))
			continue;
		if (chmod(path, 0600))
			LOG_WARN("secrets", "%s is mode %03o and cannot be made 0600: %s", path,
			         (unsigned)(sb.st_mode & 0777), strerror(errno));
		else
			LOG_WARN("secrets", "%s was mode %03o: now 0600", path,
			         (unsigned)(sb.st_mode & 0777));
	}
}

int
hearth_secrets_approver_put(hearth_store *st, const char *name,
                            const uint8_t key[HEARTH_APPROVER_KEY_LEN], int64_t paired_at)
{
	char sname[sizeof(HEARTH_APPROVER_PREFIX) + 64];
	uint8_t val[APPROVER_VALUE_LEN];
	uint64_t t = (uint64_t)paired_at;
	int err;

	if (!st || !key || approver_secret(name, sname))
		return HEARTH_E_INVALID;
	memcpy(val, key, HEARTH_APPROVER_KEY_LEN);
	for (int i = 0; i < 8; i++)
		val[HEARTH_APPROVER_KEY_LEN + i] = (uint8_t)(t >> (8 * i));
	err = hearth_secret_put(st, sname, val, sizeof(val));
	explicit_bzero(val, sizeof(val));
	if (!err)
		protect_files(st);
	return err;
}

/* The committed value of approver name into val. */
static int
approver_get(hearth_store *st, const char *name, uint8_t val[APPROVER_VALUE_LEN])
{
	char sname[sizeof(HEARTH_APPROVER_PREFIX) + 64];
	size_t len = 0;
	int err;

	if (!st || approver_secret(name, sname))
		return HEARTH_E_INVALID;
	err = hearth_secret_get(st, sname, val, APPROVER_VALUE_LEN, &len);
	if (err == HEARTH_E_TOO_LARGE || (!err && len != APPROVER_VALUE_LEN)) {
		explicit_bzero(val, APPROVER_VALUE_LEN);
		return HEARTH_E_CORRUPT;
	}
	return err;
}

static int64_t
time_of(const uint8_t *p)
{
	uint64_t t = 0;

	for (int i = 7; i >= 0; i--)
		t = t << 8 | p[i];
	return (int64_t)t;
}

int
hearth_secrets_approver_key(hearth_store *st, const char *name,
                            uint8_t key[HEARTH_APPROVER_KEY_LEN])
{
	uint8_t val[APPROVER_VALUE_LEN];
	int err;

	if (!key)
		return HEARTH_E_INVALID;
	err = approver_get(st, name, val);
	if (!err)
		memcpy(key, val, HEARTH_APPROVER_KEY_LEN);
	explicit_bzero(val, sizeof(val));
	return err;
}

int
hearth_secrets_approver_paired_at(hearth_store *st, const char *name, int64_t *paired_at)
{
	uint8_t val[APPROVER_VALUE_LEN];
	int err;

	if (!paired_at)
		return HEARTH_E_INVALID;
	err = approver_get(st, name, val);
	if (!err)
		*paired_at = time_of(val + HEARTH_APPROVER_KEY_LEN);
	explicit_bzero(val, sizeof(val));
	return err;
}

int
hearth_secrets_approver_del(hearth_store *st, const char *name)
{
	char sname[sizeof(HEARTH_APPROVER_PREFIX) + 64];
	int64_t at;
	int err;

	if (!st || approver_secret(name, sname))
		return HEARTH_E_INVALID;
	err = hearth_secrets_approver_paired_at(st, name, &at);
	if (err && err != HEARTH_E_CORRUPT)
		return err;
	return hearth_secret_del(st, sname);
}

struct approvers {
	hearth_approver_fn fn;
	void *ud;
};

static int
approver_visit(void *ud, const char *name, const char *value, size_t len)
{
	struct approvers *a = ud;

	if (len != APPROVER_VALUE_LEN || !hearth_id_valid_str(name))
		return 0; /* not a pairing of ours: left out */
	return a->fn(a->ud, name, time_of((const uint8_t *)value + HEARTH_APPROVER_KEY_LEN));
}

int
hearth_secrets_approvers_each(hearth_store *st, hearth_approver_fn fn, void *ud)
{
	struct approvers a = {fn, ud};

	if (!fn)
		return HEARTH_E_INVALID;
	return store__each(st, HEARTH_DB_SECRETS, HEARTH_APPROVER_PREFIX, true,
	                   HEARTH_SECRET_NAME_MAX, approver_visit, &a);
}

/* ==== Pairing (hearthctl pair / unpair / pairs, through hearthd or not) ==== */

static int
audit_pairing(hearth_store *st, const char *kind, const char *name, int rotated, int64_t now)
{
	cJSON *d = cJSON_CreateObject();
	char *text;
	int rc;

	if (!d || !cJSON_AddStringToObject(d, "approver", name) ||
	    (rotated >= 0 && !cJSON_AddBoolToObject(d, "rotated", rotated)) ||
	    !cJSON_AddStringToObject(d, "by", "hearthctl")) {
		cJSON_Delete(d);
		return -ENOMEM;
	}
	text = hearth_json_print(d);
	cJSON_Delete(d);
	rc = text ? hearth_audit_append(st, now, kind, name, text) : -ENOMEM;
	hearth_free(text);
	return rc;
}

int
hearth_approver_pair(hearth_store *st, const char *name, bool rotate, int64_t now,
                     char hex[2 * HEARTH_APPROVER_KEY_LEN + 1], bool *rotated)
{
	uint8_t key[HEARTH_APPROVER_KEY_LEN];
	int64_t at;
	int rc = hearth_secrets_approver_paired_at(st, name, &at);

	hex[0] = '\0';
	if (rc && rc != HEARTH_E_NOT_FOUND)
		return rc;
	if (!rc && !rotate)
		return HEARTH_E_BUSY;
	*rotated = !rc;
	if ((rc = hearth_random(key, sizeof(key))) ||
	    (rc = hearth_secrets_approver_put(st, name, key, now))) {
		explicit_bzero(key, sizeof(key));
		return rc;
	}
	hearth_hex_encode(key, sizeof(key), hex);
	explicit_bzero(key, sizeof(key));
	rc = audit_pairing(st, "approver.paired", name, *rotated, now);
	if (rc)
		explicit_bzero(hex, 2 * HEARTH_APPROVER_KEY_LEN + 1);
	return rc;
}

int
hearth_approver_unpair(hearth_store *st, const char *name, int64_t now)
{
	int rc = hearth_secrets_approver_del(st, name);

	return rc ? rc : audit_pairing(st, "approver.unpaired", name, -1, now);
}

static int
add_approver(void *ud, const char *name, int64_t paired_at)
{
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddStringToObject(o, "approver", name) ||
	    !cJSON_AddNumberToObject(o, "paired_at", (double)paired_at)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	cJSON_AddItemToArray(ud, o);
	return 0;
}

int
hearth_approvers_list(hearth_store *st, cJSON **out)
{
	cJSON *arr = cJSON_CreateArray();
	int rc = arr ? hearth_secrets_approvers_each(st, add_approver, arr) : -ENOMEM;

	*out = NULL;
	if (rc) {
		cJSON_Delete(arr);
		return rc;
	}
	*out = arr;
	return 0;
}
