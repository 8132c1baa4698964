/*
 * test_secrets_approver.c - paired phones' keys in the secrets database:
 * round trips across flush and reopen, a clear not-found, hostile names
 * refused, unpairing, listing names and dates without keys, the store's
 * files forced to 0600, and the key signing an approval response exactly as
 * Python's hmac module does (DESIGN.md section 4).
 *
 * When HEARTH_PAIR_DIR, HEARTH_PAIR_NAME, HEARTH_PAIR_MSG and HEARTH_PAIR_MAC
 * are set (tests/integration/test_pairing.py sets them), one more test opens
 * that store read-only and checks that the key `hearthctl pair` stored signs
 * HEARTH_PAIR_MSG into HEARTH_PAIR_MAC, a MAC computed in Python from the
 * key hearthctl printed. Without them that test is skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "memory/secrets.h"
#include "memory/store.h"
#include "platform/alloc.h"
#include "platform/crypto.h"
#include "platform/err.h"
#include "tests/unit/support/tmpstore.h"

static const int64_t T0 = 1795367052065;

static void
key_of(uint8_t key[HEARTH_APPROVER_KEY_LEN], uint8_t first)
{
	for (int i = 0; i < HEARTH_APPROVER_KEY_LEN; i++)
		key[i] = (uint8_t)(first + i);
}

static void
test_roundtrip_and_reopen(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = tmpstore_open(t);
	uint8_t key[HEARTH_APPROVER_KEY_LEN], got[HEARTH_APPROVER_KEY_LEN];
	int64_t at = 0;

	key_of(key, 0);
	assert_int_equal(hearth_secrets_approver_put(st, "phone-1", key, T0), 0);
	/* Reads see what is committed. */
	assert_int_equal(hearth_secrets_approver_key(st, "phone-1", got), HEARTH_E_NOT_FOUND);
	tmpstore_flush(st);
	assert_int_equal(hearth_secrets_approver_key(st, "phone-1", got), 0);
	assert_memory_equal(got, key, sizeof(key));
	assert_int_equal(hearth_secrets_approver_paired_at(st, "phone-1", &at), 0);
	assert_int_equal(at, T0);
	hearth_store_close(st);

	st = tmpstore_open(t);
	memset(got, 0, sizeof(got));
	assert_int_equal(hearth_secrets_approver_key(st, "phone-1", got), 0);
	assert_memory_equal(got, key, sizeof(key));
	/* Rotating replaces the key and the date. */
	key_of(key, 100);
	assert_int_equal(hearth_secrets_approver_put(st, "phone-1", key, T0 + 5), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_secrets_approver_key(st, "phone-1", got), 0);
	assert_memory_equal(got, key, sizeof(key));
	assert_int_equal(hearth_secrets_approver_paired_at(st, "phone-1", &at), 0);
	assert_int_equal(at, T0 + 5);
	hearth_store_close(st);
}

static void
test_not_found_and_hostile_names(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = tmpstore_open(t);
	uint8_t key[HEARTH_APPROVER_KEY_LEN], got[HEARTH_APPROVER_KEY_LEN];
	static const char *const bad[] = {"",       "a/b",      "+",        "#", "phone 1",
	                                  "ph\x01", "approver", "\xc3\xa9", NULL};
	char longname[66];

	memset(got, 0xaa, sizeof(got));
	key_of(key, 7);
	assert_int_equal(hearth_secrets_approver_key(st, "nobody", got), HEARTH_E_NOT_FOUND);
	for (size_t i = 0; i < sizeof(got); i++)
		assert_int_equal(got[i], 0xaa); /* untouched */
	assert_int_equal(hearth_secrets_approver_del(st, "nobody"), HEARTH_E_NOT_FOUND);
	for (int i = 0; bad[i]; i++) {
		if (!strcmp(bad[i], "approver"))
			continue; /* a valid id, just an odd name */
		assert_int_equal(hearth_secrets_approver_put(st, bad[i], key, T0),
		                 HEARTH_E_INVALID);
		assert_int_equal(hearth_secrets_approver_key(st, bad[i], got), HEARTH_E_INVALID);
		assert_int_equal(hearth_secrets_approver_del(st, bad[i]), HEARTH_E_INVALID);
	}
	memset(longname, 'p', 65);
	longname[65] = '\0';
	assert_int_equal(hearth_secrets_approver_put(st, longname, key, T0), HEARTH_E_INVALID);
	longname[64] = '\0';
	assert_int_equal(hearth_secrets_approver_put(st, longname, key, T0), 0);
	assert_int_equal(hearth_secrets_approver_put(st, NULL, key, T0), HEARTH_E_INVALID);
	assert_int_equal(hearth_secrets_approver_key(st, "x", NULL), HEARTH_E_INVALID);
	assert_int_equal(hearth_store_pending(st), 1);
	tmpstore_flush(st);
	assert_int_equal(hearth_secrets_approver_key(st, longname, got), 0);
	/* A secret of another shape under the prefix is not a key. */
	assert_int_equal(hearth_secret_put(st, HEARTH_APPROVER_PREFIX "odd", "short", 5), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_secrets_approver_key(st, "odd", got), HEARTH_E_CORRUPT);
	assert_int_equal(hearth_secrets_approver_del(st, "odd"), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_secrets_approver_key(st, "odd", got), HEARTH_E_NOT_FOUND);
	hearth_store_close(st);
}

struct seen {
	char names[8][72];
	int64_t at[8];
	int n;
};

static int
collect(void *ud, const char *name, int64_t paired_at)
{
	struct seen *s = ud;

	assert_true(s->n < 8);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->at[s->n++] = paired_at;
	return 0;
}

static void
test_list_and_unpair(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = tmpstore_open(t);
	uint8_t key[HEARTH_APPROVER_KEY_LEN];
	struct seen s = {0};

	key_of(key, 1);
	assert_int_equal(hearth_secrets_approver_put(st, "phone-b", key, T0 + 2), 0);
	assert_int_equal(hearth_secrets_approver_put(st, "phone-a", key, T0 + 1), 0);
	/* Other secrets (the audit key) are not approvers. */
	assert_int_equal(hearth_secret_put(st, "audit.checkpoint_key", key, sizeof(key)), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_secrets_approvers_each(st, collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.names[0], "phone-a");
	assert_int_equal(s.at[0], T0 + 1);
	assert_string_equal(s.names[1], "phone-b");
	assert_int_equal(s.at[1], T0 + 2);

	assert_int_equal(hearth_secrets_approver_del(st, "phone-a"), 0);
	tmpstore_flush(st);
	memset(&s, 0, sizeof(s));
	assert_int_equal(hearth_secrets_approvers_each(st, collect, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.names[0], "phone-b");
	assert_int_equal(hearth_secrets_approver_del(st, "phone-a"), HEARTH_E_NOT_FOUND);
	assert_int_equal(hearth_secrets_approvers_each(st, NULL, NULL), HEARTH_E_INVALID);
	hearth_store_close(st);
}

static void
test_files_made_0600(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = tmpstore_open(t);
	uint8_t key[HEARTH_APPROVER_KEY_LEN];
	char data[192], lock[192];
	struct stat sb;

	key_of(key, 3);
	tmpstore_flush(st);
	snprintf(data, sizeof(data), "%s/data.mdb", t->dir);
	snprintf(lock, sizeof(lock), "%s/lock.mdb", t->dir);
	/* Say a restore or an admin loosened them. */
	assert_int_equal(chmod(data, 0644), 0);
	assert_int_equal(chmod(lock, 0666), 0);
	assert_int_equal(hearth_secrets_approver_put(st, "phone-1", key, T0), 0);
	tmpstore_flush(st);
	assert_int_equal(stat(data, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_int_equal(stat(lock, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	hearth_store_close(st);
}

/* The message an approval response signs (DESIGN.md section 4). */
static void
sign(const uint8_t key[HEARTH_APPROVER_KEY_LEN], const char *msg, char hex[65])
{
	uint8_t mac[HEARTH_SHA256_LEN];

	assert_int_equal(hearth_hmac_sha256(key, HEARTH_APPROVER_KEY_LEN, msg, strlen(msg), mac),
	                 0);
	hearth_hex_encode(mac, sizeof(mac), hex);
}

static void
test_mac_matches_python(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = tmpstore_open(t);
	uint8_t key[HEARTH_APPROVER_KEY_LEN], got[HEARTH_APPROVER_KEY_LEN];
	char hex[65];

	/*
	 * python3 -c 'import hmac,hashlib; print(hmac.new(bytes(range(32)),
	 *   b"p-42|approve|00112233445566778899aabbccddeeff|1795367052065",
	 *   hashlib.sha256).hexdigest())'
	 */
	key_of(key, 0);
	assert_int_equal(hearth_secrets_approver_put(st, "phone-1", key, T0), 0);
	tmpstore_flush(st);
	assert_int_equal(hearth_secrets_approver_key(st, "phone-1", got), 0);
	sign(got, "p-42|approve|00112233445566778899aabbccddeeff|1795367052065", hex);
	assert_string_equal(hex,
	                    "430a8dda9da14b7951e9f788c7a764a4a1b64081ec8fa272ae037e42b988516e");
	hearth_store_close(st);
}

/* The key hearthctl pair stored signs as Python did with the key it printed. */
static void
test_paired_key_signs_like_python(void **state)
{
	const char *dir = getenv("HEARTH_PAIR_DIR"), *name = getenv("HEARTH_PAIR_NAME");
	const char *msg = getenv("HEARTH_PAIR_MSG"), *want = getenv("HEARTH_PAIR_MAC");
	struct hearth_store_opts o = {.read_only = true};
	uint8_t key[HEARTH_APPROVER_KEY_LEN];
	hearth_store *st = NULL;
	char why[256], hex[65];

	if (!dir || !name || !msg || !want)
		skip();
	o.dir = dir;
	assert_int_equal(hearth_store_open(&o, &st, why, sizeof(why)), 0);
	assert_int_equal(hearth_secrets_approver_key(st, name, key), 0);
	sign(key, msg, hex);
	assert_string_equal(hex, want);
	hearth_store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_roundtrip_and_reopen, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_not_found_and_hostile_names, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_list_and_unpair, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_files_made_0600, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_mac_matches_python, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test(test_paired_key_signs_like_python),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
