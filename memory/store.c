/*
 * store.c - hearth's LMDB store: one environment in the data dir with the
 * named databases of store_internal.h; this file keeps meta, episodes and
 * devices, the other modules of memory/ keep theirs on the same queue.
 *
 * The store owns the LMDB environment and a queue of pending writes. Writers
 * only queue (each record is copied, so the caller's buffer may go); the
 * runtime calls hearth_store_flush() once per loop turn and every queued
 * write lands in one write transaction (group commit). When the map is full
 * the transaction is thrown away, the map doubles up to its ceiling and the
 * commit is retried; past the ceiling the queue is dropped and nothing
 * committed before is touched. Meta holds the schema version (decimal text),
 * the home id and the creation time; a store written by a newer schema or
 * for another home is refused at open, an older one goes through migrate(),
 * the one place where migrations will live. The store never prints (it logs
 * through platform/log.h), never aborts on an I/O error (every LMDB failure
 * becomes a negative hearth error) and knows nothing of what the JSON records
 * it keeps mean.
 */
#include "memory/store.h"
#include "memory/store_internal.h"
#include "memory/audit.h"

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "hearth_config.h"
#include "platform/alloc.h"
#include "platform/clock.h"
#include "platform/err.h"
#include "platform/log.h"

#define EPISODE_KEY_LEN 16
#define HOME_ID_MAX     64

enum op_kind {
	OP_EPISODE,
	OP_PUT,
	OP_DEL,
	OP_APPLY,
};

/* One queued write: key and value copied into one block. */
struct op {
	enum op_kind kind;
	enum hearth_db db;
	store__apply_fn apply; /* OP_APPLY: runs in the flush txn with the value bytes */
	size_t klen;
	size_t vlen;
	unsigned char data[]; /* klen bytes of key, then vlen bytes of value */
};

/* The named databases, in enum hearth_db order (DESIGN.md section 3). */
static const char *const db_names[HEARTH_DB_COUNT] = {
        [HEARTH_DB_META] = "meta",
        [HEARTH_DB_EPISODES] = "episodes",
        [HEARTH_DB_DEVICES] = "devices",
        [HEARTH_DB_SEMANTIC] = "semantic",
        [HEARTH_DB_CONSTRAINTS] = "constraints",
        [HEARTH_DB_RECIPES] = "recipes",
        [HEARTH_DB_JOURNAL] = "journal",
        [HEARTH_DB_CONSENTS] = "consents",
        [HEARTH_DB_AUDIT] = "audit",
        [HEARTH_DB_SECRETS] = "secrets",
};

struct hook {
	store__commit_fn fn;
	void *ud;
};

struct hearth_store {
	MDB_env *env;
	MDB_dbi dbi[HEARTH_DB_COUNT];
	bool have[HEARTH_DB_COUNT]; /* read-only opens of older stores may lack some */
	struct hook hooks[8];
	int nhooks;
	void *slots[STORE_SLOT_COUNT];
	char *dir;
	size_t map_max;
	long episodes_max;
	bool read_only;
	uint64_t next_seq; /* sequence of the next episode key */

	int schema_version;
	int migrated_from; /* schema migrated from at this open, or 0 */
	char home_id[HOME_ID_MAX + 1];
	int64_t created_at;

	struct op **q; /* pending writes, in order */
	size_t q_len;
	size_t q_cap;
};

/* ==== Helpers ==== */

void
store__say(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !why_len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

/* An LMDB (or errno) code as a hearth error. */
static int
map_err(int rc)
{
	if (rc == MDB_SUCCESS)
		return 0;
	if (rc > 0)
		return -rc;
	switch (rc) {
	case MDB_MAP_FULL:
		return HEARTH_E_MAP_FULL;
	case MDB_NOTFOUND:
		return HEARTH_E_NOT_FOUND;
	case MDB_CORRUPTED:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return HEARTH_E_CORRUPT;
	default:
		return HEARTH_E_STORE;
	}
}

static void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Human size for messages: "64 KiB", "512 MiB". */
static void
fmt_size(char *buf, size_t len, size_t bytes)
{
	if (bytes >= (size_t)1 << 20)
		snprintf(buf, len, "%zu MiB", bytes >> 20);
	else
		snprintf(buf, len, "%zu KiB", bytes >> 10);
}

/* mkdir -p with mode 0700 for every directory it creates. */
int
store__make_dirs(const char *dir)
{
	char *path = hearth_strdup(dir);
	struct stat sb;
	int err = 0;

	if (!path)
		return -ENOMEM;
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (stat(path, &sb) < 0 && mkdir(path, 0700) < 0 && errno != EEXIST) {
			err = -errno;
			break;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	if (!err && stat(dir, &sb) < 0)
		err = -errno;
	else if (!err && !S_ISDIR(sb.st_mode))
		err = -ENOTDIR;
	hearth_free(path);
	return err;
}

/*
 * Begin a transaction. When another process (hearthd beside a read-only
 * hearthctl) grew the map, adopt its size and try again.
 */
static int
txn_begin(hearth_store *st, unsigned int flags, MDB_txn **txn)
{
	int rc = mdb_txn_begin(st->env, NULL, flags, txn);

	if (rc == MDB_MAP_RESIZED) {
		rc = mdb_env_set_mapsize(st->env, 0);
		if (rc == MDB_SUCCESS)
			rc = mdb_txn_begin(st->env, NULL, flags, txn);
	}
	return rc;
}

static size_t
map_size_now(hearth_store *st)
{
	MDB_envinfo ei;

	if (mdb_env_info(st->env, &ei) != MDB_SUCCESS)
		return 0;
	return ei.me_mapsize;
}

static void
queue_clear(hearth_store *st)
{
	for (size_t i = 0; i < st->q_len; i++) {
		struct op *op = st->q[i];

		/* A queued secret (a phone's key) must not linger in freed memory. */
		if (op->db == HEARTH_DB_SECRETS)
			explicit_bzero(op->data, op->klen + op->vlen);
		hearth_free(op);
	}
	st->q_len = 0;
}

/* ==== Meta and migrations ==== */

static int
meta_get(MDB_txn *txn, MDB_dbi dbi, const char *name, char *buf, size_t len)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(txn, dbi, &k, &v);

	if (rc != MDB_SUCCESS)
		return rc;
	if (v.mv_size >= len)
		return MDB_CORRUPTED;
	memcpy(buf, v.mv_data, v.mv_size);
	buf[v.mv_size] = '\0';
	return MDB_SUCCESS;
}

static int
meta_put(MDB_txn *txn, MDB_dbi dbi, const char *name, const char *value)
{
	MDB_val k = {strlen(name), (void *)name};
	MDB_val v = {strlen(value), (void *)value};

	return mdb_put(txn, dbi, &k, &v, 0);
}

static bool
parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0')
		return false;
	*out = v;
	return true;
}

/*
 * The one place where a store written by an older schema is brought up to
 * HEARTH_SCHEMA_VERSION, inside the opening write transaction. Each new
 * version adds a case that
 * rewrites the records of version N into N + 1 and falls through to the next,
 * and the end rewrites meta's schema_version.
 */
static int
migrate(hearth_store *st, MDB_txn *txn, int from, char *why, size_t why_len)
{
	char num[32];
	int rc;

	switch (from) {
	case 1:
		/* 1 -> 2: the databases of DESIGN.md section 3 beyond meta, episodes
		 * and devices (open_dbs created them in this transaction); records
		 * of version 1 keep their form. */
	case 2:
		break;
	default:
		store__say(why, why_len,
		           "store %s has schema %d, which this hearth cannot migrate to %d",
		           st->dir, from, HEARTH_SCHEMA_VERSION);
		return HEARTH_E_SCHEMA;
	}
	snprintf(num, sizeof(num), "%d", HEARTH_SCHEMA_VERSION);
	rc = meta_put(txn, st->dbi[HEARTH_DB_META], "schema_version", num);
	if (rc == MDB_SUCCESS) {
		snprintf(num, sizeof(num), "%d", from);
		rc = meta_put(txn, st->dbi[HEARTH_DB_META], "migrated_from", num);
	}
	if (rc != MDB_SUCCESS) {
		store__say(why, why_len, "cannot migrate store %s: %s", st->dir, mdb_strerror(rc));
		return map_err(rc);
	}
	LOG_INFO("store", "store %s migrated from schema %d to %d", st->dir, from,
	         HEARTH_SCHEMA_VERSION);
	st->migrated_from = from;
	st->schema_version = HEARTH_SCHEMA_VERSION;
	return 0;
}

static int
meta_create(hearth_store *st, MDB_txn *txn, const char *home_id)
{
	char num[32];
	int rc;

	st->schema_version = HEARTH_SCHEMA_VERSION;
	st->created_at = hearth_wall_ms();
	snprintf(st->home_id, sizeof(st->home_id), "%s", home_id);
	snprintf(num, sizeof(num), "%d", HEARTH_SCHEMA_VERSION);
	rc = meta_put(txn, st->dbi[HEARTH_DB_META], "schema_version", num);
	if (rc == MDB_SUCCESS)
		rc = meta_put(txn, st->dbi[HEARTH_DB_META], "home_id", st->home_id);
	snprintf(num, sizeof(num), "%" PRId64, st->created_at);
	if (rc == MDB_SUCCESS)
		rc = meta_put(txn, st->dbi[HEARTH_DB_META], "created_at", num);
	return rc;
}

/*
 * Read meta (or write it into a new store), refuse a newer schema or another
 * home, migrate an older schema. Returns a hearth error with why filled in.
 */
static int
meta_load(hearth_store *st, MDB_txn *txn, const char *home_id, char *why, size_t why_len)
{
	char buf[64];
	int64_t v;
	MDB_stat ms;
	int rc;

	rc = meta_get(txn, st->dbi[HEARTH_DB_META], "schema_version", buf, sizeof(buf));
	if (rc == MDB_NOTFOUND && !st->read_only &&
	    mdb_stat(txn, st->dbi[HEARTH_DB_META], &ms) == MDB_SUCCESS && ms.ms_entries == 0) {
		rc = meta_create(st, txn, home_id ? home_id : "home");
		if (rc != MDB_SUCCESS)
			goto lmdb_fail;
		return 0;
	}
	if (rc == MDB_NOTFOUND ||
	    (rc == MDB_SUCCESS && (!parse_i64(buf, &v) || v < 1 || v > INT32_MAX))) {
		store__say(why, why_len,
		           "store %s has no valid schema version in meta: restore it from a backup",
		           st->dir);
		return HEARTH_E_CORRUPT;
	}
	if (rc != MDB_SUCCESS)
		goto lmdb_fail;
	st->schema_version = (int)v;
	if (st->schema_version > HEARTH_SCHEMA_VERSION) {
		store__say(why, why_len,
		           "store %s was written by schema %d, this hearth knows up to %d: "
		           "upgrade hearth",
		           st->dir, st->schema_version, HEARTH_SCHEMA_VERSION);
		return HEARTH_E_SCHEMA;
	}

	rc = meta_get(txn, st->dbi[HEARTH_DB_META], "home_id", st->home_id, sizeof(st->home_id));
	if (rc == MDB_SUCCESS) {
		rc = meta_get(txn, st->dbi[HEARTH_DB_META], "created_at", buf, sizeof(buf));
		if (rc == MDB_SUCCESS && !parse_i64(buf, &st->created_at))
			rc = MDB_CORRUPTED;
	}
	if (rc == MDB_NOTFOUND || rc == MDB_CORRUPTED) {
		store__say(why, why_len,
		           "store %s has an incomplete meta record: restore it from a backup",
		           st->dir);
		return HEARTH_E_CORRUPT;
	}
	if (rc != MDB_SUCCESS)
		goto lmdb_fail;

	if (home_id && !st->read_only && strcmp(home_id, st->home_id) != 0) {
		store__say(why, why_len,
		           "store %s belongs to home \"%s\", not \"%s\": use that home id or "
		           "another data "
		           "dir",
		           st->dir, st->home_id, home_id);
		return HEARTH_E_CONFIG;
	}

	if (st->schema_version < HEARTH_SCHEMA_VERSION) {
		if (st->read_only) {
			store__say(why, why_len,
			           "store %s has schema %d, older than %d: start hearthd once to "
			           "migrate "
			           "it",
			           st->dir, st->schema_version, HEARTH_SCHEMA_VERSION);
			return HEARTH_E_SCHEMA;
		}
		return migrate(st, txn, st->schema_version, why, why_len);
	}
	return 0;

lmdb_fail:
	store__say(why, why_len, "cannot read meta of store %s: %s", st->dir, mdb_strerror(rc));
	return map_err(rc);
}

/* The sequence after the newest episode key, so keys stay unique and ordered. */
static int
seq_load(hearth_store *st, MDB_txn *txn)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, st->dbi[HEARTH_DB_EPISODES], &cur);

	if (rc != MDB_SUCCESS)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == MDB_SUCCESS && k.mv_size == EPISODE_KEY_LEN)
		st->next_seq = get_be64((const unsigned char *)k.mv_data + 8) + 1;
	else if (rc == MDB_SUCCESS)
		rc = MDB_CORRUPTED;
	else if (rc == MDB_NOTFOUND)
		rc = MDB_SUCCESS;
	mdb_cursor_close(cur);
	return rc;
}

/* ==== Open and close ==== */

/* Open the named databases and load meta, in one transaction. */
static int
open_dbs(hearth_store *st, const char *home_id, char *why, size_t why_len)
{
	unsigned int dbflags = st->read_only ? 0 : MDB_CREATE;
	MDB_txn *txn;
	int err, rc;

	rc = txn_begin(st, st->read_only ? MDB_RDONLY : 0, &txn);
	if (rc != MDB_SUCCESS) {
		store__say(why, why_len, "cannot read store %s: %s", st->dir, mdb_strerror(rc));
		return map_err(rc);
	}
	/* meta, episodes and devices exist since schema 1; a read-only open of an
	 * older store may lack the later ones, which then read as empty. */
	rc = MDB_SUCCESS;
	for (int i = 0; i < HEARTH_DB_COUNT && rc == MDB_SUCCESS; i++) {
		rc = mdb_dbi_open(txn, db_names[i], dbflags, &st->dbi[i]);
		if (rc == MDB_NOTFOUND && i > HEARTH_DB_DEVICES) {
			rc = MDB_SUCCESS;
			continue;
		}
		st->have[i] = rc == MDB_SUCCESS;
	}
	if (rc == MDB_NOTFOUND) {
		store__say(why, why_len, "no store in %s (has hearthd run with --data %s?)",
		           st->dir, st->dir);
		err = HEARTH_E_NOT_FOUND;
		goto abort_txn;
	}
	if (rc != MDB_SUCCESS) {
		store__say(why, why_len, "cannot open the databases of store %s: %s", st->dir,
		           mdb_strerror(rc));
		err = map_err(rc);
		goto abort_txn;
	}
	err = meta_load(st, txn, home_id, why, why_len);
	if (err)
		goto abort_txn;
	rc = seq_load(st, txn);
	if (rc != MDB_SUCCESS) {
		store__say(why, why_len, "cannot read the episodes of store %s: %s", st->dir,
		           mdb_strerror(rc));
		err = map_err(rc);
		goto abort_txn;
	}
	/* Committing (even a read-only txn) makes the handles usable by later txns. */
	rc = mdb_txn_commit(txn);
	if (rc != MDB_SUCCESS) {
		store__say(why, why_len, "cannot initialize store %s: %s", st->dir,
		           mdb_strerror(rc));
		return map_err(rc);
	}
	return 0;

abort_txn:
	mdb_txn_abort(txn);
	return err;
}

int
hearth_store_open(const struct hearth_store_opts *opts, hearth_store **out, char *why,
                  size_t why_len)
{
	size_t map_size = (size_t)CONFIG_HEARTH_STORE_MAP_MB << 20;
	unsigned int flags = 0;
	hearth_store *st;
	char *data_path = NULL;
	struct stat sb;
	bool existed;
	int dead, err, rc;

	if (out)
		*out = NULL;
	store__say(why, why_len, "%s", "");
	if (!opts || !out || !opts->dir || !opts->dir[0]) {
		store__say(why, why_len, "no data dir given for the store");
		return HEARTH_E_INVALID;
	}
	if (opts->home_id && (!opts->home_id[0] || strlen(opts->home_id) > HOME_ID_MAX)) {
		store__say(why, why_len, "home id \"%s\" must have 1 to %d characters",
		           opts->home_id, HOME_ID_MAX);
		return HEARTH_E_CONFIG;
	}

	st = hearth_calloc(1, sizeof(*st));
	if (!st)
		goto no_mem;
	st->dir = hearth_strdup(opts->dir);
	if (!st->dir)
		goto no_mem_st;
	st->read_only = opts->read_only;
	if (opts->map_size)
		map_size = opts->map_size;
	st->map_max = opts->map_max ? opts->map_max : map_size * 4;
	if (st->map_max < map_size)
		st->map_max = map_size;
	st->episodes_max = opts->episodes_max > 0 ? opts->episodes_max : CONFIG_HEARTH_EPISODES_MAX;

	if (!st->read_only) {
		err = store__make_dirs(st->dir);
		if (err) {
			store__say(why, why_len, "cannot create data dir %s: %s", st->dir,
			           strerror(-err));
			goto free_st;
		}
		/* The store holds secrets: nobody but its owner reads the folder. */
		if (stat(st->dir, &sb) == 0 && (sb.st_mode & 077)) {
			LOG_WARN("store",
			         "data dir %s was readable by others (mode %03o): now 0700",
			         st->dir, (unsigned)(sb.st_mode & 0777));
			chmod(st->dir, 0700);
		}
	}
	data_path = hearth_malloc(strlen(st->dir) + sizeof("/data.mdb"));
	if (!data_path)
		goto no_mem_st;
	sprintf(data_path, "%s/data.mdb", st->dir);
	existed = stat(data_path, &sb) == 0;
	/* Only a store that is surely absent is "not found"; EACCES is LMDB's to report. */
	if (!existed && st->read_only && (errno == ENOENT || errno == ENOTDIR)) {
		store__say(why, why_len, "no store in %s (has hearthd run with --data %s?)",
		           st->dir, st->dir);
		err = HEARTH_E_NOT_FOUND;
		goto free_st;
	}

	rc = mdb_env_create(&st->env);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_set_maxdbs(st->env, 16);
	/* A new store starts at map_size; an existing one keeps what it grew to. */
	if (rc == MDB_SUCCESS && !existed)
		rc = mdb_env_set_mapsize(st->env, map_size);
	if (rc != MDB_SUCCESS)
		goto lmdb_fail;
	if (st->read_only)
		flags |= MDB_RDONLY;
	if (opts->no_sync)
		flags |= MDB_NOSYNC;
	rc = mdb_env_open(st->env, st->dir, flags, 0600);
	if (rc != MDB_SUCCESS)
		goto lmdb_fail;
	rc = mdb_reader_check(st->env, &dead);
	if (rc != MDB_SUCCESS)
		goto lmdb_fail;
	if (dead > 0)
		LOG_WARN("store", "cleared %d stale reader slot(s) in %s", dead, st->dir);
	if (!st->read_only && existed && map_size_now(st) < map_size) {
		rc = mdb_env_set_mapsize(st->env, map_size);
		if (rc != MDB_SUCCESS)
			goto lmdb_fail;
	}

	err = open_dbs(st, opts->home_id, why, why_len);
	if (err)
		goto free_st;
	hearth_free(data_path);
	*out = st;
	return 0;

lmdb_fail:
	if (rc == MDB_VERSION_MISMATCH || rc == MDB_INVALID || rc == MDB_CORRUPTED)
		store__say(why, why_len,
		           "store %s is not a readable LMDB store (%s): restore it from a "
		           "backup",
		           st->dir, mdb_strerror(rc));
	else
		store__say(why, why_len, "cannot open store %s: %s", st->dir, mdb_strerror(rc));
	err = map_err(rc);
	goto free_st;
no_mem_st:
	err = -ENOMEM;
	store__say(why, why_len, "out of memory opening store %s", opts->dir);
free_st:
	hearth_free(data_path);
	if (st->env)
		mdb_env_close(st->env);
	hearth_free(st->dir);
	hearth_free(st);
	return err;
no_mem:
	store__say(why, why_len, "out of memory opening store %s", opts->dir);
	return -ENOMEM;
}

void
hearth_store_close(hearth_store *st)
{
	char why[256];
	int err;

	if (!st)
		return;
	if (st->q_len) {
		err = hearth_store_flush(st, why, sizeof(why));
		if (err)
			LOG_WARN("store", "closing %s: %s", st->dir, why);
	}
	queue_clear(st);
	hearth_free(st->q);
	hearth_audit_forget(st); /* wipes the seal key in its slot */
	mdb_env_close(st->env);
	hearth_free(st->dir);
	hearth_free(st);
}

int
hearth_store_info(hearth_store *st, struct hearth_store_info *out)
{
	MDB_envinfo ei;
	MDB_stat es, ms;
	MDB_txn *txn;
	int rc;

	if (!st || !out)
		return HEARTH_E_INVALID;
	memset(out, 0, sizeof(*out));
	out->schema_version = st->schema_version;
	out->migrated_from = st->migrated_from;
	snprintf(out->home_id, sizeof(out->home_id), "%s", st->home_id);
	out->created_at = st->created_at;

	rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc != MDB_SUCCESS)
		return map_err(rc);
	rc = mdb_env_info(st->env, &ei);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_stat(st->env, &es);
	if (rc == MDB_SUCCESS) {
		out->map_size = ei.me_mapsize;
		out->map_used = (ei.me_last_pgno + 1) * (size_t)es.ms_psize;
		rc = mdb_stat(txn, st->dbi[HEARTH_DB_EPISODES], &ms);
	}
	if (rc == MDB_SUCCESS) {
		out->episodes = (long)ms.ms_entries;
		rc = mdb_stat(txn, st->dbi[HEARTH_DB_DEVICES], &ms);
	}
	if (rc == MDB_SUCCESS)
		out->devices = (long)ms.ms_entries;
	mdb_txn_abort(txn);
	return map_err(rc);
}

/* ==== Write queue ==== */

static int
enqueue_op(hearth_store *st, enum op_kind kind, enum hearth_db db, store__apply_fn apply,
           const void *key, size_t klen, const void *val, size_t vlen)
{
	struct op *op;

	if (st->read_only)
		return -EROFS;
	if (st->q_len == st->q_cap) {
		size_t cap = st->q_cap ? st->q_cap * 2 : 16;
		struct op **q = hearth_realloc(st->q, cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		st->q = q;
		st->q_cap = cap;
	}
	op = hearth_malloc(sizeof(*op) + klen + vlen);
	if (!op)
		return -ENOMEM;
	op->kind = kind;
	op->db = db;
	op->apply = apply;
	op->klen = klen;
	op->vlen = vlen;
	if (klen)
		memcpy(op->data, key, klen);
	if (vlen)
		memcpy(op->data + klen, val, vlen);
	st->q[st->q_len++] = op;
	return 0;
}

static int
enqueue(hearth_store *st, enum op_kind kind, enum hearth_db db, const void *key, size_t klen,
        const void *val, size_t vlen)
{
	return enqueue_op(st, kind, db, NULL, key, klen, val, vlen);
}

int
hearth_store_episode_add(hearth_store *st, int64_t ts_ms, const char *json, size_t len)
{
	unsigned char key[EPISODE_KEY_LEN];
	int err;

	if (!st || !json || !len)
		return HEARTH_E_INVALID;
	put_be64(key, (uint64_t)ts_ms);
	put_be64(key + 8, st->next_seq);
	err = enqueue(st, OP_EPISODE, HEARTH_DB_EPISODES, key, sizeof(key), json, len);
	if (!err)
		st->next_seq++;
	return err;
}

int
hearth_store_device_put(hearth_store *st, const char *id, const char *json, size_t len)
{
	size_t klen;

	if (!st || !id)
		return HEARTH_E_INVALID;
	klen = strlen(id);
	if (!klen || klen > (size_t)mdb_env_get_maxkeysize(st->env))
		return HEARTH_E_INVALID;
	if (!json)
		return enqueue(st, OP_DEL, HEARTH_DB_DEVICES, id, klen, NULL, 0);
	if (!len)
		return HEARTH_E_INVALID;
	return enqueue(st, OP_PUT, HEARTH_DB_DEVICES, id, klen, json, len);
}

size_t
hearth_store_pending(const hearth_store *st)
{
	return st ? st->q_len : 0;
}

/* ==== Flush ==== */

/* Delete the oldest episodes beyond the window. */
static int
apply_window(hearth_store *st, MDB_txn *txn)
{
	MDB_cursor *cur;
	MDB_stat ms;
	MDB_val k, v;
	size_t excess;
	int rc;

	rc = mdb_stat(txn, st->dbi[HEARTH_DB_EPISODES], &ms);
	if (rc != MDB_SUCCESS)
		return rc;
	if (ms.ms_entries <= (size_t)st->episodes_max)
		return MDB_SUCCESS;
	excess = ms.ms_entries - (size_t)st->episodes_max;
	rc = mdb_cursor_open(txn, st->dbi[HEARTH_DB_EPISODES], &cur);
	if (rc != MDB_SUCCESS)
		return rc;
	while (excess--) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		if (rc == MDB_SUCCESS)
			rc = mdb_cursor_del(cur, 0);
		if (rc != MDB_SUCCESS)
			break;
	}
	mdb_cursor_close(cur);
	return rc;
}

/* Write the whole queue in one transaction. Returns an LMDB code. */
static int
commit_queue(hearth_store *st)
{
	MDB_txn *txn;
	int rc;

	rc = txn_begin(st, 0, &txn);
	if (rc != MDB_SUCCESS)
		return rc;
	for (size_t i = 0; i < st->q_len && rc == MDB_SUCCESS; i++) {
		struct op *op = st->q[i];
		MDB_val k = {op->klen, op->data};
		MDB_val v = {op->vlen, op->data + op->klen};

		switch (op->kind) {
		case OP_EPISODE:
			/*
			 * The sequence continues from the newest key, so after the
			 * clock went back a key may exist already: take the next one.
			 * (On MDB_KEYEXIST, LMDB points v at the existing value.)
			 */
			while ((rc = mdb_put(txn, st->dbi[HEARTH_DB_EPISODES], &k, &v,
			                     MDB_NOOVERWRITE)) == MDB_KEYEXIST) {
				put_be64(op->data + 8, st->next_seq++);
				v.mv_size = op->vlen;
				v.mv_data = op->data + op->klen;
			}
			break;
		case OP_PUT:
			rc = mdb_put(txn, st->dbi[op->db], &k, &v, 0);
			break;
		case OP_DEL:
			rc = mdb_del(txn, st->dbi[op->db], &k, NULL);
			if (rc == MDB_NOTFOUND)
				rc = MDB_SUCCESS;
			break;
		case OP_APPLY:
			rc = op->apply(st, txn, op->data + op->klen, op->vlen);
			break;
		}
	}
	if (rc == MDB_SUCCESS)
		rc = apply_window(st, txn);
	for (int i = 0; i < st->nhooks && rc == MDB_SUCCESS; i++)
		rc = st->hooks[i].fn(st->hooks[i].ud, txn);
	if (rc != MDB_SUCCESS) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn); /* frees txn, also on failure */
}

/* Double the map, up to map_max. MDB_MAP_FULL when already at the ceiling. */
static int
grow(hearth_store *st)
{
	size_t cur = map_size_now(st), next;
	char a[32], b[32];
	int rc;

	if (!cur || cur >= st->map_max)
		return MDB_MAP_FULL;
	next = cur > st->map_max / 2 ? st->map_max : cur * 2;
	rc = mdb_env_set_mapsize(st->env, next);
	if (rc != MDB_SUCCESS)
		return rc;
	fmt_size(a, sizeof(a), next);
	fmt_size(b, sizeof(b), st->map_max);
	LOG_INFO("store", "store %s grew to %s (ceiling %s)", st->dir, a, b);
	return MDB_SUCCESS;
}

int
hearth_store_flush(hearth_store *st, char *why, size_t why_len)
{
	char a[32], b[32];
	int rc;

	store__say(why, why_len, "%s", "");
	if (!st)
		return HEARTH_E_INVALID;
	if (!st->q_len)
		return 0;
	for (;;) {
		rc = commit_queue(st);
		if (rc != MDB_MAP_FULL)
			break;
		rc = grow(st);
		if (rc == MDB_MAP_FULL) {
			fmt_size(a, sizeof(a), map_size_now(st));
			fmt_size(b, sizeof(b), st->map_max);
			store__say(
			        why, why_len,
			        "store %s is full (%s, ceiling %s): raise store.map_max_mb in the "
			        "configuration or prune episodes",
			        st->dir, a, b);
			LOG_WARN("store", "dropped %zu pending write(s): store %s is full",
			         st->q_len, st->dir);
			queue_clear(st);
			return HEARTH_E_MAP_FULL;
		}
		if (rc != MDB_SUCCESS)
			break;
	}
	if (rc != MDB_SUCCESS) {
		store__say(why, why_len, "cannot write to store %s: %s", st->dir, mdb_strerror(rc));
		return map_err(rc);
	}
	queue_clear(st);
	return 0;
}

/* ==== Reading ==== */

int
hearth_store_episodes_each(hearth_store *st, long limit, hearth_store_visit_fn fn, void *ud)
{
	const unsigned char *kp;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	char key[48];
	long n = 0;
	int rc, ret = 0;

	if (!st || !fn)
		return HEARTH_E_INVALID;
	rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc != MDB_SUCCESS)
		return map_err(rc);
	rc = mdb_cursor_open(txn, st->dbi[HEARTH_DB_EPISODES], &cur);
	if (rc != MDB_SUCCESS)
		goto abort_txn;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
		if (limit > 0 && n >= limit)
			break;
		if (k.mv_size != EPISODE_KEY_LEN) {
			rc = MDB_CORRUPTED;
			break;
		}
		kp = k.mv_data;
		snprintf(key, sizeof(key), "%" PRId64 "-%" PRIu64, (int64_t)get_be64(kp),
		         get_be64(kp + 8));
		n++;
		ret = fn(ud, key, v.mv_data, v.mv_size);
		if (ret)
			break;
	}
	if (rc == MDB_NOTFOUND)
		rc = MDB_SUCCESS;
	mdb_cursor_close(cur);
abort_txn:
	mdb_txn_abort(txn);
	if (rc != MDB_SUCCESS)
		return map_err(rc);
	return ret < 0 ? ret : 0;
}

int
hearth_store_devices_each(hearth_store *st, hearth_store_visit_fn fn, void *ud)
{
	return store__each(st, HEARTH_DB_DEVICES, NULL, false, 511, fn, ud);
}

/* ==== Inside memory/ (store_internal.h) ==== */

void **
store__slot(hearth_store *st, enum store_slot id)
{
	return &st->slots[id];
}

const char *
store__db_name(enum hearth_db db)
{
	return db_names[db];
}

MDB_env *
store__env(hearth_store *st)
{
	return st->env;
}

MDB_dbi
store__dbi(const hearth_store *st, enum hearth_db db)
{
	return st->dbi[db];
}

bool
store__has_db(const hearth_store *st, enum hearth_db db)
{
	return st->have[db];
}

const char *
store__dir(const hearth_store *st)
{
	return st->dir;
}

bool
store__read_only(const hearth_store *st)
{
	return st->read_only;
}

int
store__migrated_from(const hearth_store *st)
{
	return st->migrated_from;
}

int
store__put(hearth_store *st, enum hearth_db db, const void *key, size_t klen, const void *val,
           size_t vlen)
{
	if (!st || !klen || klen > (size_t)mdb_env_get_maxkeysize(st->env) || !val || !vlen)
		return HEARTH_E_INVALID;
	return enqueue(st, OP_PUT, db, key, klen, val, vlen);
}

int
store__del(hearth_store *st, enum hearth_db db, const void *key, size_t klen)
{
	if (!st || !klen || klen > (size_t)mdb_env_get_maxkeysize(st->env))
		return HEARTH_E_INVALID;
	return enqueue(st, OP_DEL, db, key, klen, NULL, 0);
}

int
store__queue_apply(hearth_store *st, store__apply_fn fn, const void *data, size_t len)
{
	if (!st || !fn)
		return HEARTH_E_INVALID;
	return enqueue_op(st, OP_APPLY, HEARTH_DB_META, fn, NULL, 0, data, len);
}

int
store__each(hearth_store *st, enum hearth_db db, const char *prefix, bool strip, size_t key_max,
            hearth_store_visit_fn fn, void *ud)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	char *key;
	int err, rc, ret = 0;

	if (!st || !fn)
		return HEARTH_E_INVALID;
	if (!st->have[db])
		return 0; /* a read-only open of a store older than the database */
	if (!(key = hearth_malloc(key_max + 1)))
		return -ENOMEM;
	if ((err = store__read_txn(st, &txn))) {
		hearth_free(key);
		return err;
	}
	rc = mdb_cursor_open(txn, st->dbi[db], &cur);
	if (rc != MDB_SUCCESS)
		goto abort_txn;
	k.mv_size = plen;
	k.mv_data = (void *)prefix;
	for (rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		size_t skip = strip ? plen : 0;

		if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
			break;
		if (k.mv_size - skip > key_max) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(key, (const char *)k.mv_data + skip, k.mv_size - skip);
		key[k.mv_size - skip] = '\0';
		if ((ret = fn(ud, key, v.mv_data, v.mv_size)))
			break;
	}
	if (rc == MDB_NOTFOUND)
		rc = MDB_SUCCESS;
	mdb_cursor_close(cur);
abort_txn:
	mdb_txn_abort(txn);
	hearth_free(key);
	if (rc != MDB_SUCCESS)
		return map_err(rc);
	return ret < 0 ? ret : 0;
}

int
store__on_commit(hearth_store *st, store__commit_fn fn, void *ud)
{
	if (st->nhooks >= (int)(sizeof(st->hooks) / sizeof(st->hooks[0])))
		return HEARTH_E_FULL;
	st->hooks[st->nhooks++] = (struct hook){fn, ud};
	return 0;
}

int
store__read_txn(hearth_store *st, MDB_txn **txn)
{
	return map_err(txn_begin(st, MDB_RDONLY, txn));
}

int
store__map_err(int rc)
{
	return map_err(rc);
}
