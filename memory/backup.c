/*
 * backup.c - hot backups, their validation, and restore.
 *
 * A backup is made beside the running daemon: the live store is opened
 * read-only (LMDB readers never block its writer) and mdb_env_copyfd2 with
 * MDB_CP_COMPACT writes every page one read transaction sees, renumbered and
 * without the free ones, into a file this module created 0600. The copy is
 * then validated like any backup and only a copy that validates gets its
 * manifest (backup.json: size and SHA-256). Validation is ordered so that
 * LMDB never maps bytes that could crash it: the checksum comes first, then
 * the file's size against the pages its last transaction uses, and only
 * then the walk of every named database, the JSON records, meta and the
 * audit chain. Restore holds hearthd's own lock on the data dir for its
 * whole run, validates before it writes anything, and replaces data.mdb by
 * rename only, keeping the old file. This module never prints, never
 * touches a live store except through a read-only open, and never deletes
 * what it did not create, except lock.mdb after a restore.
 */
#include "memory/backup.h"
#include "memory/audit.h"
#include "memory/store_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "platform/alloc.h"
#include "platform/clock.h"
#include "platform/crypto.h"
#include "platform/err.h"
#include "platform/json.h"
#include "platform/log.h"

#define DATA_FILE        "data.mdb"
#define LMDB_LOCK_FILE   "lock.mdb"
#define DAEMON_LOCK_FILE "hearthd.lock"
#define RESTORE_TMP      DATA_FILE ".restore-tmp"
#define KEPT_PREFIX      DATA_FILE ".before-restore-"
#define MANIFEST_FORMAT  "hearth-backup"
#define MANIFEST_VERSION 1
#define MANIFEST_MAX     (64 * 1024)
#define HOME_ID_MAX      64
#define COPY_CHUNK       (256 * 1024)
#define PATH_LEN         4096

_Static_assert(HEARTH_DB_COUNT <= HEARTH_BACKUP_DBS_MAX, "raise HEARTH_BACKUP_DBS_MAX");

/* What the manifest of a backup says. */
struct manifest {
	bool present;
	uint64_t bytes;
	char sha256[65];
	int64_t created_at;
};

/* ==== Helpers ==== */

/* dir "/" name into buf; -ENAMETOOLONG when it does not fit. */
static int
join(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The databases a store of this schema has (schema 1: meta, episodes, devices). */
static int
dbs_of_schema(int schema)
{
	return schema == 1 ? HEARTH_DB_DEVICES + 1 : HEARTH_DB_COUNT;
}

static bool
is_json_db(int db)
{
	return db == HEARTH_DB_EPISODES || db == HEARTH_DB_DEVICES || db == HEARTH_DB_JOURNAL;
}

/* A key for a message: an episode's "<ts>-<seq>", else printable text, cut. */
static void
show_key(char *buf, size_t len, int db, const MDB_val *k)
{
	const unsigned char *p = k->mv_data;
	size_t n = 0;

	if (db == HEARTH_DB_EPISODES && k->mv_size == 16) {
		uint64_t ts = 0, seq = 0;

		for (int i = 0; i < 8; i++) {
			ts = (ts << 8) | p[i];
			seq = (seq << 8) | p[8 + i];
		}
		snprintf(buf, len, "%" PRId64 "-%" PRIu64, (int64_t)ts, seq);
		return;
	}
	for (size_t i = 0; i < k->mv_size && n + 4 < len && i < 64; i++)
		buf[n++] = p[i] < 0x20 || p[i] >= 0x7f ? '?' : (char)p[i];
	if (k->mv_size > 64 && n + 4 < len) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
}

/* 1 when dir has no entry, 0 when it has one, or -errno. */
static int
dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	}
	closedir(d);
	return empty;
}

/* fsync a directory, so the renames and creations in it are durable. */
static int
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		err = -errno;
	close(fd);
	return err;
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* SHA-256 of the first size bytes of fd, as lowercase hex. */
static int
file_sha256(int fd, uint64_t size, char hex[65])
{
	uint8_t md[HEARTH_SHA256_LEN];
	void *map = NULL;
	int err;

	if (size > SIZE_MAX)
		return -EFBIG;
	if (size) {
		map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED)
			return -errno;
	}
	err = hearth_sha256(size ? map : "", (size_t)size, md);
	if (size)
		munmap(map, (size_t)size);
	if (!err)
		hearth_hex_encode(md, sizeof(md), hex);
	return err;
}

/* ==== Manifest ==== */

/* Read dir/backup.json into m (m->present false when there is none). */
static int
manifest_read(const char *dir, struct manifest *m, char *why, size_t why_len)
{
	char path[PATH_LEN], jwhy[96] = "";
	const char *sha, *fmt;
	long long bytes, version;
	double created = 0;
	cJSON *doc = NULL;
	struct stat sb;
	char *buf = NULL;
	ssize_t n;
	int fd, err;

	memset(m, 0, sizeof(*m));
	if ((err = join(path, sizeof(path), dir, HEARTH_BACKUP_MANIFEST)))
		goto io_fail;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0) {
		err = -errno;
		goto io_fail;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > MANIFEST_MAX) {
		close(fd);
		snprintf(jwhy, sizeof(jwhy), "not a small regular file");
		goto bad;
	}
	buf = hearth_malloc((size_t)sb.st_size + 1);
	if (!buf) {
		close(fd);
		err = -ENOMEM;
		goto io_fail;
	}
	n = read(fd, buf, (size_t)sb.st_size);
	err = n < 0 ? -errno : 0;
	close(fd);
	if (err)
		goto io_fail;
	err = hearth_json_parse(buf, (size_t)n, &doc, jwhy, sizeof(jwhy));
	if (err == -ENOMEM)
		goto io_fail;
	if (err)
		goto bad;
	if (hearth_json_get_str(doc, "format", &fmt) || strcmp(fmt, MANIFEST_FORMAT) ||
	    hearth_json_get_int(doc, "version", &version)) {
		snprintf(jwhy, sizeof(jwhy), "not a hearth backup manifest");
		goto bad;
	}
	if (version > MANIFEST_VERSION) {
		hearth_free(buf);
		cJSON_Delete(doc);
		store__say(why, why_len,
		           "%s was written by a newer hearth (manifest version %lld): restore with "
		           "that "
		           "version",
		           path, version);
		return HEARTH_E_SCHEMA;
	}
	if (hearth_json_get_int(doc, "bytes", &bytes) || bytes < 0 ||
	    hearth_json_get_str(doc, "sha256", &sha) || strlen(sha) != 64 ||
	    strspn(sha, "0123456789abcdef") != 64) {
		snprintf(jwhy, sizeof(jwhy), "no valid \"bytes\" and \"sha256\"");
		goto bad;
	}
	hearth_json_get_num(doc, "created_at", &created);
	m->present = true;
	m->bytes = (uint64_t)bytes;
	memcpy(m->sha256, sha, 65);
	m->created_at = (int64_t)created;
	hearth_free(buf);
	cJSON_Delete(doc);
	return 0;

bad:
	hearth_free(buf);
	cJSON_Delete(doc);
	store__say(why, why_len,
	           "%s is damaged (%s): use another backup, or delete it to check the copy without "
	           "its "
	           "checksum",
	           path, jwhy);
	return HEARTH_E_CORRUPT;
io_fail:
	hearth_free(buf);
	store__say(why, why_len, "cannot read %s/%s: %s", dir, HEARTH_BACKUP_MANIFEST,
	           hearth_strerror(err));
	return err;
}

/* Write dir/backup.json (0600) through a temporary file and a rename. */
static int
manifest_write(const char *dir, const char *source, const struct hearth_backup_report *r,
               int64_t now, char *why, size_t why_len)
{
	char path[PATH_LEN], tmp[PATH_LEN];
	cJSON *doc = cJSON_CreateObject();
	char *text = NULL;
	int fd = -1, err;

	if ((err = join(path, sizeof(path), dir, HEARTH_BACKUP_MANIFEST)) ||
	    (err = join(tmp, sizeof(tmp), dir, HEARTH_BACKUP_MANIFEST ".tmp")))
		goto fail;
	err = -ENOMEM;
	if (!doc || !cJSON_AddStringToObject(doc, "format", MANIFEST_FORMAT) ||
	    !cJSON_AddNumberToObject(doc, "version", MANIFEST_VERSION) ||
	    !cJSON_AddStringToObject(doc, "hearth", HEARTH_VERSION) ||
	    !cJSON_AddNumberToObject(doc, "created_at", (double)now) ||
	    !cJSON_AddStringToObject(doc, "source", source) ||
	    !cJSON_AddStringToObject(doc, "home", r->home_id) ||
	    !cJSON_AddNumberToObject(doc, "schema", r->schema_version) ||
	    !cJSON_AddNumberToObject(doc, "bytes", (double)r->bytes) ||
	    !cJSON_AddStringToObject(doc, "sha256", r->sha256) ||
	    !cJSON_AddNumberToObject(doc, "episodes", (double)r->episodes) ||
	    !cJSON_AddNumberToObject(doc, "devices", (double)r->devices) ||
	    !cJSON_AddNumberToObject(doc, "audit_records", (double)r->audit_records))
		goto fail;
	text = hearth_json_print(doc);
	if (!text)
		goto fail;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	err = write_all(fd, text, strlen(text));
	if (!err)
		err = write_all(fd, "\n", 1);
	if (!err && fsync(fd) < 0)
		err = -errno;
	close(fd);
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	if (!err)
		err = sync_dir(dir);
fail:
	if (err)
		store__say(why, why_len, "cannot write %s/%s: %s", dir, HEARTH_BACKUP_MANIFEST,
		           hearth_strerror(err));
	hearth_free(text);
	cJSON_Delete(doc);
	return err;
}

/* ==== Validation ==== */

/* Read every entry of one database; parse the JSON ones. */
static int
walk_db(MDB_txn *txn, MDB_dbi dbi, int db, const char *dir, const char *fix,
        struct hearth_backup_report *r, char *why, size_t why_len)
{
	static const char *const what[HEARTH_DB_COUNT] = {
	        [HEARTH_DB_EPISODES] = "episode",
	        [HEARTH_DB_DEVICES] = "device",
	        [HEARTH_DB_JOURNAL] = "journal entry",
	};
	char key[96], jwhy[96];
	MDB_cursor *cur;
	MDB_stat ms;
	MDB_val k, v;
	long n = 0;
	int err = 0, rc;

	rc = mdb_stat(txn, dbi, &ms);
	if (rc == MDB_SUCCESS)
		rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != MDB_SUCCESS)
		goto lmdb_fail;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		cJSON *doc;

		n++;
		if (!is_json_db(db))
			continue;
		err = hearth_json_parse(v.mv_data, v.mv_size, &doc, jwhy, sizeof(jwhy));
		cJSON_Delete(doc);
		if (err == -ENOMEM) {
			store__say(why, why_len, "out of memory checking %s", dir);
			break;
		}
		if (err) {
			show_key(key, sizeof(key), db, &k);
			store__say(why, why_len, "%s: %s %s is not valid JSON (%s): %s", dir,
			           what[db], key, jwhy, fix);
			err = HEARTH_E_CORRUPT;
			break;
		}
	}
	mdb_cursor_close(cur);
	if (err)
		return err;
	if (rc != MDB_NOTFOUND)
		goto lmdb_fail;
	if ((size_t)n != ms.ms_entries) {
		store__say(why, why_len,
		           "%s: database \"%s\" has %ld readable entries, its header says %zu: %s",
		           dir, store__db_name(db), n, ms.ms_entries, fix);
		return HEARTH_E_CORRUPT;
	}
	r->dbs[db].entries = n;
	r->entries += n;
	if (db == HEARTH_DB_EPISODES)
		r->episodes = n;
	else if (db == HEARTH_DB_DEVICES)
		r->devices = n;
	else if (db == HEARTH_DB_JOURNAL)
		r->journal = n;
	return 0;

lmdb_fail:
	store__say(why, why_len, "%s: database \"%s\" cannot be read to its end (%s): %s", dir,
	           store__db_name(db), mdb_strerror(rc), fix);
	return HEARTH_E_CORRUPT;
}

/* One meta value as text; MDB_NOTFOUND or MDB_CORRUPTED (too long). */
static int
meta_text(MDB_txn *txn, MDB_dbi dbi, const char *name, char *buf, size_t len)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(txn, dbi, &k, &v);

	if (rc != MDB_SUCCESS)
		return rc;
	if (v.mv_size >= len || memchr(v.mv_data, '\0', v.mv_size))
		return MDB_CORRUPTED;
	memcpy(buf, v.mv_data, v.mv_size);
	buf[v.mv_size] = '\0';
	return MDB_SUCCESS;
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

/* Meta: a schema this hearth knows (not newer), a home id, a creation time. */
static int
check_meta(MDB_txn *txn, MDB_dbi dbi, const char *dir, const char *fix,
           struct hearth_backup_report *r, char *why, size_t why_len)
{
	char buf[HOME_ID_MAX + 1];
	int64_t v;

	if (meta_text(txn, dbi, "schema_version", buf, sizeof(buf)) != MDB_SUCCESS ||
	    !parse_i64(buf, &v) || v < 1 || v > INT32_MAX) {
		store__say(why, why_len, "%s has no valid schema version in meta: %s", dir, fix);
		return HEARTH_E_CORRUPT;
	}
	r->schema_version = (int)v;
	if (v > HEARTH_SCHEMA_VERSION) {
		store__say(why, why_len,
		           "%s was written by schema %d, this hearth knows up to %d: restore it "
		           "with a "
		           "newer hearth",
		           dir, r->schema_version, HEARTH_SCHEMA_VERSION);
		return HEARTH_E_SCHEMA;
	}
	if (meta_text(txn, dbi, "home_id", r->home_id, sizeof(r->home_id)) != MDB_SUCCESS ||
	    !r->home_id[0]) {
		r->home_id[0] = '\0';
		store__say(why, why_len, "%s has no home id in meta: %s", dir, fix);
		return HEARTH_E_CORRUPT;
	}
	if (meta_text(txn, dbi, "created_at", buf, sizeof(buf)) != MDB_SUCCESS ||
	    !parse_i64(buf, &r->created_at)) {
		store__say(why, why_len, "%s has no valid creation time in meta: %s", dir, fix);
		return HEARTH_E_CORRUPT;
	}
	return 0;
}

/*
 * The walk, on a lock-less read-only environment of its own (nothing else
 * writes to a backup): size against the last page, meta, every database.
 */
static int
check_lmdb(const char *dir, const char *fix, struct hearth_backup_report *r, char *why,
           size_t why_len)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_envinfo ei;
	MDB_stat es;
	MDB_dbi dbi;
	uint64_t need;
	int err, rc;

	rc = mdb_env_create(&env);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_set_maxdbs(env, 32);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK | MDB_NORDAHEAD, 0600);
	if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED) {
		store__say(why, why_len, "%s/%s is not a readable LMDB store (%s): %s", dir,
		           DATA_FILE, mdb_strerror(rc), fix);
		err = HEARTH_E_CORRUPT;
		goto close_env;
	}
	if (rc == MDB_SUCCESS)
		rc = mdb_env_info(env, &ei);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_stat(env, &es);
	if (rc != MDB_SUCCESS) {
		store__say(why, why_len, "cannot open %s/%s: %s", dir, DATA_FILE, mdb_strerror(rc));
		err = store__map_err(rc);
		goto close_env;
	}
	/* Pages past the end of the file would fault (SIGBUS) when read. */
	need = ((uint64_t)ei.me_last_pgno + 1) * es.ms_psize;
	if (r->bytes < need) {
		store__say(why, why_len,
		           "%s/%s is truncated: its last transaction needs %" PRIu64
		           " bytes, the file has %" PRIu64 ": %s",
		           dir, DATA_FILE, need, r->bytes, fix);
		err = HEARTH_E_CORRUPT;
		goto close_env;
	}
	rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc == MDB_SUCCESS)
		rc = mdb_dbi_open(txn, store__db_name(HEARTH_DB_META), 0, &dbi);
	if (rc == MDB_NOTFOUND) {
		store__say(why, why_len, "%s holds no hearth store (no meta database): %s", dir,
		           fix);
		err = HEARTH_E_CORRUPT;
		goto abort_txn;
	}
	if (rc != MDB_SUCCESS) {
		store__say(why, why_len, "%s: cannot read meta (%s): %s", dir, mdb_strerror(rc),
		           fix);
		err = HEARTH_E_CORRUPT;
		goto abort_txn;
	}
	err = check_meta(txn, dbi, dir, fix, r, why, why_len);
	if (err)
		goto abort_txn;
	r->ndbs = HEARTH_DB_COUNT;
	for (int i = 0; i < HEARTH_DB_COUNT; i++) {
		r->dbs[i].name = store__db_name(i);
		rc = mdb_dbi_open(txn, store__db_name(i), 0, &dbi);
		if (rc == MDB_NOTFOUND && i >= dbs_of_schema(r->schema_version))
			continue;
		if (rc == MDB_NOTFOUND) {
			store__say(why, why_len, "%s lacks the database \"%s\" of schema %d: %s",
			           dir, store__db_name(i), r->schema_version, fix);
			err = HEARTH_E_CORRUPT;
			goto abort_txn;
		}
		if (rc != MDB_SUCCESS) {
			store__say(why, why_len, "%s: database \"%s\" cannot be opened (%s): %s",
			           dir, store__db_name(i), mdb_strerror(rc), fix);
			err = HEARTH_E_CORRUPT;
			goto abort_txn;
		}
		r->dbs[i].present = true;
		err = walk_db(txn, dbi, i, dir, fix, r, why, why_len);
		if (err)
			goto abort_txn;
	}
	err = 0;
abort_txn:
	if (txn)
		mdb_txn_abort(txn);
close_env:
	if (env)
		mdb_env_close(env);
	return err;
}

/* The store's own open (meta rules of store.c) and the audit chain. */
static int
check_store(const char *dir, const uint8_t *audit_key, const char *fix,
            struct hearth_backup_report *r, char *why, size_t why_len)
{
	struct hearth_store_opts o = {.dir = dir, .read_only = true};
	struct hearth_audit_report ar;
	hearth_store *st;
	int err;

	err = hearth_store_open(&o, &st, why, why_len);
	if (err)
		return err;
	if (audit_key)
		err = hearth_audit_set_seal_key(st, audit_key);
	if (err) {
		store__say(why, why_len, "cannot use the audit seal key: %s", hearth_strerror(err));
		goto close_store;
	}
	memset(&ar, 0, sizeof(ar));
	err = hearth_audit_verify(st, &ar);
	if (err == HEARTH_E_CORRUPT && ar.why[0]) { /* ar.why names the record */
		store__say(why, why_len, "%s: the audit chain does not verify: %s; %s", dir, ar.why,
		           fix);
	} else if (err == HEARTH_E_CORRUPT) {
		store__say(why, why_len,
		           "%s: the audit chain does not verify at record %" PRIu64 ": %s", dir,
		           ar.bad_seq, fix);
	} else if (err == HEARTH_E_CONFIG) {
		store__say(why, why_len, "%s: the audit chain cannot be verified: %s", dir,
		           ar.why[0] ? ar.why : "its records are sealed and no seal key was given");
	} else if (err) {
		store__say(why, why_len, "%s: cannot read the audit chain: %s", dir,
		           hearth_strerror(err));
	} else {
		r->audit_checked = true;
		r->audit_records = ar.records;
		r->audit_last_seq = ar.last_seq;
	}
close_store:
	hearth_audit_forget(st);
	hearth_store_close(st);
	return err;
}

/* Validation; fix is what the reason tells the user to do about a damaged copy. */
static int
validate(const char *dir, const uint8_t *audit_key, const char *fix, struct hearth_backup_report *r,
         char *why, size_t why_len)
{
	char path[PATH_LEN], lock[PATH_LEN];
	struct manifest m;
	bool had_lock;
	struct stat sb;
	int fd, err;

	memset(r, 0, sizeof(*r));
	store__say(why, why_len, "%s", "");
	if (!dir || !dir[0]) {
		store__say(why, why_len, "no backup dir given");
		return HEARTH_E_INVALID;
	}
	if ((err = join(path, sizeof(path), dir, DATA_FILE)) ||
	    (err = join(lock, sizeof(lock), dir, LMDB_LOCK_FILE))) {
		store__say(why, why_len, "the path %s is too long", dir);
		return err;
	}
	if (stat(dir, &sb) < 0) {
		err = errno == ENOENT || errno == ENOTDIR ? HEARTH_E_NOT_FOUND : -errno;
		store__say(why, why_len, "no backup in %s: %s", dir,
		           err == HEARTH_E_NOT_FOUND ? "it does not exist" : strerror(-err));
		return err;
	}
	if (!S_ISDIR(sb.st_mode)) {
		store__say(why, why_len, "no backup in %s: it is not a directory", dir);
		return HEARTH_E_NOT_FOUND;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		store__say(why, why_len, "no %s in %s: is it a hearth backup?", DATA_FILE, dir);
		return HEARTH_E_NOT_FOUND;
	}
	if (fd < 0) {
		err = -errno;
		store__say(why, why_len, "cannot read %s: %s", path, strerror(-err));
		return err;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		store__say(why, why_len, "%s is not a regular file: %s", path, fix);
		return HEARTH_E_CORRUPT;
	}
	r->bytes = (uint64_t)sb.st_size;

	/* The checksum first: LMDB must never map a damaged file. */
	err = manifest_read(dir, &m, why, why_len);
	if (!err && m.present && m.bytes != r->bytes) {
		store__say(why, why_len,
		           "%s has %" PRIu64 " bytes, %s recorded %" PRIu64
		           ": the copy is damaged (truncated or changed), %s",
		           path, r->bytes, HEARTH_BACKUP_MANIFEST, m.bytes, fix);
		err = HEARTH_E_CORRUPT;
	}
	if (!err) {
		err = file_sha256(fd, r->bytes, r->sha256);
		if (err)
			store__say(why, why_len, "cannot read %s: %s", path, hearth_strerror(err));
	}
	close(fd);
	if (err)
		return err;
	if (m.present && strcmp(m.sha256, r->sha256) != 0) {
		store__say(why, why_len,
		           "%s does not match the SHA-256 recorded in %s: the copy is damaged, %s",
		           path, HEARTH_BACKUP_MANIFEST, fix);
		return HEARTH_E_CORRUPT;
	}
	r->manifest = m.present;
	r->backup_at = m.created_at;

	err = check_lmdb(dir, fix, r, why, why_len);
	if (err || r->schema_version < HEARTH_SCHEMA_VERSION)
		return err; /* an older store has no audit chain; hearthd migrates it */

	had_lock = access(lock, F_OK) == 0;
	err = check_store(dir, audit_key, fix, r, why, why_len);
	/* The read-only open made lock.mdb: a backup holds data.mdb only. */
	if (!had_lock)
		unlink(lock);
	return err;
}

int
hearth_backup_validate(const char *dir, const uint8_t *audit_key, struct hearth_backup_report *out,
                       char *why, size_t why_len)
{
	struct hearth_backup_report local;

	return validate(dir, audit_key, "use another backup", out ? out : &local, why, why_len);
}

/* ==== Backup ==== */

/* Copy the store's current snapshot, compacted, into fd. An LMDB code. */
static int
copy_compact(hearth_store *st, int fd)
{
	MDB_env *env = store__env(st);
	int rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);

	if (rc == MDB_MAP_RESIZED) {
		/* hearthd grew the map since we opened: adopt its size, start over. */
		rc = mdb_env_set_mapsize(env, 0);
		if (rc == MDB_SUCCESS && (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0))
			rc = errno;
		if (rc == MDB_SUCCESS)
			rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
	}
	return rc;
}

int
hearth_backup_make(const char *data_dir, const char *dest_dir, const uint8_t *audit_key,
                   struct hearth_backup_report *out, char *why, size_t why_len)
{
	struct hearth_store_opts o = {.dir = data_dir, .read_only = true};
	struct hearth_backup_report local;
	struct hearth_backup_report *r = out ? out : &local;
	char path[PATH_LEN], vwhy[512];
	bool created = false;
	hearth_store *st = NULL;
	struct stat sb;
	int64_t now;
	int fd = -1, err, rc;

	memset(r, 0, sizeof(*r));
	store__say(why, why_len, "%s", "");
	if (!data_dir || !data_dir[0] || !dest_dir || !dest_dir[0]) {
		store__say(why, why_len, "a backup needs a data dir and a destination dir");
		return HEARTH_E_INVALID;
	}
	if (join(path, sizeof(path), dest_dir, DATA_FILE)) {
		store__say(why, why_len, "the path %s is too long", dest_dir);
		return -ENAMETOOLONG;
	}
	if (stat(dest_dir, &sb) == 0) {
		if (!S_ISDIR(sb.st_mode)) {
			store__say(why, why_len,
			           "%s exists and is not a directory: back up into a new or empty "
			           "directory",
			           dest_dir);
			return -ENOTDIR;
		}
		err = dir_empty(dest_dir);
		if (err <= 0) {
			if (err == 0)
				store__say(
				        why, why_len,
				        "%s is not empty: back up into a new or empty directory (a "
				        "backup never overwrites)",
				        dest_dir);
			else
				store__say(why, why_len, "cannot read %s: %s", dest_dir,
				           strerror(-err));
			return err == 0 ? HEARTH_E_INVALID : err;
		}
	} else if (errno != ENOENT) {
		err = -errno;
		store__say(why, why_len, "cannot use %s: %s", dest_dir, strerror(-err));
		return err;
	}

	/* Open the live store first: nothing is created for a store that is not there. */
	err = hearth_store_open(&o, &st, why, why_len);
	if (err)
		return err;
	if (stat(dest_dir, &sb) < 0) {
		err = store__make_dirs(dest_dir);
		if (err) {
			store__say(why, why_len, "cannot create %s: %s", dest_dir, strerror(-err));
			goto close_store;
		}
		created = true;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		store__say(why, why_len, "cannot create %s: %s", path, strerror(-err));
		goto remove_dir;
	}
	rc = copy_compact(st, fd);
	if (rc != MDB_SUCCESS) {
		err = store__map_err(rc);
		store__say(why, why_len, "cannot copy store %s to %s: %s", data_dir, dest_dir,
		           mdb_strerror(rc));
		goto remove_copy;
	}
	if (fsync(fd) < 0) {
		err = -errno;
		store__say(why, why_len, "cannot write %s: %s", path, strerror(-err));
		goto remove_copy;
	}
	close(fd);
	fd = -1;
	hearth_store_close(st);
	st = NULL;
	now = hearth_wall_ms();
	err = sync_dir(dest_dir);
	if (err) {
		store__say(why, why_len, "cannot write %s: %s", dest_dir, strerror(-err));
		goto remove_copy;
	}

	err = validate(dest_dir, audit_key,
	               "the store itself is damaged (run hearthctl audit verify, or restore an "
	               "earlier backup)",
	               r, vwhy, sizeof(vwhy));
	if (err) {
		/* Keep the evidence; without a manifest no restore takes it. */
		store__say(why, why_len, "%s (the copy stays in %s without %s)", vwhy, dest_dir,
		           HEARTH_BACKUP_MANIFEST);
		LOG_DEBUG("backup", "backup of %s into %s does not validate: %s", data_dir,
		          dest_dir, vwhy);
		return err;
	}
	err = manifest_write(dest_dir, data_dir, r, now, why, why_len);
	if (err)
		return err;
	r->manifest = true;
	r->backup_at = now;
	LOG_DEBUG("backup", "backed up %s into %s: %" PRIu64 " bytes, schema %d, %ld episodes",
	          data_dir, dest_dir, r->bytes, r->schema_version, r->episodes);
	return 0;

remove_copy:
	if (fd >= 0)
		close(fd);
	unlink(path);
remove_dir:
	if (created)
		rmdir(dest_dir);
close_store:
	hearth_store_close(st);
	return err;
}

/* ==== Restore ==== */

/*
 * Take hearthd's lock on data_dir (hub.c: an exclusive flock on
 * DATA/hearthd.lock for the daemon's life). Returns the fd holding it.
 */
static int
lock_data_dir(const char *data_dir, char *why, size_t why_len)
{
	char path[PATH_LEN];
	int fd, err;

	if (join(path, sizeof(path), data_dir, DAEMON_LOCK_FILE)) {
		store__say(why, why_len, "the path %s is too long", data_dir);
		return -ENAMETOOLONG;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		store__say(why, why_len, "cannot open %s: %s%s", path, strerror(-err),
		           err == -EACCES ? " (run as the user hearthd runs as)" : "");
		return err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		err = errno == EWOULDBLOCK ? HEARTH_E_BUSY : -errno;
		close(fd);
		if (err == HEARTH_E_BUSY)
			store__say(why, why_len,
			           "hearthd is running with data dir %s: stop hearthd first",
			           data_dir);
		else
			store__say(why, why_len, "cannot lock %s: %s", path, strerror(-err));
		return err;
	}
	return fd;
}

/* Copy src into a new dst (0600), synced. */
static int
copy_file(const char *src, const char *dst)
{
	char *buf = hearth_malloc(COPY_CHUNK);
	int in = -1, outfd = -1, err = 0;

	if (!buf)
		return -ENOMEM;
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		err = -errno;
		goto free_buf;
	}
	outfd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (outfd < 0) {
		err = -errno;
		goto close_in;
	}
	for (;;) {
		ssize_t n = read(in, buf, COPY_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		err = write_all(outfd, buf, (size_t)n);
		if (err)
			break;
	}
	if (!err && fsync(outfd) < 0)
		err = -errno;
	close(outfd);
close_in:
	close(in);
free_buf:
	hearth_free(buf);
	return err;
}

/* SHA-256 of a whole file. */
static int
path_sha256(const char *path, char hex[65])
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	err = fstat(fd, &sb) < 0 ? -errno : file_sha256(fd, (uint64_t)sb.st_size, hex);
	close(fd);
	return err;
}

/* data.mdb.before-restore-<UTC time>[-N] that does not exist yet. */
static int
kept_name(const char *data_dir, char *buf, size_t len)
{
	time_t t = (time_t)(hearth_wall_ms() / 1000);
	char stamp[32], name[64];
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm))
		snprintf(stamp, sizeof(stamp), "%lld", (long long)t);
	for (int i = 1; i < 1000; i++) {
		if (i == 1)
			snprintf(name, sizeof(name), KEPT_PREFIX "%s", stamp);
		else
			snprintf(name, sizeof(name), KEPT_PREFIX "%s-%d", stamp, i);
		if (join(buf, len, data_dir, name))
			return -ENAMETOOLONG;
		if (access(buf, F_OK) < 0 && errno == ENOENT)
			return 0;
	}
	return -EEXIST;
}

int
hearth_backup_restore(const char *backup_dir, const char *data_dir, const uint8_t *audit_key,
                      struct hearth_restore_report *out, char *why, size_t why_len)
{
	struct hearth_restore_report local;
	struct hearth_restore_report *r = out ? out : &local;
	char src[PATH_LEN], live[PATH_LEN], tmp[PATH_LEN], lock[PATH_LEN], sha[65];
	struct stat bs, ds;
	bool have_live;
	int lock_fd = -1, err;

	memset(r, 0, sizeof(*r));
	store__say(why, why_len, "%s", "");
	if (!backup_dir || !backup_dir[0] || !data_dir || !data_dir[0]) {
		store__say(why, why_len, "a restore needs a backup dir and a data dir");
		return HEARTH_E_INVALID;
	}
	if (join(src, sizeof(src), backup_dir, DATA_FILE) ||
	    join(live, sizeof(live), data_dir, DATA_FILE) ||
	    join(tmp, sizeof(tmp), data_dir, RESTORE_TMP) ||
	    join(lock, sizeof(lock), data_dir, LMDB_LOCK_FILE)) {
		store__say(why, why_len, "the path %s or %s is too long", backup_dir, data_dir);
		return -ENAMETOOLONG;
	}
	if (stat(data_dir, &ds) == 0) {
		if (!S_ISDIR(ds.st_mode)) {
			store__say(why, why_len,
			           "%s is not a directory: give the data dir of hearthd", data_dir);
			return -ENOTDIR;
		}
		if (stat(backup_dir, &bs) == 0 && bs.st_dev == ds.st_dev &&
		    bs.st_ino == ds.st_ino) {
			store__say(why, why_len,
			           "%s is the data dir itself: restore from a backup dir",
			           backup_dir);
			return HEARTH_E_INVALID;
		}
		lock_fd = lock_data_dir(data_dir, why, why_len);
		if (lock_fd < 0)
			return lock_fd;
	} else if (errno != ENOENT) {
		err = -errno;
		store__say(why, why_len, "cannot use %s: %s", data_dir, strerror(-err));
		return err;
	}

	/* Nothing in data_dir changes before the backup validated. */
	err = hearth_backup_validate(backup_dir, audit_key, &r->backup, why, why_len);
	if (err)
		goto unlock;

	if (lock_fd < 0) {
		err = store__make_dirs(data_dir);
		if (err) {
			store__say(why, why_len, "cannot create %s: %s", data_dir, strerror(-err));
			goto unlock;
		}
		lock_fd = lock_data_dir(data_dir, why, why_len);
		if (lock_fd < 0) {
			err = lock_fd;
			goto unlock;
		}
	}
	err = copy_file(src, tmp);
	if (err) {
		store__say(why, why_len, "cannot copy %s to %s: %s", src, tmp,
		           hearth_strerror(err));
		goto remove_tmp;
	}
	/* What lands in place is what was validated, byte for byte. */
	err = path_sha256(tmp, sha);
	if (err) {
		store__say(why, why_len, "cannot read %s back: %s", tmp, hearth_strerror(err));
		goto remove_tmp;
	}
	if (strcmp(sha, r->backup.sha256) != 0) {
		store__say(why, why_len, "%s changed while it was being restored: try again", src);
		err = HEARTH_E_CORRUPT;
		goto remove_tmp;
	}

	have_live = lstat(live, &ds) == 0;
	if (have_live) {
		err = kept_name(data_dir, r->kept, sizeof(r->kept));
		if (!err && rename(live, r->kept) < 0)
			err = -errno;
		if (err) {
			store__say(why, why_len, "cannot set the current store %s aside: %s", live,
			           hearth_strerror(err));
			r->kept[0] = '\0';
			goto remove_tmp;
		}
	}
	if (rename(tmp, live) < 0) {
		err = -errno;
		store__say(why, why_len, "cannot move the restored store into %s: %s", live,
		           strerror(-err));
		if (have_live && rename(r->kept, live) == 0)
			r->kept[0] = '\0';
		goto remove_tmp;
	}
	/* The reader table in lock.mdb belonged to the old file. */
	if (unlink(lock) < 0 && errno != ENOENT)
		LOG_WARN("backup", "cannot remove %s: %s", lock, strerror(errno));
	err = sync_dir(data_dir);
	if (err)
		LOG_WARN("backup", "cannot sync %s: %s", data_dir, strerror(-err));
	LOG_DEBUG("backup", "restored %s into %s%s%s", backup_dir, data_dir,
	          r->kept[0] ? "; the previous store is kept as " : "", r->kept);
	err = 0;
	goto unlock;

remove_tmp:
	unlink(tmp);
unlock:
	if (lock_fd >= 0)
		close(lock_fd);
	return err;
}

/* ==== Usage ==== */

int
hearth_backup_db_entries(hearth_store *st, struct hearth_backup_db *out, int max)
{
	MDB_txn *txn;
	MDB_stat ms;
	int n = 0, err, rc;

	if (!st || !out || max < 0)
		return HEARTH_E_INVALID;
	err = store__read_txn(st, &txn);
	if (err)
		return err;
	for (int i = 0; i < HEARTH_DB_COUNT && n < max; i++, n++) {
		out[n].name = store__db_name(i);
		out[n].present = store__has_db(st, i);
		out[n].entries = 0;
		if (!out[n].present)
			continue;
		rc = mdb_stat(txn, store__dbi(st, i), &ms);
		if (rc != MDB_SUCCESS) {
			mdb_txn_abort(txn);
			return store__map_err(rc);
		}
		out[n].entries = (long)ms.ms_entries;
	}
	mdb_txn_abort(txn);
	return n;
}
