/*
 * test_consents_secrets.c - consents (grant, replace, expire, revoke,
 * standing pre-approvals, listing by prefix) and secrets (round trips,
 * caller buffers, names listed without values, values never logged, file
 * modes 0600 in a 0700 dir whatever the umask), across flush and reopen,
 * with failing allocations. Every test works in its own mkdtemp directory,
 * removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memory/consents.h"
#include "memory/secrets.h"
#include "memory/store.h"
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/json.h"
#include "platform/log.h"
#include "tests/unit/support/tmpstore.h"

static hearth_store *
open_opts(const struct tmp *t, bool read_only)
{
	struct hearth_store_opts o = {.dir = t->dir, .no_sync = true, .read_only = read_only};
	hearth_store *st = NULL;
	char why[256];
	int err = hearth_store_open(&o, &st, why, sizeof(why));

	if (err)
		fail_msg("open %s: %d %s", t->dir, err, why);
	return st;
}

static hearth_store *
open_ok(const struct tmp *t)
{
	return open_opts(t, false);
}

#define EXPECT_ALLOC_SAFE(st, call)                                                                \
	do {                                                                                       \
		size_t before_ = hearth_store_pending(st);                                         \
		int err_;                                                                          \
		for (long n_ = 0;; n_++) {                                                         \
			hearth_alloc_fail_after(n_);                                               \
			err_ = (call);                                                             \
			hearth_alloc_fail_after(-1);                                               \
			if (!err_)                                                                 \
				break;                                                             \
			assert_int_equal(err_, -ENOMEM);                                           \
			assert_int_equal(hearth_store_pending(st), before_);                       \
			assert_true(n_ < 100);                                                     \
		}                                                                                  \
		assert_int_equal(hearth_store_pending(st), before_ + 1);                           \
	} while (0)

/* ==== Consents ==== */

static int
grants_of(hearth_store *st, const char *scope)
{
	cJSON *rec;
	int n;

	if (hearth_consent_get(st, scope, &rec))
		return -1;
	n = cJSON_GetArraySize(hearth_json_arr(rec, "grants"));
	cJSON_Delete(rec);
	return n;
}

static void
test_consent_grant_revoke(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_ok(t);
	const char *scope = "recipe:scene.movie_night";
	const char *s;
	double at;
	bool standing;
	cJSON *rec;

	assert_int_equal(hearth_consent_get(st, scope, &rec), HEARTH_E_NOT_FOUND);
	assert_int_equal(hearth_consent_allowed(st, scope, "run", 1000), 0);

	assert_int_equal(hearth_consent_grant(st, scope, "phone-1", "run", 1000, 0), 0);
	assert_int_equal(hearth_consent_grant(st, scope, "phone-2", "run", 1100, 5000), 0);
	/* The same who and what again: replaces, does not pile up. */
	assert_int_equal(hearth_consent_grant(st, scope, "phone-1", "run", 1200, 0), 0);
	tmpstore_flush(st);
	hearth_store_close(st);

	st = open_ok(t);
	assert_int_equal(hearth_consent_get(st, scope, &rec), 0);
	assert_int_equal(cJSON_GetArraySize(hearth_json_arr(rec, "grants")), 2);
	assert_int_equal(hearth_json_get_str(rec, "by", &s), 0);
	assert_string_equal(s, "phone-1");
	assert_int_equal(hearth_json_get_num(rec, "at", &at), 0);
	assert_true(at == 1200);
	assert_int_equal(hearth_json_get_bool(rec, "standing", &standing), 0);
	assert_false(standing);
	{
		char *text = hearth_json_print(rec);

		assert_string_equal(text, "{\"grants\":[{\"who\":\"phone-2\",\"what\":\"run\","
		                          "\"at\":1100,\"expires\":5000},{\"who\":\"phone-1\","
		                          "\"what\":\"run\",\"at\":1200}],\"standing\":false,"
		                          "\"by\":\"phone-1\",\"at\":1200}");
		hearth_free(text);
	}
	cJSON_Delete(rec);
	assert_int_equal(hearth_consent_allowed(st, scope, "run", 2000), 1);
	assert_int_equal(hearth_consent_allowed(st, scope, NULL, 2000), 1);
	assert_int_equal(hearth_consent_allowed(st, scope, "record", 2000), 0);

	/* Revoke phone-1's: phone-2's holds until it expires. */
	assert_int_equal(hearth_consent_revoke(st, scope, "phone-1", NULL), 0);
	tmpstore_flush(st);
	assert_int_equal(grants_of(st, scope), 1);
	assert_int_equal(hearth_consent_allowed(st, scope, "run", 4999), 1);
	assert_int_equal(hearth_consent_allowed(st, scope, "run", 5000), 0);

	/* The last grant goes: so does the record. */
	assert_int_equal(hearth_consent_revoke(st, scope, NULL, "run"), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_consent_get(st, scope, &rec), HEARTH_E_NOT_FOUND);
	/* Revoking what is not there is fine. */
	assert_int_equal(hearth_consent_revoke(st, scope, "phone-9", NULL), 0);
	tmpstore_flush(st);

	/* Refusals queue nothing. */
	assert_int_equal(hearth_consent_grant(st, "", "p", "run", 1, 0), HEARTH_E_INVALID);
	assert_int_equal(hearth_consent_grant(st, "has space", "p", "run", 1, 0), HEARTH_E_INVALID);
	assert_int_equal(hearth_consent_grant(st, scope, "p/1", "run", 1, 0), HEARTH_E_INVALID);
	assert_int_equal(hearth_consent_grant(st, scope, "p", NULL, 1, 0), HEARTH_E_INVALID);
	assert_int_equal(hearth_consent_grant(st, scope, "p", "run", 10, 5), HEARTH_E_INVALID);
	assert_int_equal(hearth_consent_set_standing(st, scope, true, NULL, 1), HEARTH_E_INVALID);
	assert_int_equal(hearth_store_pending(st), 0);
	hearth_store_close(st);
}

static void
test_consent_standing(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_ok(t);
	const char *scope = "class:presence/planner";
	bool standing;
	cJSON *rec;

	assert_int_equal(hearth_consent_set_standing(st, scope, true, "owner", 500), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_consent_allowed(st, scope, "anything", 1 << 30), 1);
	/* A standing record without grants survives revoking grants... */
	assert_int_equal(hearth_consent_grant(st, scope, "owner", "use", 600, 700), 0);
	assert_int_equal(hearth_consent_revoke(st, scope, "owner", "use"), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_consent_get(st, scope, &rec), 0);
	assert_int_equal(hearth_json_get_bool(rec, "standing", &standing), 0);
	assert_true(standing);
	cJSON_Delete(rec);
	/* ...and clearing standing leaves it in force no more. */
	assert_int_equal(hearth_consent_set_standing(st, scope, false, "owner", 800), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_consent_allowed(st, scope, "anything", 900), 0);
	/* Revoking everything removes the record, standing included. */
	assert_int_equal(hearth_consent_set_standing(st, scope, true, "owner", 1000), 0);
	assert_int_equal(hearth_consent_revoke(st, scope, NULL, NULL), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_consent_get(st, scope, &rec), HEARTH_E_NOT_FOUND);
	hearth_store_close(st);
}

struct scopes {
	int n;
	char s[8][64];
};

static int
collect_scope(void *ud, const char *scope, const char *json, size_t len)
{
	struct scopes *c = ud;

	assert_true(c->n < 8);
	snprintf(c->s[c->n++], sizeof(c->s[0]), "%s", scope);
	return 0;
}

static void
test_consent_list_and_cap(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_ok(t);
	struct scopes c = {0};
	char who[16];

	assert_int_equal(hearth_consent_grant(st, "recipe:b", "p", "run", 1, 0), 0);
	assert_int_equal(hearth_consent_grant(st, "recipe:a", "p", "run", 1, 0), 0);
	assert_int_equal(hearth_consent_grant(st, "class:presence/planner", "p", "use", 1, 0), 0);
	/* More grants than a scope keeps: the oldest go. */
	for (int i = 0; i < HEARTH_CONSENT_GRANTS_MAX + 5; i++) {
		snprintf(who, sizeof(who), "p%d", i);
		assert_int_equal(hearth_consent_grant(st, "recipe:many", who, "run", 10 + i, 0), 0);
	}
	tmpstore_flush(st);
	assert_int_equal(grants_of(st, "recipe:many"), HEARTH_CONSENT_GRANTS_MAX);

	assert_int_equal(hearth_consents_each(st, "recipe:", collect_scope, &c), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.s[0], "recipe:a");
	assert_string_equal(c.s[1], "recipe:b");
	assert_string_equal(c.s[2], "recipe:many");
	memset(&c, 0, sizeof(c));
	assert_int_equal(hearth_consents_each(st, NULL, collect_scope, &c), 0);
	assert_int_equal(c.n, 4);
	assert_string_equal(c.s[0], "class:presence/planner");
	hearth_store_close(st);

	/* Read-only: reads work, writes are refused. */
	st = open_opts(t, true);
	assert_int_equal(hearth_consent_allowed(st, "recipe:a", "run", 5), 1);
	assert_int_equal(hearth_consent_grant(st, "recipe:a", "p", "run", 1, 0), -EROFS);
	assert_int_equal(hearth_consent_revoke(st, "recipe:a", NULL, NULL), -EROFS);
	hearth_store_close(st);
}

static void
test_consent_alloc_failure(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_ok(t);
	char why[256];
	int err;

	EXPECT_ALLOC_SAFE(st, hearth_consent_grant(st, "recipe:x", "p", "run", 1, 0));
	EXPECT_ALLOC_SAFE(st, hearth_consent_set_standing(st, "recipe:x", true, "p", 2));
	EXPECT_ALLOC_SAFE(st, hearth_consent_revoke(st, "recipe:x", "p", NULL));
	/* Failures inside the flush keep the queue; the retry applies each op once. */
	for (long n = 0;; n++) {
		hearth_alloc_fail_after(n);
		err = hearth_store_flush(st, why, sizeof(why));
		hearth_alloc_fail_after(-1);
		if (!err)
			break;
		assert_int_equal(err, -ENOMEM);
		assert_int_equal(hearth_store_pending(st), 3);
		assert_true(n < 1000);
	}
	assert_int_equal(grants_of(st, "recipe:x"), 0);
	assert_int_equal(hearth_consent_allowed(st, "recipe:x", "run", 3), 1); /* standing */
	hearth_store_close(st);
}

/* ==== Secrets ==== */

struct names {
	int n;
	char name[8][160];
};

static int
collect_name(void *ud, const char *name)
{
	struct names *c = ud;

	assert_true(c->n < 8);
	snprintf(c->name[c->n++], sizeof(c->name[0]), "%s", name);
	return 0;
}

static const unsigned char key1[] = {0x00, 0x01, 0xfe, 0xff, 'K', 'E', 'Y', '-', 'O', 'N', 'E'};
static const char key2[] = "SECRET-VALUE-TWO-9f3a";

static void
test_secrets_roundtrip(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_ok(t);
	unsigned char buf[64];
	struct names c = {0};
	size_t len;

	assert_int_equal(hearth_secret_get(st, "phone/phone-1", buf, sizeof(buf), &len),
	                 HEARTH_E_NOT_FOUND);
	assert_int_equal(hearth_secret_put(st, "phone/phone-1", key1, sizeof(key1)), 0);
	assert_int_equal(hearth_secret_put(st, "audit/checkpoint", key2, strlen(key2)), 0);
	tmpstore_flush(st);
	hearth_store_close(st);

	st = open_ok(t);
	assert_int_equal(hearth_secret_get(st, "phone/phone-1", buf, sizeof(buf), &len), 0);
	assert_int_equal(len, sizeof(key1));
	assert_memory_equal(buf, key1, sizeof(key1));
	/* Too small a buffer: the size needed, and the buffer untouched. */
	memset(buf, 0xAA, sizeof(buf));
	assert_int_equal(hearth_secret_get(st, "audit/checkpoint", buf, 4, &len),
	                 HEARTH_E_TOO_LARGE);
	assert_int_equal(len, strlen(key2));
	assert_int_equal(buf[0], 0xAA);
	assert_int_equal(hearth_secret_get(st, "audit/checkpoint", NULL, 0, &len),
	                 HEARTH_E_TOO_LARGE);
	assert_int_equal(len, strlen(key2));

	/* Listing gives names, in order. */
	assert_int_equal(hearth_secrets_each(st, collect_name, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.name[0], "audit/checkpoint");
	assert_string_equal(c.name[1], "phone/phone-1");

	/* Replace, delete. */
	assert_int_equal(hearth_secret_put(st, "phone/phone-1", "new", 3), 0);
	assert_int_equal(hearth_secret_del(st, "audit/checkpoint"), 0);
	assert_int_equal(hearth_secret_del(st, "never-there"), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_secret_get(st, "phone/phone-1", buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(buf, "new", 3);
	assert_int_equal(hearth_secret_get(st, "audit/checkpoint", buf, sizeof(buf), &len),
	                 HEARTH_E_NOT_FOUND);

	/* Refusals queue nothing. */
	{
		static unsigned char big[HEARTH_SECRET_VALUE_MAX + 1];

		assert_int_equal(hearth_secret_put(st, "big", big, sizeof(big)),
		                 HEARTH_E_TOO_LARGE);
	}
	assert_int_equal(hearth_secret_put(st, "", "x", 1), HEARTH_E_INVALID);
	assert_int_equal(hearth_secret_put(st, "with space", "x", 1), HEARTH_E_INVALID);
	assert_int_equal(hearth_secret_put(st, "empty", "x", 0), HEARTH_E_INVALID);
	assert_int_equal(hearth_store_pending(st), 0);
	hearth_store_close(st);

	st = open_opts(t, true);
	assert_int_equal(hearth_secret_put(st, "x", "x", 1), -EROFS);
	assert_int_equal(hearth_secret_del(st, "x"), -EROFS);
	hearth_store_close(st);
}

static void
test_secrets_file_mode(void **state)
{
	struct tmp *t = *state;
	mode_t old = umask(0); /* the modes must come from the store, not the umask */
	hearth_store *st = open_ok(t);
	char path[192];
	struct stat sb;

	umask(old);
	assert_int_equal(hearth_secret_put(st, "phone/phone-1", key1, sizeof(key1)), 0);
	tmpstore_flush(st);
	snprintf(path, sizeof(path), "%s/data.mdb", t->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	snprintf(path, sizeof(path), "%s/lock.mdb", t->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_int_equal(stat(t->dir, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	hearth_store_close(st);
}

/* Does the file hold the bytes anywhere? */
static bool
file_holds(const char *path, const void *needle, size_t n)
{
	static char buf[1 << 16];
	FILE *f = fopen(path, "rb");
	size_t len;

	assert_non_null(f);
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return memmem(buf, len, needle, n) != NULL;
}

static void
test_secrets_never_logged(void **state)
{
	struct tmp *t = *state;
	char logpath[192];
	unsigned char buf[64];
	struct names c = {0};
	hearth_store *st;
	size_t len;
	int fd, saved;

	/* Everything the store and the secrets module log goes to a file. */
	snprintf(logpath, sizeof(logpath), "%s/log.txt", t->root);
	fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	hearth_log_set_level(HEARTH_LOG_TRACE);

	st = open_ok(t);
	assert_int_equal(hearth_secret_put(st, "phone/phone-1", key2, strlen(key2)), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_secret_get(st, "phone/phone-1", buf, sizeof(buf), &len), 0);
	assert_int_equal(hearth_secret_get(st, "phone/phone-1", buf, 2, &len), HEARTH_E_TOO_LARGE);
	assert_int_equal(hearth_secrets_each(st, collect_name, &c), 0);
	assert_int_equal(hearth_secret_del(st, "phone/phone-1"), 0);
	hearth_store_close(st); /* flushes the delete */

	fflush(stderr);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	hearth_log_set_level(HEARTH_LOG_INFO);
	assert_false(file_holds(logpath, key2, strlen(key2)));
	assert_false(file_holds(logpath, "VALUE-TWO", 9));
}

static void
test_secrets_alloc_failure(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_ok(t);
	unsigned char buf[64];
	size_t len;

	EXPECT_ALLOC_SAFE(st, hearth_secret_put(st, "phone/phone-1", key1, sizeof(key1)));
	EXPECT_ALLOC_SAFE(st, hearth_secret_del(st, "phone/phone-0"));
	tmpstore_flush(st);
	assert_int_equal(hearth_secret_get(st, "phone/phone-1", buf, sizeof(buf), &len), 0);
	assert_int_equal(len, sizeof(key1));
	hearth_store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_consent_grant_revoke, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_consent_standing, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_consent_list_and_cap, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_consent_alloc_failure, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_secrets_roundtrip, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_secrets_file_mode, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_secrets_never_logged, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_secrets_alloc_failure, tmpstore_setup,
	                                        tmpstore_teardown),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
