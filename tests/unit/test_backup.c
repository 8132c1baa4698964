/*
 * test_backup.c - hot backup, validation and restore (memory/backup.h): a
 * backup of a store with records in every kind of database validates, also
 * while another process keeps writing; damaged copies (bytes flipped in the
 * middle, a truncated file, one audit record edited through raw LMDB, a
 * record that is not JSON, a schema from the future) are refused with a
 * reason that names the problem; restore refuses a bad backup and a data dir
 * hearthd holds, leaving the live data.mdb byte for byte as it was, and
 * otherwise puts the backup in place and keeps the old file. Every test
 * works under its own mkdtemp directory, removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memory/audit.h"
#include "memory/backup.h"
#include "memory/journal.h"
#include "memory/store.h"
#include "platform/crypto.h"
#include "platform/err.h"

#define FIXTURE_DIR HEARTH_SOURCE_DIR "/tests/fixtures/store-v1"

struct tmp {
	char root[64];
	char data[128]; /* the live store */
	char bk[128];   /* a backup dir (not created) */
	char file[256]; /* bk/data.mdb */
	char live[256]; /* data/data.mdb */
	char manifest[256];
};

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	snprintf(t->root, sizeof(t->root), "/tmp/hearth-backup-XXXXXX");
	assert_non_null(mkdtemp(t->root));
	snprintf(t->data, sizeof(t->data), "%s/data", t->root);
	snprintf(t->bk, sizeof(t->bk), "%s/backups/one", t->root);
	snprintf(t->file, sizeof(t->file), "%s/data.mdb", t->bk);
	snprintf(t->live, sizeof(t->live), "%s/data.mdb", t->data);
	snprintf(t->manifest, sizeof(t->manifest), "%s/backup.json", t->bk);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tmp *t = *state;

	nftw(t->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

/* ==== Helpers ==== */

static hearth_store *
open_rw(const char *dir)
{
	struct hearth_store_opts o = {.dir = dir, .home_id = "home", .no_sync = true};
	hearth_store *st = NULL;
	char why[256];

	if (hearth_store_open(&o, &st, why, sizeof(why)))
		fail_msg("open %s: %s", dir, why);
	return st;
}

static void
flush_ok(hearth_store *st)
{
	char why[256];

	if (hearth_store_flush(st, why, sizeof(why)))
		fail_msg("flush: %s", why);
}

/* Episodes numbered from first, two devices, a journal entry, audit records. */
static void
fill(const char *dir, int first, int episodes, int audits)
{
	hearth_store *st = open_rw(dir);
	char buf[128];

	for (int i = first; i < first + episodes; i++) {
		snprintf(buf, sizeof(buf), "{\"id\":\"p-%d\",\"intent\":\"scene.movie_night\"}", i);
		assert_int_equal(
		        hearth_store_episode_add(st, 1700000000000LL + i, buf, strlen(buf)), 0);
	}
	assert_int_equal(hearth_store_device_put(st, "lamp-1", "{\"room\":\"living\"}", 17), 0);
	assert_int_equal(hearth_store_device_put(st, "tv-1", "{\"room\":\"living\"}", 17), 0);
	assert_int_equal(hearth_journal_put(st, "p-live", "{\"state\":\"running\"}", 19), 0);
	for (int i = 0; i < audits; i++) {
		snprintf(buf, sizeof(buf), "p-%d", first + i);
		assert_int_equal(hearth_audit_append(st, 1700000000000LL + i, "plan.completed", buf,
		                                     "{\"steps\":3}"),
		                 0);
	}
	flush_ok(st);
	hearth_store_close(st);
}

static void
make_ok(const char *data, const char *dest, struct hearth_backup_report *r)
{
	char why[512];

	if (hearth_backup_make(data, dest, NULL, r, why, sizeof(why)))
		fail_msg("backup %s -> %s: %s", data, dest, why);
}

/* SHA-256 of a whole file, as hex. */
static void
file_hash(const char *path, char hex[65])
{
	uint8_t md[HEARTH_SHA256_LEN];
	struct stat sb;
	char *buf;
	FILE *f;

	assert_int_equal(stat(path, &sb), 0);
	buf = malloc((size_t)sb.st_size + 1);
	assert_non_null(buf);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, (size_t)sb.st_size, f), (size_t)sb.st_size);
	fclose(f);
	assert_int_equal(hearth_sha256(buf, (size_t)sb.st_size, md), 0);
	hearth_hex_encode(md, sizeof(md), hex);
	free(buf);
}

static off_t
file_size(const char *path)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	return sb.st_size;
}

/* Invert n bytes at the middle of the file. */
static void
flip_middle(const char *path, size_t n)
{
	unsigned char buf[64];
	off_t at = file_size(path) / 2;
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0 && n <= sizeof(buf));
	assert_int_equal(pread(fd, buf, n, at), (ssize_t)n);
	for (size_t i = 0; i < n; i++)
		buf[i] ^= 0xff;
	assert_int_equal(pwrite(fd, buf, n, at), (ssize_t)n);
	close(fd);
}

static int
count_entries(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix)))
			n++;
	closedir(d);
	return n;
}

static MDB_env *
raw_open(const char *dir)
{
	MDB_env *env;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	return env;
}

/* Put one record with raw LMDB, as a tool (or an attacker) would. */
static void
raw_put(const char *dir, const char *db, const void *key, size_t klen, const void *val, size_t vlen)
{
	MDB_env *env = raw_open(dir);
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	MDB_txn *txn;
	MDB_dbi dbi;

	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* Change one byte in the middle of audit record seq, through raw LMDB. */
static void
raw_edit_audit(const char *dir, uint64_t seq)
{
	MDB_env *env = raw_open(dir);
	unsigned char key[8], *copy;
	MDB_val k = {8, key}, v;
	MDB_txn *txn;
	MDB_dbi dbi;

	for (int i = 7; i >= 0; i--, seq >>= 8)
		key[i] = (unsigned char)(seq & 0xff);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	copy = malloc(v.mv_size);
	assert_non_null(copy);
	memcpy(copy, v.mv_data, v.mv_size);
	/* A digit of the timestamp near the start: still JSON, another record. */
	for (size_t i = 0; i < v.mv_size; i++) {
		if (!memcmp(copy + i, "\"ts\":", 5)) {
			copy[i + 6] = copy[i + 6] == '9' ? '8' : copy[i + 6] + 1;
			break;
		}
	}
	assert_memory_not_equal(copy, v.mv_data, v.mv_size);
	v.mv_data = copy;
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	free(copy);
}

static void
copy_file(const char *from, const char *to)
{
	char buf[65536];
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	size_t n;

	assert_non_null(in);
	assert_non_null(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

static long
episodes_in(const char *dir)
{
	struct hearth_store_opts o = {.dir = dir, .read_only = true};
	struct hearth_store_info info;
	hearth_store *st;
	char why[256];

	if (hearth_store_open(&o, &st, why, sizeof(why)))
		fail_msg("open %s: %s", dir, why);
	assert_int_equal(hearth_store_info(st, &info), 0);
	hearth_store_close(st);
	return info.episodes;
}

/* ==== Backup and validation ==== */

static void
test_backup_validates(void **state)
{
	struct tmp *t = *state;
	struct hearth_backup_report r, v;
	struct hearth_backup_db dbs[HEARTH_BACKUP_DBS_MAX];
	hearth_store *st;
	struct stat sb;
	char hex[65];
	int n;

	fill(t->data, 1, 5, 3);
	make_ok(t->data, t->bk, &r);
	assert_int_equal(r.schema_version, HEARTH_SCHEMA_VERSION);
	assert_string_equal(r.home_id, "home");
	assert_true(r.created_at > 0);
	assert_true(r.backup_at > 0);
	assert_int_equal(r.episodes, 5);
	assert_int_equal(r.devices, 2);
	assert_int_equal(r.journal, 1);
	assert_true(r.audit_checked);
	assert_int_equal(r.audit_records, 3);
	assert_int_equal(r.audit_last_seq, 3);
	assert_true(r.manifest);
	assert_int_equal(r.ndbs, 10);
	for (int i = 0; i < r.ndbs; i++)
		assert_true(r.dbs[i].present);

	/* The dir holds the copy and its manifest only, private. */
	assert_int_equal(stat(t->bk, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(t->file, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal((uint64_t)sb.st_size, r.bytes);
	assert_int_equal(stat(t->manifest, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(count_entries(t->bk, ""), 4); /* ., .., data.mdb, backup.json */
	file_hash(t->file, hex);
	assert_string_equal(hex, r.sha256);
	/* Compacted: never larger than the live file. */
	assert_true((off_t)r.bytes <= file_size(t->live));

	/* Validating again finds the same, and leaves no lock.mdb behind. */
	assert_int_equal(hearth_backup_validate(t->bk, NULL, &v, NULL, 0), 0);
	assert_string_equal(v.sha256, r.sha256);
	assert_true(v.manifest);
	assert_int_equal(v.backup_at, r.backup_at);
	assert_int_equal(v.entries, r.entries);
	assert_int_equal(count_entries(t->bk, "lock.mdb"), 0);

	/* The per-database counts of the live store agree. */
	st = open_rw(t->data);
	n = hearth_backup_db_entries(st, dbs, HEARTH_BACKUP_DBS_MAX);
	hearth_store_close(st);
	assert_int_equal(n, 10);
	for (int i = 0; i < n; i++) {
		assert_string_equal(dbs[i].name, r.dbs[i].name);
		assert_int_equal(dbs[i].entries, r.dbs[i].entries);
	}
	assert_string_equal(dbs[1].name, "episodes");
	assert_int_equal(dbs[1].entries, 5);
}

static void
test_backup_refusals(void **state)
{
	struct tmp *t = *state;
	char why[512], path[256];
	struct stat sb;

	/* No store: nothing is created. */
	assert_int_equal(hearth_backup_make(t->data, t->bk, NULL, NULL, why, sizeof(why)),
	                 HEARTH_E_NOT_FOUND);
	assert_non_null(strstr(why, "no store in"));
	assert_int_equal(stat(t->bk, &sb), -1);

	fill(t->data, 1, 2, 1);
	make_ok(t->data, t->bk, NULL);
	/* A backup never overwrites. */
	assert_int_equal(hearth_backup_make(t->data, t->bk, NULL, NULL, why, sizeof(why)),
	                 HEARTH_E_INVALID);
	assert_non_null(strstr(why, "not empty"));
	assert_non_null(strstr(why, t->bk));
	/* A file in the way. */
	assert_int_equal(hearth_backup_make(t->data, t->manifest, NULL, NULL, why, sizeof(why)),
	                 -ENOTDIR);
	assert_non_null(strstr(why, "not a directory"));
	/* An empty dir that exists is fine. */
	snprintf(path, sizeof(path), "%s/empty", t->root);
	assert_int_equal(mkdir(path, 0755), 0);
	make_ok(t->data, path, NULL);
}

static void
test_validate_flipped_bytes(void **state)
{
	struct tmp *t = *state;
	char why[512];

	fill(t->data, 1, 20, 5);
	make_ok(t->data, t->bk, NULL);
	flip_middle(t->file, 16);
	assert_int_equal(hearth_backup_validate(t->bk, NULL, NULL, why, sizeof(why)),
	                 HEARTH_E_CORRUPT);
	assert_non_null(strstr(why, t->file));
	assert_non_null(strstr(why, "SHA-256"));
	assert_non_null(strstr(why, "damaged"));
}

static void
test_validate_truncated(void **state)
{
	struct tmp *t = *state;
	char why[512];

	fill(t->data, 1, 20, 5);
	make_ok(t->data, t->bk, NULL);
	assert_int_equal(truncate(t->file, file_size(t->file) / 2), 0);
	assert_int_equal(hearth_backup_validate(t->bk, NULL, NULL, why, sizeof(why)),
	                 HEARTH_E_CORRUPT);
	assert_non_null(strstr(why, "truncated"));
	assert_non_null(strstr(why, "bytes"));
	/* Without the manifest, the pages the file lacks give it away (no SIGBUS). */
	assert_int_equal(unlink(t->manifest), 0);
	assert_int_equal(hearth_backup_validate(t->bk, NULL, NULL, why, sizeof(why)),
	                 HEARTH_E_CORRUPT);
	assert_non_null(strstr(why, "is truncated"));
	/* Down to less than its meta pages: not an LMDB file at all. */
	assert_int_equal(truncate(t->file, 100), 0);
	assert_int_equal(hearth_backup_validate(t->bk, NULL, NULL, why, sizeof(why)),
	                 HEARTH_E_CORRUPT);
	assert_non_null(strstr(why, "not a readable LMDB store"));
}

static void
test_validate_audit_edit(void **state)
{
	struct tmp *t = *state;
	char why[512];

	fill(t->data, 1, 5, 4);
	make_ok(t->data, t->bk, NULL);
	raw_edit_audit(t->bk, 2);
	/* The manifest (size, checksum) sees it first... */
	assert_int_equal(hearth_backup_validate(t->bk, NULL, NULL, why, sizeof(why)),
	                 HEARTH_E_CORRUPT);
	assert_non_null(strstr(why, "backup.json"));
	assert_non_null(strstr(why, "damaged"));
	/* ...and without the manifest the audit chain does, at the right record. */
	assert_int_equal(unlink(t->manifest), 0);
	assert_int_equal(hearth_backup_validate(t->bk, NULL, NULL, why, sizeof(why)),
	                 HEARTH_E_CORRUPT);
	assert_non_null(strstr(why, "audit chain does not verify: record 2"));
}

static void
test_validate_bad_records(void **state)
{
	struct tmp *t = *state;
	struct hearth_backup_report r;
	unsigned char key[16] = {0, 0, 1, 0x8b, 0xcf, 0xe5, 0x68, 0, 0, 0, 0, 0, 0, 0, 0, 99};
	char why[512], want[64];

	fill(t->data, 1, 5, 2);
	make_ok(t->data, t->bk, NULL);
	assert_int_equal(unlink(t->manifest), 0);
	/* A plain copy of a data dir (no manifest) validates, checksum aside. */
	assert_int_equal(hearth_backup_validate(t->bk, NULL, &r, why, sizeof(why)), 0);
	assert_false(r.manifest);
	assert_int_equal(r.episodes, 5);

	raw_put(t->bk, "devices", "lamp-9", 6, "{\"room\":", 8);
	assert_int_equal(hearth_backup_validate(t->bk, NULL, &r, why, sizeof(why)),
	                 HEARTH_E_CORRUPT);
	assert_non_null(strstr(why, "device lamp-9 is not valid JSON"));
	raw_put(t->bk, "devices", "lamp-9", 6, "{}", 2);
	raw_put(t->bk, "episodes", key, sizeof(key), "not json", 8);
	assert_int_equal(hearth_backup_validate(t->bk, NULL, &r, why, sizeof(why)),
	                 HEARTH_E_CORRUPT);
	assert_non_null(strstr(why, "episode "));
	assert_non_null(strstr(why, "-99 is not valid JSON"));

	/* A schema from the future: both versions named. */
	raw_put(t->bk, "episodes", key, sizeof(key), "{}", 2);
	raw_put(t->bk, "meta", "schema_version", 14, "99", 2);
	assert_int_equal(hearth_backup_validate(t->bk, NULL, &r, why, sizeof(why)),
	                 HEARTH_E_SCHEMA);
	assert_non_null(strstr(why, "schema 99"));
	snprintf(want, sizeof(want), "up to %d", HEARTH_SCHEMA_VERSION);
	assert_non_null(strstr(why, want));

	/* No home id. */
	raw_put(t->bk, "meta", "schema_version", 14, "2", 1);
	raw_put(t->bk, "meta", "home_id", 7, "", 0);
	assert_int_equal(hearth_backup_validate(t->bk, NULL, &r, why, sizeof(why)),
	                 HEARTH_E_CORRUPT);
	assert_non_null(strstr(why, "no home id"));

	/* Not a backup at all. */
	assert_int_equal(hearth_backup_validate(t->root, NULL, &r, why, sizeof(why)),
	                 HEARTH_E_NOT_FOUND);
	assert_non_null(strstr(why, "no data.mdb"));
}

static void
test_validate_v1_store(void **state)
{
	struct tmp *t = *state;
	struct hearth_backup_report r;
	char why[512];

	assert_int_equal(mkdir(t->root, 0700) == 0 || errno == EEXIST, 1);
	snprintf(t->file, sizeof(t->file), "%s/data.mdb", t->root);
	copy_file(FIXTURE_DIR "/data.mdb", t->file);
	/* An older schema is a valid backup: hearthd migrates it when it starts. */
	if (hearth_backup_validate(t->root, NULL, &r, why, sizeof(why)))
		fail_msg("validate the v1 fixture: %s", why);
	assert_int_equal(r.schema_version, 1);
	assert_string_equal(r.home_id, "home");
	assert_int_equal(r.episodes, 3);
	assert_int_equal(r.devices, 4);
	assert_false(r.audit_checked);
	assert_false(r.manifest);
	assert_true(r.dbs[0].present && r.dbs[1].present && r.dbs[2].present);
	assert_false(r.dbs[3].present);
}

static void
test_backup_of_tampered_store_fails(void **state)
{
	struct tmp *t = *state;
	char why[512];

	fill(t->data, 1, 5, 4);
	raw_edit_audit(t->data, 3);
	assert_int_equal(hearth_backup_make(t->data, t->bk, NULL, NULL, why, sizeof(why)),
	                 HEARTH_E_CORRUPT);
	assert_non_null(strstr(why, "the store itself is damaged"));
	assert_non_null(strstr(why, "without backup.json"));
	assert_non_null(strstr(why, "record 3"));
	/* The copy stays for inspection, without a manifest: no restore takes it. */
	assert_int_equal(count_entries(t->bk, "data.mdb"), 1);
	assert_int_equal(count_entries(t->bk, "backup.json"), 0);
}

/* A writer in another process (hearthd's place) while backups are taken. */
/* Until the live store holds more episodes than `than` (the writer made
 * progress since the last backup); fails the test after 5 s. */
static void
wait_for_writer(const char *dir, long than)
{
	const struct timespec tick = {.tv_nsec = 5 * 1000 * 1000};

	for (int tries = 0; tries < 1000; tries++) {
		struct hearth_store_opts o = {.dir = dir, .read_only = true};
		struct hearth_store_info info;
		hearth_store *st;
		char why[160];
		long n = -1;

		if (!hearth_store_open(&o, &st, why, sizeof(why))) {
			if (!hearth_store_info(st, &info))
				n = info.episodes;
			hearth_store_close(st);
		}
		if (n > than)
			return;
		nanosleep(&tick, NULL);
	}
	fail_msg("the writer made no progress past %ld episodes in 5 s", than);
}

static void
test_backup_beside_writer(void **state)
{
	struct tmp *t = *state;
	struct hearth_backup_report r;
	char dest[192], why[512];
	long last = 0;
	int status;
	pid_t pid;

	fill(t->data, 1, 1, 1);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct hearth_store_opts o = {.dir = t->data, .home_id = "home", .no_sync = true};
		hearth_store *st;
		char buf[160];

		if (hearth_store_open(&o, &st, why, sizeof(why)))
			_exit(2);
		for (int i = 0;; i++) {
			snprintf(buf, sizeof(buf), "{\"id\":\"w-%d\",\"pad\":\"%080d\"}", i, i);
			if (hearth_store_episode_add(st, 1800000000000LL + i, buf, strlen(buf)) ||
			    hearth_audit_append(st, 1800000000000LL + i, "plan.completed", "w",
			                        NULL) ||
			    hearth_store_flush(st, why, sizeof(why)))
				_exit(3);
		}
	}
	for (int i = 0; i < 5; i++) {
		wait_for_writer(t->data, last);
		snprintf(dest, sizeof(dest), "%s/hot-%d", t->root, i);
		if (hearth_backup_make(t->data, dest, NULL, &r, why, sizeof(why))) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("backup %d beside a writer: %s", i, why);
		}
		assert_true(r.audit_checked);
		assert_int_equal(r.audit_records, r.episodes); /* one of each per flush */
		assert_true(r.episodes >= last);
		last = r.episodes;
	}
	assert_int_equal(waitpid(pid, &status, WNOHANG), 0); /* still writing */
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(last > 1);
}

static void
test_sealed_chain_needs_key(void **state)
{
	struct tmp *t = *state;
	struct hearth_backup_report r;
	struct hearth_restore_report rr;
	uint8_t key[HEARTH_AUDIT_KEY_LEN];
	char why[512], bk2[192];
	hearth_store *st;

	memset(key, 0x5a, sizeof(key));
	fill(t->data, 1, 3, 0);
	st = open_rw(t->data);
	assert_int_equal(hearth_audit_set_seal_key(st, key), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(hearth_audit_append(st, 1700000000000LL + i, "plan.completed", "p",
		                                     "{\"secret\":true}"),
		                 0);
	flush_ok(st);
	hearth_audit_forget(st);
	hearth_store_close(st);

	/* Without the key the chain cannot be verified, so no backup validates. */
	assert_int_equal(hearth_backup_make(t->data, t->bk, NULL, &r, why, sizeof(why)),
	                 HEARTH_E_CONFIG);
	assert_non_null(strstr(why, "audit chain cannot be verified"));
	snprintf(bk2, sizeof(bk2), "%s/sealed", t->root);
	if (hearth_backup_make(t->data, bk2, key, &r, why, sizeof(why)))
		fail_msg("backup with the seal key: %s", why);
	assert_int_equal(r.audit_records, 2);
	assert_int_equal(hearth_backup_validate(bk2, NULL, &r, why, sizeof(why)), HEARTH_E_CONFIG);
	assert_int_equal(hearth_backup_validate(bk2, key, &r, why, sizeof(why)), 0);
	assert_int_equal(hearth_backup_restore(bk2, t->data, NULL, &rr, why, sizeof(why)),
	                 HEARTH_E_CONFIG);
	assert_string_equal(rr.kept, "");
	if (hearth_backup_restore(bk2, t->data, key, &rr, why, sizeof(why)))
		fail_msg("restore with the seal key: %s", why);
	assert_true(rr.kept[0] != '\0');
}

/* ==== Restore ==== */

static void
test_restore_refuses_bad_backup(void **state)
{
	struct tmp *t = *state;
	struct hearth_restore_report r;
	char before[65], after[65], why[512];

	fill(t->data, 1, 5, 2);
	make_ok(t->data, t->bk, NULL);
	fill(t->data, 100, 2, 1);
	file_hash(t->live, before);

	flip_middle(t->file, 32);
	assert_int_equal(hearth_backup_restore(t->bk, t->data, NULL, &r, why, sizeof(why)),
	                 HEARTH_E_CORRUPT);
	assert_non_null(strstr(why, "SHA-256"));
	file_hash(t->live, after);
	assert_string_equal(before, after);
	assert_int_equal(count_entries(t->data, "data.mdb"), 1);
	assert_string_equal(r.kept, "");

	/* Truncated, and a manifest-less copy with an edited audit record: same. */
	flip_middle(t->file, 32);
	assert_int_equal(truncate(t->file, file_size(t->file) / 2), 0);
	assert_int_equal(hearth_backup_restore(t->bk, t->data, NULL, &r, why, sizeof(why)),
	                 HEARTH_E_CORRUPT);
	file_hash(t->live, after);
	assert_string_equal(before, after);

	snprintf(t->bk, sizeof(t->bk), "%s/backups/two", t->root);
	snprintf(t->manifest, sizeof(t->manifest), "%s/backup.json", t->bk);
	make_ok(t->data, t->bk, NULL);
	raw_edit_audit(t->bk, 1);
	assert_int_equal(unlink(t->manifest), 0);
	assert_int_equal(hearth_backup_restore(t->bk, t->data, NULL, &r, why, sizeof(why)),
	                 HEARTH_E_CORRUPT);
	assert_non_null(strstr(why, "record 1"));
	file_hash(t->live, after);
	assert_string_equal(before, after);
	assert_int_equal(count_entries(t->data, "data.mdb"), 1);
}

static void
test_restore_while_locked_then_not(void **state)
{
	struct tmp *t = *state;
	struct hearth_restore_report r;
	char before[65], after[65], why[512], lock[256];
	struct hearth_audit_report ar;
	hearth_store *st;
	struct stat sb;
	int fd;

	fill(t->data, 1, 5, 2);
	make_ok(t->data, t->bk, NULL);
	fill(t->data, 100, 2, 1); /* the live store moves on: 7 episodes */
	file_hash(t->live, before);

	/* hearthd's lock (hub.c: flock on DATA/hearthd.lock). */
	snprintf(lock, sizeof(lock), "%s/hearthd.lock", t->data);
	fd = open(lock, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(hearth_backup_restore(t->bk, t->data, NULL, &r, why, sizeof(why)),
	                 HEARTH_E_BUSY);
	assert_non_null(strstr(why, "stop hearthd first"));
	file_hash(t->live, after);
	assert_string_equal(before, after);
	close(fd);

	if (hearth_backup_restore(t->bk, t->data, NULL, &r, why, sizeof(why)))
		fail_msg("restore: %s", why);
	assert_true(r.backup.manifest);
	assert_int_equal(r.backup.episodes, 5);
	/* The old file is kept, byte for byte; the backup is in place. */
	assert_non_null(strstr(r.kept, "/data.mdb.before-restore-"));
	file_hash(r.kept, after);
	assert_string_equal(before, after);
	file_hash(t->live, after);
	assert_string_equal(after, r.backup.sha256);
	assert_int_equal(stat(t->live, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(count_entries(t->data, "lock.mdb"), 0);
	assert_int_equal(count_entries(t->data, "data.mdb.restore-tmp"), 0);
	assert_int_equal(episodes_in(t->data), 5);

	/* A working store: hearthd's open, an append, the chain verifies. */
	st = open_rw(t->data);
	assert_int_equal(hearth_audit_append(st, 1700000009999LL, "store.restored", "x", NULL), 0);
	flush_ok(st);
	assert_int_equal(hearth_audit_verify(st, &ar), 0);
	assert_int_equal(ar.records, 3);
	hearth_store_close(st);

	/* Restoring again in the same second keeps both old files. */
	if (hearth_backup_restore(t->bk, t->data, NULL, &r, why, sizeof(why)))
		fail_msg("second restore: %s", why);
	assert_int_equal(count_entries(t->data, "data.mdb.before-restore-"), 2);
}

static void
test_restore_into_new_dir(void **state)
{
	struct tmp *t = *state;
	struct hearth_restore_report r;
	char fresh[192], why[512];
	struct stat sb;

	fill(t->data, 1, 5, 2);
	make_ok(t->data, t->bk, NULL);
	snprintf(fresh, sizeof(fresh), "%s/new/hub/data", t->root);
	if (hearth_backup_restore(t->bk, fresh, NULL, &r, why, sizeof(why)))
		fail_msg("restore into a new dir: %s", why);
	assert_string_equal(r.kept, "");
	assert_int_equal(stat(fresh, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(episodes_in(fresh), 5);

	/* The data dir itself is no backup. */
	assert_int_equal(hearth_backup_restore(fresh, fresh, NULL, &r, why, sizeof(why)),
	                 HEARTH_E_INVALID);
	/* Nor is a dir without data.mdb; the store stays. */
	assert_int_equal(hearth_backup_restore(t->root, fresh, NULL, &r, why, sizeof(why)),
	                 HEARTH_E_NOT_FOUND);
	assert_int_equal(episodes_in(fresh), 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_backup_validates, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_backup_refusals, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_validate_flipped_bytes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_validate_truncated, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_validate_audit_edit, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_validate_bad_records, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_validate_v1_store, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_backup_of_tampered_store_fails, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_backup_beside_writer, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_sealed_chain_needs_key, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_restore_refuses_bad_backup, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_restore_while_locked_then_not, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_restore_into_new_dir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
