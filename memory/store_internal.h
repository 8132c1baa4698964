/*
 * store_internal.h - what the modules of memory/ share about the store (the
 * environment, the named databases, the write queue). Never included from
 * outside memory/: the layers above use the public headers only.
 *
 * Writes are queued and committed together by hearth_store_flush() (group
 * commit). A module queues plain puts and deletes, or an "apply" op: a
 * function run inside the flush transaction at its place in the queue, with
 * a copy of the bytes it was given (the audit chain uses it to hash each
 * record against the record actually before it). Commit hooks run after the
 * queue, still inside the transaction (windows, retention).
 */
#ifndef HEARTH_MEMORY_STORE_INTERNAL_H
#define HEARTH_MEMORY_STORE_INTERNAL_H

#include "memory/store.h"

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>

/* The named databases of DESIGN.md section 3. */
enum hearth_db {
	HEARTH_DB_META,
	HEARTH_DB_EPISODES,
	HEARTH_DB_DEVICES,
	HEARTH_DB_SEMANTIC,
	HEARTH_DB_CONSTRAINTS,
	HEARTH_DB_RECIPES,
	HEARTH_DB_JOURNAL,
	HEARTH_DB_CONSENTS,
	HEARTH_DB_AUDIT,
	HEARTH_DB_SECRETS,
	HEARTH_DB_COUNT
};

/* Runs inside the flush transaction; returns an LMDB code (MDB_SUCCESS). */
typedef int (*store__apply_fn)(hearth_store *st, MDB_txn *txn, const void *data, size_t len);
typedef int (*store__commit_fn)(void *ud, MDB_txn *txn);

/* A one-line reason into why (may be NULL or 0 long), printf-style. */
void store__say(char *why, size_t why_len, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* The database's name in the environment ("episodes"). */
const char *store__db_name(enum hearth_db db);
/* mkdir -p; every directory it creates gets mode 0700. 0 or -errno. */
int store__make_dirs(const char *dir);

MDB_env *store__env(hearth_store *st);
MDB_dbi store__dbi(const hearth_store *st, enum hearth_db db);
/* false only for a read-only open of a store older than the database. */
bool store__has_db(const hearth_store *st, enum hearth_db db);
const char *store__dir(const hearth_store *st);
bool store__read_only(const hearth_store *st);
/* The schema this open migrated the store from, or 0. */
int store__migrated_from(const hearth_store *st);

/* Queue a put / delete (key and value are copied). 0 or a negative error. */
int store__put(hearth_store *st, enum hearth_db db, const void *key, size_t klen, const void *val,
               size_t vlen);
int store__del(hearth_store *st, enum hearth_db db, const void *key, size_t klen);
/* Queue fn(st, txn, copy of data, len) to run at this place in the flush. */
int store__queue_apply(hearth_store *st, store__apply_fn fn, const void *data, size_t len);
/* Run fn(ud, txn) at every flush, after the queue. At most 8 hooks. */
int store__on_commit(hearth_store *st, store__commit_fn fn, void *ud);

/* Module state kept with the store, one pointer per module; NULL until the
 * module sets it. hearth_store_close() lets each module release its own
 * (hearth_audit_forget wipes the seal key) before the store goes. */
enum store_slot { STORE_SLOT_AUDIT, STORE_SLOT_COUNT };
void **store__slot(hearth_store *st, enum store_slot id);

/*
 * Visit the records of db whose key starts with prefix (NULL: all), in key
 * order. fn gets the key as a string (after the prefix when strip), at most
 * key_max bytes (a longer key is corruption), and the value. A non-zero
 * return stops the walk; a negative one is returned. 0 or a negative error.
 */
int store__each(hearth_store *st, enum hearth_db db, const char *prefix, bool strip, size_t key_max,
                hearth_store_visit_fn fn, void *ud);

/* A read-only transaction (the caller aborts it). 0 or a negative error. */
int store__read_txn(hearth_store *st, MDB_txn **txn);
/* An LMDB return code as a hearth error. */
int store__map_err(int rc);

#endif
