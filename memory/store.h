/*
 * store.h - hearth's LMDB store: one environment in the data dir, named * databases (DESIGN.md section 3): meta (schema version, home id, created
 * at), episodes and devices here; the other databases have their modules
 * (audit.h, journal.h, episodic.h, semantic.h, constraints.h, consents.h,
 * secrets.h, backup.h) on the same environment and write queue.
 *
 * The store keeps bytes and records; it knows no agent and no recipe. Writes
 * are queued in memory and committed together by hearth_store_flush(), which
 * the runtime calls once per loop turn (group commit): durability costs one
 * sync per turn, not one per message.
 */
#ifndef HEARTH_MEMORY_STORE_H
#define HEARTH_MEMORY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEARTH_SCHEMA_VERSION 2

typedef struct hearth_store hearth_store;

struct hearth_store_opts {
	const char *dir;     /* data dir; created (0700) if missing unless read_only */
	const char *home_id; /* recorded in meta at creation (NULL: "home", at most 64 chars);
				 * a store of another home is refused (unless read_only) */
	size_t map_size;     /* bytes; 0: CONFIG_HEARTH_STORE_MAP_MB MiB */
	size_t map_max;      /* ceiling the map may grow to on MDB_MAP_FULL; 0: 4 x map_size */
	long episodes_max;   /* rolling window; 0: CONFIG_HEARTH_EPISODES_MAX */
	bool read_only;      /* hearthctl reading while no daemon runs (or beside it) */
	bool no_sync;        /* durability off (tests, benchmarks); default synced */
};

struct hearth_store_info {
	int schema_version;
	int migrated_from; /* schema this open migrated from, or 0 */
	char home_id[65];
	int64_t created_at; /* ms since epoch */
	size_t map_size;    /* current map size, bytes */
	size_t map_used;    /* bytes in use (last page number x page size) */
	long episodes;      /* entries */
	long devices;       /* entries */
};

/*
 * Open (or create) the store. Calls mdb_reader_check to clear stale reader
 * slots. On error returns a negative hearth error and writes a one-line reason
 * a user can act on into why (e.g. "store /d was written by schema 3, this
 * hearthd knows up to 2: upgrade hearth"), and *out is NULL.
 */
int hearth_store_open(const struct hearth_store_opts *opts, hearth_store **out, char *why,
                      size_t why_len);
/* Flush pending writes (best effort) and close. NULL is fine. */
void hearth_store_close(hearth_store *st);

int hearth_store_info(hearth_store *st, struct hearth_store_info *out);

/*
 * Queue an episode (a JSON text record, len bytes, copied) with its time. Keys
 * are time-ordered (ts then a sequence number), so listing is chronological.
 */
int hearth_store_episode_add(hearth_store *st, int64_t ts_ms, const char *json, size_t len);
/*
 * Queue a device record (JSON text, copied) under its id, or its deletion (json NULL).
 * Both queueing calls return 0, -ENOMEM (nothing queued), HEARTH_E_INVALID (empty
 * record, id empty or over 511 bytes) or -EROFS on a read-only store.
 */
int hearth_store_device_put(hearth_store *st, const char *id, const char *json, size_t len);

/* Number of writes waiting for hearth_store_flush(). */
size_t hearth_store_pending(const hearth_store *st);
/*
 * Commit every queued write in one transaction. On MDB_MAP_FULL the map grows
 * (doubling, up to map_max) and the commit is retried; past the ceiling the
 * queued writes are dropped, nothing committed before is lost, and
 * HEARTH_E_MAP_FULL is returned with a reason in why. Also applies the
 * episode window. Returns 0 or a negative hearth error; after an error other
 * than HEARTH_E_MAP_FULL the writes stay queued for the next flush.
 */
int hearth_store_flush(hearth_store *st, char *why, size_t why_len);

/*
 * Visit episodes newest first (at most limit; 0 = all). The callback gets the
 * key as text "<ts_ms>-<sequence>" (NUL-terminated) and the JSON text (not
 * NUL-terminated; valid during the call); a non-zero return stops the walk
 * (a negative one is passed back). Returns 0 or a negative hearth error.
 */
typedef int (*hearth_store_visit_fn)(void *ud, const char *key, const char *json, size_t len);
int hearth_store_episodes_each(hearth_store *st, long limit, hearth_store_visit_fn fn, void *ud);
/* Visit device records in id order. key is the device id (NUL-terminated). */
int hearth_store_devices_each(hearth_store *st, hearth_store_visit_fn fn, void *ud);

#endif
