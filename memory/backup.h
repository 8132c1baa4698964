/*
 * backup.h - hot backups of the store, their validation, and restore
 * (DESIGN.md sections 3 and 5).
 *
 * A backup is a directory holding data.mdb, a compacted copy of the live
 * store taken inside one LMDB read transaction (so it is consistent while
 * hearthd keeps writing), and backup.json, a manifest that records the
 * copy's size and SHA-256. Validation trusts nothing: it checks the
 * manifest's checksum before LMDB maps a byte of the file, checks that the
 * file holds every page its last transaction uses, walks every named
 * database to its end, parses the JSON records (episodes, devices,
 * journal), checks the schema version and the home id, and verifies the
 * audit chain. Restore validates first and refuses a bad backup without
 * touching the live store; it then swaps data.mdb in with a rename and
 * keeps the replaced file next to it, so the owner can go back.
 *
 * Validation opens the directory without LMDB's lock: it is meant for a
 * directory no process writes to (a backup). To check a live store, take a
 * backup of it.
 *
 * audit_key: the audit seal key (HEARTH_AUDIT_KEY_LEN bytes, audit.h) when
 * the chain has sealed records, else NULL; a sealed chain without its key
 * does not validate (HEARTH_E_CONFIG).
 */
#ifndef HEARTH_MEMORY_BACKUP_H
#define HEARTH_MEMORY_BACKUP_H

#include "memory/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEARTH_BACKUP_MANIFEST "backup.json"
#define HEARTH_BACKUP_DBS_MAX  16

/* One named database: its name (a static string) and its entries. */
struct hearth_backup_db {
	const char *name;
	bool present;
	long entries;
};

/* What validation found (filled as far as it got, also on failure). */
struct hearth_backup_report {
	int schema_version;
	char home_id[65];
	int64_t created_at; /* the store's creation, ms since epoch */
	int64_t backup_at;  /* when the backup was made (manifest), 0 without one */
	uint64_t bytes;     /* size of data.mdb */
	char sha256[65];    /* of data.mdb, lowercase hex */
	bool manifest;      /* backup.json was there and its checksum matches */
	int ndbs;           /* databases of this schema, in DESIGN.md order */
	struct hearth_backup_db dbs[HEARTH_BACKUP_DBS_MAX];
	long entries;  /* all entries read, every database */
	long episodes; /* records read and parsed as JSON */
	long devices;
	long journal;
	bool audit_checked; /* false for a schema without an audit chain */
	uint64_t audit_records;
	uint64_t audit_last_seq;
};

/*
 * Back up the store in data_dir into dest_dir, which must not exist or be
 * empty (it is created with mode 0700; data.mdb and backup.json are 0600).
 * Works while hearthd runs: the store is opened read-only beside it. The
 * copy is validated before the manifest is written; when it does not
 * validate the copy stays in dest_dir without a manifest (restore refuses
 * it) and the reason is in why. out (may be NULL) gets the copy's report.
 * Returns 0 or a negative hearth error with a one-line reason in why.
 */
int hearth_backup_make(const char *data_dir, const char *dest_dir, const uint8_t *audit_key,
                       struct hearth_backup_report *out, char *why, size_t why_len);

/*
 * Validate the backup in dir (see above). A directory without backup.json
 * (a plain copy of a data dir) is checked for everything but the checksum
 * (out->manifest is false). A store of an older schema is valid (hearthd
 * migrates it); a newer one is refused. Returns 0, or HEARTH_E_CORRUPT,
 * HEARTH_E_SCHEMA, HEARTH_E_NOT_FOUND or another negative hearth error with
 * a one-line reason in why. out (may be NULL) is filled as far as it got.
 */
int hearth_backup_validate(const char *dir, const uint8_t *audit_key,
                           struct hearth_backup_report *out, char *why, size_t why_len);

struct hearth_restore_report {
	struct hearth_backup_report backup; /* what was checked */
	char kept[4096]; /* where the replaced data.mdb was kept; "" when there was none */
};

/*
 * Restore the backup in backup_dir into data_dir (created 0700 if missing,
 * so a new data dir works too). Refuses with HEARTH_E_BUSY while hearthd
 * holds data_dir/hearthd.lock (and holds that lock itself meanwhile, so no
 * hearthd starts half-way). Validates the backup and refuses a bad one with
 * the live store untouched. Then copies data.mdb to data.mdb.restore-tmp,
 * syncs it, checks its SHA-256 against the validated one, renames the live
 * data.mdb to data.mdb.before-restore-<UTC time> (kept), renames the copy
 * into place and removes lock.mdb (its reader table belongs to the old
 * file). Returns 0 or a negative hearth error with a one-line reason in
 * why; out (may be NULL) says what was checked and kept.
 */
int hearth_backup_restore(const char *backup_dir, const char *data_dir, const uint8_t *audit_key,
                          struct hearth_restore_report *out, char *why, size_t why_len);

/*
 * Entries of every named database of the open store (DESIGN.md order), for
 * `hearthctl health`. Fills at most max rows; returns their number or a
 * negative hearth error.
 */
int hearth_backup_db_entries(hearth_store *st, struct hearth_backup_db *out, int max);

#endif
