/*
 * test_store.c - the LMDB store: meta across reopen, episode order and
 * window, devices, read-only opening, refusals (newer schema, other home),
 * a full map (with and without room to grow) and failing allocations. Every
 * test works in its own mkdtemp directory, removed at the end.
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
#include "platform/alloc.h"
#include "platform/err.h"

struct tmp {
	char root[64];
	char dir[128];
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
	snprintf(t->root, sizeof(t->root), "/tmp/hearth-store-XXXXXX");
	assert_non_null(mkdtemp(t->root));
	/* A dir that does not exist yet, two levels down: the store creates it. */
	snprintf(t->dir, sizeof(t->dir), "%s/data/store", t->root);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tmp *t = *state;

	hearth_alloc_fail_after(-1);
	nftw(t->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

static struct hearth_store_opts
opts_for(const struct tmp *t, const char *home)
{
	struct hearth_store_opts o = {
	        .dir = t->dir,
	        .home_id = home,
	        .no_sync = true,
	};
	return o;
}

static hearth_store *
open_ok(const struct hearth_store_opts *o)
{
	hearth_store *st = NULL;
	char why[256];
	int err = hearth_store_open(o, &st, why, sizeof(why));

	if (err)
		fail_msg("open %s: %d %s", o->dir, err, why);
	assert_non_null(st);
	return st;
}

static void
flush_ok(hearth_store *st)
{
	char why[256];
	int err = hearth_store_flush(st, why, sizeof(why));

	if (err)
		fail_msg("flush: %d %s", err, why);
	assert_int_equal(hearth_store_pending(st), 0);
}

static void
add_episode(hearth_store *st, int64_t ts, const char *json)
{
	assert_int_equal(hearth_store_episode_add(st, ts, json, strlen(json)), 0);
}

/* Collects what a walk visits, as "key=value" lines. */
struct seen {
	int n;
	int stop_after;
	char keys[32][48];
	char vals[32][64];
};

static int
collect(void *ud, const char *key, const char *json, size_t len)
{
	struct seen *s = ud;

	assert_true(s->n < 32);
	snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
	snprintf(s->vals[s->n], sizeof(s->vals[0]), "%.*s", (int)len, json);
	s->n++;
	return s->stop_after && s->n >= s->stop_after;
}

static int
count_only(void *ud, const char *key, const char *json, size_t len)
{
	(*(long *)ud)++;
	return 0;
}

/* ==== Tests ==== */

static void
test_meta_roundtrip(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = opts_for(t, "flat-12");
	struct hearth_store_info a, b;
	hearth_store *st;
	struct stat sb;

	st = open_ok(&o);
	assert_int_equal(stat(t->dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(hearth_store_info(st, &a), 0);
	assert_int_equal(a.schema_version, HEARTH_SCHEMA_VERSION);
	assert_string_equal(a.home_id, "flat-12");
	assert_true(a.created_at > 1600000000000LL);
	assert_int_equal(a.episodes, 0);
	assert_int_equal(a.devices, 0);
	assert_true(a.map_size >= ((size_t)1 << 20));
	assert_true(a.map_used > 0 && a.map_used <= a.map_size);
	hearth_store_close(st);

	/* Reopen without a home id, then read-only: same meta. */
	o.home_id = NULL;
	st = open_ok(&o);
	assert_int_equal(hearth_store_info(st, &b), 0);
	assert_string_equal(b.home_id, "flat-12");
	assert_int_equal(b.created_at, a.created_at);
	assert_int_equal(b.schema_version, HEARTH_SCHEMA_VERSION);
	hearth_store_close(st);

	o.read_only = true;
	st = open_ok(&o);
	assert_int_equal(hearth_store_info(st, &b), 0);
	assert_string_equal(b.home_id, "flat-12");
	assert_int_equal(b.created_at, a.created_at);
	assert_int_equal(hearth_store_episode_add(st, 1, "{}", 2), -EROFS);
	assert_int_equal(hearth_store_device_put(st, "x", "{}", 2), -EROFS);
	assert_int_equal(hearth_store_pending(st), 0);
	hearth_store_close(st);
}

static void
test_episodes_newest_first(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = opts_for(t, "home");
	struct seen s = {0};
	hearth_store *st;

	st = open_ok(&o);
	add_episode(st, 1000, "{\"n\":1}");
	add_episode(st, 3000, "{\"n\":3}");
	add_episode(st, 2000, "{\"n\":2}");
	add_episode(st, 3000, "{\"n\":4}"); /* same ms: the sequence orders it */
	assert_int_equal(hearth_store_pending(st), 4);
	/* Nothing is visible before the flush. */
	assert_int_equal(hearth_store_episodes_each(st, 0, collect, &s), 0);
	assert_int_equal(s.n, 0);
	flush_ok(st);

	assert_int_equal(hearth_store_episodes_each(st, 3, collect, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.vals[0], "{\"n\":4}");
	assert_string_equal(s.vals[1], "{\"n\":3}");
	assert_string_equal(s.vals[2], "{\"n\":2}");
	assert_string_equal(s.keys[0], "3000-3");
	assert_string_equal(s.keys[1], "3000-1");

	memset(&s, 0, sizeof(s));
	assert_int_equal(hearth_store_episodes_each(st, 0, collect, &s), 0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.vals[3], "{\"n\":1}");

	/* A callback that returns non-zero stops the walk. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	assert_int_equal(hearth_store_episodes_each(st, 0, collect, &s), 0);
	assert_int_equal(s.n, 2);
	hearth_store_close(st);

	/* After a reopen the sequence continues: same ms, still newest. */
	st = open_ok(&o);
	add_episode(st, 3000, "{\"n\":5}");
	flush_ok(st);
	memset(&s, 0, sizeof(s));
	assert_int_equal(hearth_store_episodes_each(st, 1, collect, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.vals[0], "{\"n\":5}");
	assert_string_equal(s.keys[0], "3000-4");
	hearth_store_close(st);
}

static void
test_episodes_clock_back(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = opts_for(t, "home");
	struct seen s = {0};
	hearth_store *st;

	st = open_ok(&o);
	add_episode(st, 3000, "{\"n\":1}"); /* 3000-0 */
	add_episode(st, 2000, "{\"n\":2}"); /* 2000-1: the clock went back */
	flush_ok(st);
	hearth_store_close(st);

	/* The newest key is 3000-0, so the sequence resumes at 1: 2000-1 is taken. */
	st = open_ok(&o);
	add_episode(st, 2000, "{\"n\":3}");
	flush_ok(st);
	assert_int_equal(hearth_store_episodes_each(st, 0, collect, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[0], "3000-0");
	assert_string_equal(s.keys[1], "2000-2");
	assert_string_equal(s.vals[1], "{\"n\":3}");
	assert_string_equal(s.keys[2], "2000-1");
	assert_string_equal(s.vals[2], "{\"n\":2}");
	hearth_store_close(st);
}

static void
test_episode_window(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = opts_for(t, "home");
	struct hearth_store_info info;
	struct seen s = {0};
	hearth_store *st;
	char buf[32];

	o.episodes_max = 3;
	st = open_ok(&o);
	for (int i = 1; i <= 5; i++) {
		snprintf(buf, sizeof(buf), "{\"n\":%d}", i);
		add_episode(st, 1000 * i, buf);
	}
	flush_ok(st);
	assert_int_equal(hearth_store_info(st, &info), 0);
	assert_int_equal(info.episodes, 3);
	assert_int_equal(hearth_store_episodes_each(st, 0, collect, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.vals[0], "{\"n\":5}");
	assert_string_equal(s.vals[2], "{\"n\":3}");

	/* One more in a later flush pushes out the oldest left. */
	add_episode(st, 6000, "{\"n\":6}");
	flush_ok(st);
	memset(&s, 0, sizeof(s));
	assert_int_equal(hearth_store_episodes_each(st, 0, collect, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.vals[0], "{\"n\":6}");
	assert_string_equal(s.vals[2], "{\"n\":4}");
	hearth_store_close(st);
}

static void
test_devices_put_delete(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = opts_for(t, "home");
	struct hearth_store_info info;
	struct seen s = {0};
	hearth_store *st;

	st = open_ok(&o);
	assert_int_equal(hearth_store_device_put(st, "lamp-2", "{\"id\":\"lamp-2\"}", 15), 0);
	assert_int_equal(hearth_store_device_put(st, "lamp-1", "{\"id\":\"lamp-1\"}", 15), 0);
	assert_int_equal(hearth_store_device_put(st, "tv", "{\"id\":\"tv\"}", 11), 0);
	flush_ok(st);
	/* Replace one, delete one, delete one that never existed. */
	assert_int_equal(hearth_store_device_put(st, "lamp-1", "{\"v\":2}", 7), 0);
	assert_int_equal(hearth_store_device_put(st, "tv", NULL, 0), 0);
	assert_int_equal(hearth_store_device_put(st, "ghost", NULL, 0), 0);
	assert_int_equal(hearth_store_pending(st), 3);
	flush_ok(st);

	assert_int_equal(hearth_store_devices_each(st, collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.keys[0], "lamp-1");
	assert_string_equal(s.vals[0], "{\"v\":2}");
	assert_string_equal(s.keys[1], "lamp-2");
	assert_int_equal(hearth_store_info(st, &info), 0);
	assert_int_equal(info.devices, 2);

	/* Bad arguments are refused before anything is queued. */
	assert_int_equal(hearth_store_device_put(st, "", "{}", 2), HEARTH_E_INVALID);
	assert_int_equal(hearth_store_device_put(st, "x", "{}", 0), HEARTH_E_INVALID);
	assert_int_equal(hearth_store_episode_add(st, 1, "", 0), HEARTH_E_INVALID);
	assert_int_equal(hearth_store_pending(st), 0);
	hearth_store_close(st);

	/* Devices survive a reopen. */
	o.read_only = true;
	st = open_ok(&o);
	memset(&s, 0, sizeof(s));
	assert_int_equal(hearth_store_devices_each(st, collect, &s), 0);
	assert_int_equal(s.n, 2);
	hearth_store_close(st);
}

static void
test_read_only_missing(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = opts_for(t, NULL);
	hearth_store *st = (hearth_store *)&o;
	struct stat sb;
	char why[256];

	o.read_only = true;
	assert_int_equal(hearth_store_open(&o, &st, why, sizeof(why)), HEARTH_E_NOT_FOUND);
	assert_null(st);
	assert_non_null(strstr(why, "no store in"));
	assert_non_null(strstr(why, t->dir));
	assert_non_null(strstr(why, "--data"));
	/* Read-only never creates the dir. */
	assert_int_equal(stat(t->dir, &sb), -1);

	/* An existing but empty dir is no store either. */
	assert_int_equal(mkdir(t->root, 0700) == 0 || errno == EEXIST, 1);
	snprintf(t->dir, sizeof(t->dir), "%s", t->root);
	o.dir = t->dir;
	assert_int_equal(hearth_store_open(&o, &st, why, sizeof(why)), HEARTH_E_NOT_FOUND);
	assert_null(st);
}

/* Overwrite one meta value with raw LMDB, as another hearth version would. */
static void
raw_meta_put(const char *dir, const char *name, const char *value)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {strlen(name), (void *)name}, v = {strlen(value), (void *)value};

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void
test_schema_newer_refused(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = opts_for(t, "home");
	hearth_store *st;
	char why[256], want[32];

	st = open_ok(&o);
	hearth_store_close(st);
	snprintf(want, sizeof(want), "%d", HEARTH_SCHEMA_VERSION + 1);
	raw_meta_put(t->dir, "schema_version", want);

	assert_int_equal(hearth_store_open(&o, &st, why, sizeof(why)), HEARTH_E_SCHEMA);
	assert_null(st);
	snprintf(want, sizeof(want), "schema %d", HEARTH_SCHEMA_VERSION + 1);
	assert_non_null(strstr(why, want));
	assert_non_null(strstr(why, "upgrade"));
	/* hearthctl cannot read it either. */
	o.read_only = true;
	assert_int_equal(hearth_store_open(&o, &st, why, sizeof(why)), HEARTH_E_SCHEMA);

	/* Garbage in place of the version is corruption, not a crash. */
	raw_meta_put(t->dir, "schema_version", "one");
	assert_int_equal(hearth_store_open(&o, &st, why, sizeof(why)), HEARTH_E_CORRUPT);
	assert_null(st);
}

static void
test_wrong_home_refused(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = opts_for(t, "cottage");
	hearth_store *st;
	char why[256];

	st = open_ok(&o);
	hearth_store_close(st);

	o.home_id = "flat";
	assert_int_equal(hearth_store_open(&o, &st, why, sizeof(why)), HEARTH_E_CONFIG);
	assert_null(st);
	assert_non_null(strstr(why, "\"cottage\""));
	assert_non_null(strstr(why, "\"flat\""));
	assert_non_null(strstr(why, t->dir));

	/* Read-only (hearthctl) does not check the home. */
	o.read_only = true;
	st = open_ok(&o);
	hearth_store_close(st);
}

static void
test_map_full_keeps_committed(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = opts_for(t, "home");
	struct hearth_store_info info;
	static char big[8192];
	struct seen s = {0};
	hearth_store *st;
	char why[256];
	int committed = 0, err = 0;

	o.map_size = 64 * 1024;
	o.map_max = o.map_size;
	memset(big, 'x', sizeof(big) - 1);
	big[0] = '"';
	big[sizeof(big) - 2] = '"';

	st = open_ok(&o);
	add_episode(st, 1, "{\"first\":true}");
	assert_int_equal(hearth_store_device_put(st, "lamp-1", "{}", 2), 0);
	flush_ok(st);
	for (int i = 0; i < 64; i++) {
		add_episode(st, 10 + i, big);
		err = hearth_store_flush(st, why, sizeof(why));
		if (err)
			break;
		committed++;
	}
	assert_int_equal(err, HEARTH_E_MAP_FULL);
	assert_true(committed > 0);
	assert_int_equal(hearth_store_pending(st), 0);
	assert_non_null(strstr(why, "is full"));
	assert_non_null(strstr(why, "ceiling 64 KiB"));
	assert_non_null(strstr(why, "store.map_max_mb"));
	assert_non_null(strstr(why, t->dir));
	assert_int_equal(hearth_store_info(st, &info), 0);
	assert_int_equal(info.map_size, o.map_max);
	hearth_store_close(st);

	st = open_ok(&o);
	assert_int_equal(hearth_store_info(st, &info), 0);
	assert_int_equal(info.episodes, committed + 1);
	assert_int_equal(info.devices, 1);
	assert_int_equal(hearth_store_episodes_each(st, 0, count_only, &(long){0}), 0);
	s.stop_after = 0;
	assert_int_equal(hearth_store_episodes_each(st, 0, collect, &s), 0);
	assert_string_equal(s.vals[s.n - 1], "{\"first\":true}");
	hearth_store_close(st);
}

static void
test_map_grows(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = opts_for(t, "home");
	struct hearth_store_info info;
	static char big[8192];
	hearth_store *st;
	long n = 0;

	o.map_size = 64 * 1024;
	o.map_max = 4 * 1024 * 1024;
	memset(big, 'y', sizeof(big) - 1);
	big[0] = '"';
	big[sizeof(big) - 2] = '"';

	st = open_ok(&o);
	for (int i = 0; i < 40; i++)
		add_episode(st, 100 + i, big);
	flush_ok(st);
	assert_int_equal(hearth_store_info(st, &info), 0);
	assert_int_equal(info.episodes, 40);
	assert_true(info.map_size > o.map_size);
	assert_true(info.map_size <= o.map_max);
	assert_true(info.map_used <= info.map_size);
	hearth_store_close(st);

	/* The grown size is kept across a reopen. */
	st = open_ok(&o);
	assert_int_equal(hearth_store_info(st, &info), 0);
	assert_true(info.map_size > o.map_size);
	assert_int_equal(hearth_store_episodes_each(st, 0, count_only, &n), 0);
	assert_int_equal(n, 40);
	hearth_store_close(st);
}

static void
test_alloc_failure(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = opts_for(t, "home");
	hearth_store *st;
	struct seen s = {0};
	char why[256];

	st = open_ok(&o);
	/* First write: growing the queue fails. */
	hearth_alloc_fail_after(0);
	assert_int_equal(hearth_store_episode_add(st, 1, "{\"a\":1}", 7), -ENOMEM);
	hearth_alloc_fail_after(-1);
	assert_int_equal(hearth_store_pending(st), 0);
	add_episode(st, 2, "{\"a\":2}");
	/* With room in the queue: copying the record fails. */
	hearth_alloc_fail_after(0);
	assert_int_equal(hearth_store_device_put(st, "lamp", "{}", 2), -ENOMEM);
	hearth_alloc_fail_after(-1);
	assert_int_equal(hearth_store_pending(st), 1);
	flush_ok(st);
	assert_int_equal(hearth_store_episodes_each(st, 0, collect, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.vals[0], "{\"a\":2}");
	/* The failed add did not use up a key. */
	assert_string_equal(s.keys[0], "2-0");
	hearth_store_close(st);

	/* Opening with no memory fails cleanly too. */
	hearth_alloc_fail_after(0);
	assert_int_equal(hearth_store_open(&o, &st, why, sizeof(why)), -ENOMEM);
	hearth_alloc_fail_after(-1);
	assert_null(st);
}

static void
test_not_a_directory(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = opts_for(t, "home");
	hearth_store *st;
	char why[256];
	FILE *f;

	snprintf(t->dir, sizeof(t->dir), "%s/file", t->root);
	f = fopen(t->dir, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(hearth_store_open(&o, &st, why, sizeof(why)), -ENOTDIR);
	assert_null(st);
	assert_non_null(strstr(why, t->dir));
}

/* A data dir others could read (made by hand, say) is closed to them at open. */
static void
test_loose_dir_tightened(void **state)
{
	struct tmp *t = *state;
	struct hearth_store_opts o = opts_for(t, "home");
	hearth_store *st = NULL;
	struct stat sb;
	char why[256];

	snprintf(t->dir, sizeof(t->dir), "%s/loose", t->root);
	assert_int_equal(mkdir(t->dir, 0755), 0);
	assert_int_equal(chmod(t->dir, 0755), 0);
	o.dir = t->dir;
	assert_int_equal(hearth_store_open(&o, &st, why, sizeof(why)), 0);
	assert_int_equal(stat(t->dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	hearth_store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_meta_roundtrip, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_episodes_newest_first, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_episodes_clock_back, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_episode_window, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_devices_put_delete, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_read_only_missing, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_schema_newer_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_wrong_home_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_map_full_keeps_committed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_map_grows, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_alloc_failure, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_not_a_directory, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_loose_dir_tightened, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
