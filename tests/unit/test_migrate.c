/*
 * test_migrate.c - schema versions and migrations: a store written by
 * schema 1 (tests/fixtures/store-v1, made by that version's code) is refused
 * read-only with advice, migrated by a read-write open with its records
 * intact and every database of DESIGN.md section 3 created, and not
 * migrated again; a store of a schema from the future is refused with both
 * versions named. The fixture is copied into a mkdtemp directory first and
 * never written to; what the store did is read back with raw LMDB.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memory/store.h"
#include "platform/err.h"

#define FIXTURE_DIR HEARTH_SOURCE_DIR "/tests/fixtures/store-v1"

/* The named databases of DESIGN.md section 3, written down independently. */
static const char *const design_dbs[] = {
        "meta",    "devices", "episodes", "semantic", "constraints",
        "recipes", "journal", "consents", "audit",    "secrets",
};
#define NDBS (sizeof(design_dbs) / sizeof(design_dbs[0]))

struct tmp {
	char dir[64];
};

/* Records read with raw LMDB: key and value text, in key order. */
struct records {
	int n;
	char keys[8][64];
	char vals[8][4096];
};

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
copy_file(const char *from, const char *to)
{
	char buf[65536];
	FILE *in = fopen(from, "rb"), *out;
	size_t n;

	if (!in)
		fail_msg("cannot open the fixture %s: %s", from, strerror(errno));
	out = fopen(to, "wb");
	assert_non_null(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	assert_false(ferror(in));
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

static int
setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));
	char path[128];

	assert_non_null(t);
	snprintf(t->dir, sizeof(t->dir), "/tmp/hearth-migrate-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(path, sizeof(path), "%s/data.mdb", t->dir);
	copy_file(FIXTURE_DIR "/data.mdb", path);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tmp *t = *state;

	nftw(t->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

/* ==== Raw LMDB ==== */

static MDB_env *
raw_open(const char *dir)
{
	MDB_env *env;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	return env;
}

/* Every record of one database (keys as text; episode keys are binary: hex). */
static void
raw_records(const char *dir, const char *db, struct records *out)
{
	MDB_env *env = raw_open(dir);
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;
	int rc;

	memset(out, 0, sizeof(*out));
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
	assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		assert_true(out->n < 8);
		assert_true(v.mv_size < sizeof(out->vals[0]));
		if (k.mv_size == 16 && !strcmp(db, "episodes")) {
			for (size_t i = 0; i < 16; i++)
				sprintf(out->keys[out->n] + 2 * i, "%02x",
				        ((unsigned char *)k.mv_data)[i]);
		} else {
			assert_true(k.mv_size < sizeof(out->keys[0]));
			memcpy(out->keys[out->n], k.mv_data, k.mv_size);
		}
		memcpy(out->vals[out->n], v.mv_data, v.mv_size);
		out->n++;
	}
	assert_int_equal(rc, MDB_NOTFOUND);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

/* One meta value as text, or "" when absent. */
static void
raw_meta(const char *dir, const char *name, char *buf, size_t len)
{
	MDB_env *env = raw_open(dir);
	MDB_val k = {strlen(name), (void *)name}, v;
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc;

	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	rc = mdb_get(txn, dbi, &k, &v);
	if (rc == MDB_NOTFOUND) {
		buf[0] = '\0';
	} else {
		assert_int_equal(rc, 0);
		assert_true(v.mv_size < len);
		memcpy(buf, v.mv_data, v.mv_size);
		buf[v.mv_size] = '\0';
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

static void
raw_meta_put(const char *dir, const char *name, const char *value)
{
	MDB_env *env = raw_open(dir);
	MDB_val k = {strlen(name), (void *)name}, v = {strlen(value), (void *)value};
	MDB_txn *txn;
	MDB_dbi dbi;

	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* The id of the last committed transaction: a write moves it. */
static size_t
raw_txnid(const char *dir)
{
	MDB_env *env = raw_open(dir);
	MDB_envinfo ei;

	assert_int_equal(mdb_env_info(env, &ei), 0);
	mdb_env_close(env);
	return ei.me_last_txnid;
}

/* The names of the databases in the file (the keys of LMDB's main database). */
static int
raw_db_names(const char *dir, char names[16][32])
{
	MDB_env *env = raw_open(dir);
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_dbi main;
	MDB_val k, v;
	int n = 0, rc;

	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, NULL, 0, &main), 0);
	assert_int_equal(mdb_cursor_open(txn, main, &cur), 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		assert_true(n < 16 && k.mv_size < 32);
		memcpy(names[n], k.mv_data, k.mv_size);
		names[n][k.mv_size] = '\0';
		n++;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return n;
}

/* ==== Through the store ==== */

static int
collect(void *ud, const char *key, const char *json, size_t len)
{
	struct records *r = ud;

	assert_true(r->n < 8 && len < sizeof(r->vals[0]));
	snprintf(r->keys[r->n], sizeof(r->keys[0]), "%s", key);
	memcpy(r->vals[r->n], json, len);
	r->vals[r->n][len] = '\0';
	r->n++;
	return 0;
}

static bool
has_value(const struct records *r, const char *val)
{
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->vals[i], val))
			return true;
	return false;
}

/* ==== Tests ==== */

static void
test_v1_read_only_refused(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = {.dir = t->dir, .read_only = true};
	hearth_store *st = (hearth_store *)&o;
	size_t before = raw_txnid(t->dir);
	char why[256], buf[32];

	assert_int_equal(hearth_store_open(&o, &st, why, sizeof(why)), HEARTH_E_SCHEMA);
	assert_null(st);
	assert_non_null(strstr(why, t->dir));
	assert_non_null(strstr(why, "schema 1"));
	assert_non_null(strstr(why, "older"));
	assert_non_null(strstr(why, "start hearthd once to migrate it"));
	/* Nothing was written: hearthctl never migrates. */
	assert_int_equal(raw_txnid(t->dir), before);
	raw_meta(t->dir, "schema_version", buf, sizeof(buf));
	assert_string_equal(buf, "1");
}

static void
test_v1_migrates(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = {.dir = t->dir, .home_id = "home", .no_sync = true};
	struct records eps_v1, devs_v1, eps, devs;
	struct hearth_store_info info;
	char names[16][32], buf[32], why[256];
	hearth_store *st;
	size_t txnid;
	int n;

	raw_records(t->dir, "episodes", &eps_v1);
	raw_records(t->dir, "devices", &devs_v1);
	assert_int_equal(eps_v1.n, 3);
	assert_int_equal(devs_v1.n, 4);
	n = raw_db_names(t->dir, names);
	assert_int_equal(n, 3); /* meta, episodes, devices */

	if (hearth_store_open(&o, &st, why, sizeof(why)))
		fail_msg("migrating open: %s", why);
	assert_int_equal(hearth_store_info(st, &info), 0);
	assert_int_equal(info.schema_version, HEARTH_SCHEMA_VERSION);
	assert_string_equal(info.home_id, "home");
	assert_int_equal(info.created_at, 1795365525094LL);
	assert_int_equal(info.episodes, 3);
	assert_int_equal(info.devices, 4);

	/* The same records, the same JSON, through the store's API. */
	memset(&eps, 0, sizeof(eps));
	memset(&devs, 0, sizeof(devs));
	assert_int_equal(hearth_store_episodes_each(st, 0, collect, &eps), 0);
	assert_int_equal(hearth_store_devices_each(st, collect, &devs), 0);
	assert_int_equal(eps.n, 3);
	assert_int_equal(devs.n, 4);
	for (int i = 0; i < 3; i++)
		assert_true(has_value(&eps, eps_v1.vals[i]));
	for (int i = 0; i < 4; i++) {
		assert_string_equal(devs.keys[i], devs_v1.keys[i]);
		assert_string_equal(devs.vals[i], devs_v1.vals[i]);
	}
	hearth_store_close(st);

	/* Meta says what happened; every database of DESIGN.md exists, no other. */
	raw_meta(t->dir, "schema_version", buf, sizeof(buf));
	assert_int_equal(atoi(buf), HEARTH_SCHEMA_VERSION);
	raw_meta(t->dir, "migrated_from", buf, sizeof(buf));
	assert_string_equal(buf, "1");
	n = raw_db_names(t->dir, names);
	assert_int_equal(n, (int)NDBS);
	for (size_t i = 0; i < NDBS; i++) {
		bool found = false;

		for (int j = 0; j < n; j++)
			found |= !strcmp(names[j], design_dbs[i]);
		if (!found)
			fail_msg("database \"%s\" missing after the migration", design_dbs[i]);
	}
	/* The raw records are byte for byte those of version 1. */
	raw_records(t->dir, "episodes", &eps);
	raw_records(t->dir, "devices", &devs);
	assert_memory_equal(&eps, &eps_v1, sizeof(eps));
	assert_memory_equal(&devs, &devs_v1, sizeof(devs));

	/* Reopening (read-write, then read-only) migrates nothing: no write at all. */
	txnid = raw_txnid(t->dir);
	if (hearth_store_open(&o, &st, why, sizeof(why)))
		fail_msg("reopen: %s", why);
	assert_int_equal(hearth_store_info(st, &info), 0);
	assert_int_equal(info.schema_version, HEARTH_SCHEMA_VERSION);
	hearth_store_close(st);
	assert_int_equal(raw_txnid(t->dir), txnid);
	raw_meta(t->dir, "migrated_from", buf, sizeof(buf));
	assert_string_equal(buf, "1");
	o.read_only = true;
	if (hearth_store_open(&o, &st, why, sizeof(why)))
		fail_msg("read-only open after the migration: %s", why);
	hearth_store_close(st);
}

static void
test_v1_other_home_not_migrated(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = {.dir = t->dir, .home_id = "cottage", .no_sync = true};
	size_t before = raw_txnid(t->dir);
	hearth_store *st;
	char why[256], buf[32];

	assert_int_equal(hearth_store_open(&o, &st, why, sizeof(why)), HEARTH_E_CONFIG);
	assert_null(st);
	assert_non_null(strstr(why, "\"home\""));
	assert_int_equal(raw_txnid(t->dir), before);
	raw_meta(t->dir, "schema_version", buf, sizeof(buf));
	assert_string_equal(buf, "1");
}

static void
test_future_schema_refused(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = {.dir = t->dir, .home_id = "home", .no_sync = true};
	hearth_store *st;
	char why[256], want[64];
	size_t before;

	raw_meta_put(t->dir, "schema_version", "99");
	before = raw_txnid(t->dir);
	for (int ro = 0; ro < 2; ro++) {
		o.read_only = ro;
		assert_int_equal(hearth_store_open(&o, &st, why, sizeof(why)), HEARTH_E_SCHEMA);
		assert_null(st);
		/* Both versions are named, with what to do. */
		assert_non_null(strstr(why, "schema 99"));
		snprintf(want, sizeof(want), "up to %d", HEARTH_SCHEMA_VERSION);
		assert_non_null(strstr(why, want));
		assert_non_null(strstr(why, "upgrade"));
		assert_non_null(strstr(why, t->dir));
	}
	assert_int_equal(raw_txnid(t->dir), before);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_v1_read_only_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_v1_migrates, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_v1_other_home_not_migrated, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_future_schema_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
