/*
 * test_audit.c - the audit chain: appends across flushes verify, the stored
 * form is the documented canonical text, and every kind of tampering done
 * through raw LMDB (one edited byte, a deleted, swapped or inserted record,
 * a forged checkpoint or head) is reported at the right sequence number;
 * retention keeps the chain verifiable; sealing round-trips and detects a
 * flipped ciphertext byte; a flush dropped on a full map leaves no gap;
 * export writes one line per record; allocation failures lose nothing.
 * Every test works in its own mkdtemp directory, removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hearth_config.h"
#include "memory/audit.h"
#include "memory/store.h"
#include "platform/alloc.h"
#include "platform/crypto.h"
#include "platform/err.h"
#include "platform/json.h"
#include "tests/unit/support/tmpstore.h"

static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";

/* ==== Store helpers ==== */

static hearth_store *
open_store(const struct tmp *t, bool read_only, size_t map_size, size_t map_max)
{
	struct hearth_store_opts o = {
	        .dir = t->dir,
	        .read_only = read_only,
	        .no_sync = true,
	        .map_size = map_size,
	        .map_max = map_max,
	};
	hearth_store *st = NULL;
	char why[256];
	int err = hearth_store_open(&o, &st, why, sizeof(why));

	if (err)
		fail_msg("open %s: %d %s", t->dir, err, why);
	return st;
}

static hearth_store *
open_rw(const struct tmp *t)
{
	return open_store(t, false, 0, 0);
}

static hearth_store *
open_ro(const struct tmp *t)
{
	return open_store(t, true, 0, 0);
}

static void
close_store(hearth_store *st)
{
	hearth_audit_forget(st);
	hearth_store_close(st);
}

static void
flush_ok(hearth_store *st)
{
	char why[256];
	int err = hearth_store_flush(st, why, sizeof(why));

	if (err)
		fail_msg("flush: %d %s", err, why);
}

/* Records seq from..from+n-1 (by count), ts 1000 s apart from ts0. */
static void
append_n(hearth_store *st, int from, int n, int64_t ts0)
{
	char subject[32], detail[160];

	for (int i = from; i < from + n; i++) {
		snprintf(subject, sizeof(subject), "p-%d", i);
		snprintf(detail, sizeof(detail),
		         "{\"n\":%d,\"z\":[1,2.5,\"x\\ny\"],\"a\":{\"y\":null,\"b\":true},"
		         "\"f\":0.1,\"big\":1e300,\"neg\":-0,\"u\":\"caf\\u00e9 \\u2603\"}",
		         i);
		assert_int_equal(hearth_audit_append(st, ts0 + (int64_t)(i - from) * 1000,
		                                     "plan.completed", subject, detail),
		                 0);
	}
}

static void
verify_ok(hearth_store *st, uint64_t first, uint64_t last)
{
	struct hearth_audit_report r;
	int err = hearth_audit_verify(st, &r);

	if (err)
		fail_msg("verify: %d, bad %" PRIu64 ": %s", err, r.bad_seq, r.why);
	assert_int_equal(r.bad_seq, 0);
	assert_int_equal(r.first_seq, first);
	assert_int_equal(r.last_seq, last);
	assert_int_equal(r.records, last ? last - first + 1 : 0);
}

/* Verify the store in t read-only (as hearthctl does); expect bad_seq, and want in why. */
static void
verify_bad(const struct tmp *t, const uint8_t *seal_key, uint64_t bad, const char *want)
{
	struct hearth_audit_report r;
	hearth_store *st = open_ro(t);
	int err;

	if (seal_key)
		assert_int_equal(hearth_audit_set_seal_key(st, seal_key), 0);
	err = hearth_audit_verify(st, &r);
	if (err != HEARTH_E_CORRUPT || r.bad_seq != bad || !strstr(r.why, want))
		fail_msg("verify: %d, bad %" PRIu64 " (want %" PRIu64 "): %s (want \"%s\")", err,
		         r.bad_seq, bad, r.why, want);
	close_store(st);
}

static void
verify_ro_ok(const struct tmp *t, const uint8_t *seal_key, uint64_t first, uint64_t last)
{
	hearth_store *st = open_ro(t);

	if (seal_key)
		assert_int_equal(hearth_audit_set_seal_key(st, seal_key), 0);
	verify_ok(st, first, last);
	close_store(st);
}

/* ==== Raw LMDB, as an attacker (or a bad disk) would touch the store ==== */

struct raw {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
};

static void
raw_begin(struct raw *r, const char *dir, const char *db)
{
	assert_int_equal(mdb_env_create(&r->env), 0);
	assert_int_equal(mdb_env_set_maxdbs(r->env, 16), 0);
	assert_int_equal(mdb_env_open(r->env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
	assert_int_equal(mdb_dbi_open(r->txn, db, 0, &r->dbi), 0);
}

static void
raw_end(struct raw *r)
{
	assert_int_equal(mdb_txn_commit(r->txn), 0);
	mdb_env_close(r->env);
}

static MDB_val
seq_key(unsigned char kb[8], uint64_t seq)
{
	for (int i = 7; i >= 0; i--) {
		kb[i] = (unsigned char)(seq & 0xff);
		seq >>= 8;
	}
	return (MDB_val){8, kb};
}

/* A copy of the value under key (k, klen) in db; *len its size. The caller frees. */
static unsigned char *
raw_get(const char *dir, const char *db, const void *k, size_t klen, size_t *len)
{
	struct raw r;
	MDB_val kv = {klen, (void *)k}, v;
	unsigned char *copy;

	raw_begin(&r, dir, db);
	assert_int_equal(mdb_get(r.txn, r.dbi, &kv, &v), 0);
	copy = malloc(v.mv_size + 1);
	assert_non_null(copy);
	memcpy(copy, v.mv_data, v.mv_size);
	copy[v.mv_size] = '\0';
	*len = v.mv_size;
	raw_end(&r);
	return copy;
}

static void
raw_put(const char *dir, const char *db, const void *k, size_t klen, const void *val, size_t len)
{
	struct raw r;
	MDB_val kv = {klen, (void *)k}, v = {len, (void *)val};

	raw_begin(&r, dir, db);
	assert_int_equal(mdb_put(r.txn, r.dbi, &kv, &v, 0), 0);
	raw_end(&r);
}

static void
raw_del(const char *dir, const char *db, const void *k, size_t klen)
{
	struct raw r;
	MDB_val kv = {klen, (void *)k};

	raw_begin(&r, dir, db);
	assert_int_equal(mdb_del(r.txn, r.dbi, &kv, NULL), 0);
	raw_end(&r);
}

static unsigned char *
rec_get(const char *dir, uint64_t seq, size_t *len)
{
	unsigned char kb[8];
	MDB_val k = seq_key(kb, seq);

	return raw_get(dir, "audit", k.mv_data, 8, len);
}

static void
rec_put(const char *dir, uint64_t seq, const void *val, size_t len)
{
	unsigned char kb[8];

	seq_key(kb, seq);
	raw_put(dir, "audit", kb, 8, val, len);
}

static void
rec_del(const char *dir, uint64_t seq)
{
	unsigned char kb[8];

	seq_key(kb, seq);
	raw_del(dir, "audit", kb, 8);
}

/* ==== Tests ==== */

static void
test_append_verify(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_rw(t);

	verify_ok(st, 0, 0); /* an empty chain verifies */
	append_n(st, 1, 10, 1000);
	flush_ok(st);
	append_n(st, 11, 7, 50000);
	/* queued but not flushed: not there yet */
	verify_ok(st, 1, 10);
	flush_ok(st);
	append_n(st, 18, 13, 90000);
	flush_ok(st);
	verify_ok(st, 1, 30);
	close_store(st);
	/* hearthctl's way: read-only, from another open */
	verify_ro_ok(t, NULL, 1, 30);
	/* and appends go on after a reopen */
	st = open_rw(t);
	append_n(st, 31, 2, 200000);
	flush_ok(st);
	verify_ok(st, 1, 32);
	close_store(st);
}

/* The stored record is exactly the canonical text of audit.h plus its hash. */
static void
test_canonical_form(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_rw(t);
	char text[1024], want[1200], hex[65];
	uint8_t hash[HEARTH_SHA256_LEN];
	unsigned char *got;
	size_t len;

	assert_int_equal(
	        hearth_audit_append(st, 1700000000123, "approval.granted", "door \"1\"",
	                            "{ \"z\": [3, 1.5, {\"b\":2,\"a\":1}], \"a\": \"\\t\\u0001\","
	                            " \"m\": 12345678901234567890, \"f\": -0.25 }"),
	        0);
	assert_int_equal(hearth_audit_append(st, 5, "x", "", NULL), 0);
	flush_ok(st);
	close_store(st);

	snprintf(text, sizeof(text),
	         "{\"seq\":1,\"ts\":1700000000123,\"kind\":\"approval.granted\",\"subject\":\"door "
	         "\\\"1\\\"\",\"detail\":{\"a\":\"\\t\\u0001\",\"f\":-0.25,\"m\":1."
	         "2345678901234567e+19,\"z\":[3,1.5,{\"a\":1,\"b\":2}]},\"prev_hash\":\"%s\"}",
	         zeros);
	assert_int_equal(hearth_sha256(text, strlen(text), hash), 0);
	hearth_hex_encode(hash, sizeof(hash), hex);
	snprintf(want, sizeof(want), "%.*s,\"hash\":\"%s\"}", (int)strlen(text) - 1, text, hex);
	got = rec_get(t->dir, 1, &len);
	assert_string_equal((char *)got, want);
	free(got);

	/* the second links to the first; a NULL detail is {} */
	snprintf(text, sizeof(text),
	         "{\"seq\":2,\"ts\":5,\"kind\":\"x\",\"subject\":\"\",\"detail\":{},"
	         "\"prev_hash\":\"%s\"}",
	         hex);
	assert_int_equal(hearth_sha256(text, strlen(text), hash), 0);
	hearth_hex_encode(hash, sizeof(hash), hex);
	snprintf(want, sizeof(want), "%.*s,\"hash\":\"%s\"}", (int)strlen(text) - 1, text, hex);
	got = rec_get(t->dir, 2, &len);
	assert_string_equal((char *)got, want);
	free(got);
	verify_ro_ok(t, NULL, 1, 2);
}

/* One edited byte anywhere in record k is reported at k. */
static void
test_edit_one_byte(void **state)
{
	struct tmp *t = *state;
	const uint64_t ks[] = {1, 9, 20};
	hearth_store *st = open_rw(t);

	append_n(st, 1, 12, 1000);
	flush_ok(st);
	append_n(st, 13, 8, 90000);
	flush_ok(st);
	close_store(st);

	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		size_t len;
		unsigned char *orig = rec_get(t->dir, ks[i], &len);
		size_t offs[] = {1, 8, len / 2, len - 40, len - 3};

		for (size_t j = 0; j < sizeof(offs) / sizeof(offs[0]); j++) {
			unsigned char *ed = malloc(len);

			memcpy(ed, orig, len);
			ed[offs[j]] ^= 0x01;
			rec_put(t->dir, ks[i], ed, len);
			verify_bad(t, NULL, ks[i], "record");
			free(ed);
		}
		/* a digit changed for another digit keeps the JSON valid: still caught */
		{
			unsigned char *ed = malloc(len);
			char *p;

			memcpy(ed, orig, len);
			p = strstr((char *)orig, "\"n\":");
			assert_non_null(p);
			ed[p - (char *)orig + 4] = ed[p - (char *)orig + 4] == '7' ? '8' : '7';
			rec_put(t->dir, ks[i], ed, len);
			verify_bad(t, NULL, ks[i], "hash does not match its content (edited?)");
			free(ed);
		}
		rec_put(t->dir, ks[i], orig, len);
		verify_ro_ok(t, NULL, 1, 20);
		free(orig);
	}
}

static void
test_delete_record(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_rw(t);
	unsigned char *saved;
	size_t len;

	append_n(st, 1, 20, 1000);
	flush_ok(st);
	close_store(st);

	saved = rec_get(t->dir, 7, &len);
	rec_del(t->dir, 7);
	verify_bad(t, NULL, 7, "record 7 is missing (deleted?)");
	rec_put(t->dir, 7, saved, len);
	free(saved);
	verify_ro_ok(t, NULL, 1, 20);

	/* two in a row */
	rec_del(t->dir, 3);
	rec_del(t->dir, 4);
	verify_bad(t, NULL, 3, "records 3-4 are missing (deleted?)");
}

/* Deleting from the end leaves no gap: the signed head tells. Appending does not hide it. */
static void
test_delete_tail(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_rw(t);

	append_n(st, 1, 20, 1000);
	flush_ok(st);
	close_store(st);

	rec_del(t->dir, 20);
	verify_bad(t, NULL, 20, "record 20 is missing from the end");
	rec_del(t->dir, 19);
	verify_bad(t, NULL, 19, "records 19-20 are missing from the end");

	st = open_rw(t);
	append_n(st, 21, 3, 90000);
	flush_ok(st);
	close_store(st);
	verify_bad(t, NULL, 19, "records 19-20 are missing (deleted?)");
}

static void
test_swap_records(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_rw(t);
	unsigned char *a, *b;
	size_t alen, blen;

	append_n(st, 1, 12, 1000);
	flush_ok(st);
	close_store(st);

	a = rec_get(t->dir, 5, &alen);
	b = rec_get(t->dir, 9, &blen);
	rec_put(t->dir, 5, b, blen);
	rec_put(t->dir, 9, a, alen);
	verify_bad(t, NULL, 5, "record 5 holds the content of record 9 (reordered");
	free(a);
	free(b);
}

/* A record built like the module would, with any prev_hash: valid hash, wrong link. */
static void
forge(const struct tmp *t, uint64_t seq, const char *prev_hex)
{
	char text[512], rec[600], hex[65];
	uint8_t hash[HEARTH_SHA256_LEN];

	snprintf(text, sizeof(text),
	         "{\"seq\":%" PRIu64 ",\"ts\":999999,\"kind\":\"door.unlocked\",\"subject\":"
	         "\"front\",\"detail\":{},\"prev_hash\":\"%s\"}",
	         seq, prev_hex);
	assert_int_equal(hearth_sha256(text, strlen(text), hash), 0);
	hearth_hex_encode(hash, sizeof(hash), hex);
	snprintf(rec, sizeof(rec), "%.*s,\"hash\":\"%s\"}", (int)strlen(text) - 1, text, hex);
	rec_put(t->dir, seq, rec, strlen(rec));
}

static void
test_insert_forged(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_rw(t);
	char hex[65];
	cJSON *o;
	const char *h;
	unsigned char *last;
	size_t len;

	append_n(st, 1, 10, 1000);
	flush_ok(st);
	close_store(st);

	/* valid-looking hash, wrong prev_hash */
	forge(t, 11, "1111111111111111111111111111111111111111111111111111111111111111");
	verify_bad(t, NULL, 11, "record 11 does not follow record 10");

	/* right prev_hash too: the head (MAC under the store's key) still tells */
	last = rec_get(t->dir, 10, &len);
	assert_int_equal(hearth_json_parse(last, len, &o, NULL, 0), 0);
	assert_int_equal(hearth_json_get_str(o, "hash", &h), 0);
	snprintf(hex, sizeof(hex), "%s", h);
	cJSON_Delete(o);
	free(last);
	forge(t, 11, hex);
	verify_bad(t, NULL, 11, "record 11 is past the chain's signed head (inserted?)");

	/* and the next append does not adopt it */
	st = open_rw(t);
	append_n(st, 12, 1, 90000);
	flush_ok(st);
	close_store(st);
	verify_bad(t, NULL, 11, "behind the records at record 11");

	/* a record with a malformed key in the middle */
	raw_put(t->dir, "audit", "\x00\x00\x00\x00\x00\x00\x00\x05x", 9, "{}", 2);
	verify_bad(t, NULL, 6, "malformed key");
}

static void
test_retention(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_rw(t);
	struct hearth_audit_report r;
	char *buf = NULL;
	size_t blen = 0;
	FILE *f;

	append_n(st, 1, 50, 1000); /* ts 1000 .. 50000 */
	flush_ok(st);
	/* older than 20 s at 51 s: ts < 31000, records 1-30 */
	assert_int_equal(hearth_audit_retain(st, 51000, 20000, 5), 0);
	flush_ok(st);
	assert_int_equal(hearth_audit_verify(st, &r), 0);
	assert_int_equal(r.pruned_upto, 30);
	verify_ok(st, 31, 50);
	close_store(st);
	verify_ro_ok(t, NULL, 31, 50);

	/* keep_min wins over age */
	st = open_rw(t);
	append_n(st, 51, 5, 60000);
	assert_int_equal(hearth_audit_retain(st, 1000000, 0, 10), 0);
	flush_ok(st);
	verify_ok(st, 46, 55);

	/* everything pruned: the checkpoint alone carries the chain */
	assert_int_equal(hearth_audit_retain(st, 1000000, 0, 0), 0);
	flush_ok(st);
	assert_int_equal(hearth_audit_verify(st, &r), 0);
	assert_int_equal(r.records, 0);
	assert_int_equal(r.pruned_upto, 55);
	append_n(st, 56, 1, 2000000);
	flush_ok(st);
	verify_ok(st, 56, 56);
	f = open_memstream(&buf, &blen);
	assert_non_null(f);
	assert_int_equal(hearth_audit_export(st, f), 1);
	fclose(f);
	assert_non_null(strstr(buf, "\"seq\":56,"));
	free(buf);
	close_store(st);
}

/* Retention never signs over a broken record. */
static void
test_retention_stops_at_damage(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_rw(t);
	struct hearth_audit_report r;
	unsigned char *v;
	size_t len;

	append_n(st, 1, 20, 1000);
	flush_ok(st);
	close_store(st);
	v = rec_get(t->dir, 8, &len);
	v[len / 2] ^= 0x04;
	rec_put(t->dir, 8, v, len);
	free(v);

	st = open_rw(t);
	assert_int_equal(hearth_audit_retain(st, 1000000, 0, 0), 0);
	flush_ok(st);
	assert_int_equal(hearth_audit_verify(st, &r), HEARTH_E_CORRUPT);
	assert_int_equal(r.pruned_upto, 7);
	assert_int_equal(r.bad_seq, 8);
	close_store(st);
}

static void
test_checkpoint_tamper(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_rw(t);
	unsigned char *cp, *ed, kb[8];
	size_t len;
	char *p;

	append_n(st, 1, 40, 1000);
	assert_int_equal(hearth_audit_retain(st, 41000, 10000, 0), 0); /* ts < 31000: 1-30 */
	flush_ok(st);
	verify_ok(st, 31, 40);
	close_store(st);

	cp = raw_get(t->dir, "meta", "audit_checkpoint", 16, &len);
	ed = malloc(len + 1);
	/* the mac */
	memcpy(ed, cp, len);
	ed[len - 5] = ed[len - 5] == 'a' ? 'b' : 'a';
	raw_put(t->dir, "meta", "audit_checkpoint", 16, ed, len);
	verify_bad(t, NULL, 31, "checkpoint of pruned records 1-30 does not verify");
	/* the range it covers */
	memcpy(ed, cp, len);
	p = strstr((char *)ed, "\"upto_seq\":30");
	assert_non_null(p);
	p[12] = '1';
	raw_put(t->dir, "meta", "audit_checkpoint", 16, ed, len);
	verify_bad(t, NULL, 32, "does not verify (forged?)");
	/* gone: the pruned records read as deleted */
	raw_del(t->dir, "meta", "audit_checkpoint", 16);
	verify_bad(t, NULL, 1, "records 1-30 are missing (deleted?)");
	raw_put(t->dir, "meta", "audit_checkpoint", 16, cp, len);
	verify_ro_ok(t, NULL, 31, 40);

	/* a record put back in the pruned part */
	seq_key(kb, 3);
	raw_put(t->dir, "audit", kb, 8, "{}", 2);
	verify_bad(t, NULL, 3, "lies in the pruned part");
	raw_del(t->dir, "audit", kb, 8);

	/* the MAC key gone */
	raw_del(t->dir, "secrets", "audit.checkpoint_key", 20);
	verify_bad(t, NULL, 31, "key is missing");
	free(ed);
	free(cp);
}

static void
test_head_tamper(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_rw(t);
	unsigned char *h, *ed;
	size_t len;

	append_n(st, 1, 5, 1000);
	flush_ok(st);
	close_store(st);

	h = raw_get(t->dir, "meta", "audit_head", 10, &len);
	ed = malloc(len);
	memcpy(ed, h, len);
	ed[len - 5] = ed[len - 5] == 'a' ? 'b' : 'a';
	raw_put(t->dir, "meta", "audit_head", 10, ed, len);
	verify_bad(t, NULL, 6, "head anchor does not verify");

	/* an append re-signs the head, but the finding is carried */
	st = open_rw(t);
	append_n(st, 6, 2, 90000);
	flush_ok(st);
	close_store(st);
	verify_bad(t, NULL, 6, "altered or behind the records at record 6");

	/* a head deleted outright */
	raw_del(t->dir, "meta", "audit_head", 10);
	verify_bad(t, NULL, 8, "head anchor is missing");
	free(ed);
	free(h);
}

static void
test_sealed(void **state)
{
	struct tmp *t = *state;
	uint8_t key[HEARTH_AUDIT_KEY_LEN], other[HEARTH_AUDIT_KEY_LEN];
	struct hearth_audit_report r;
	hearth_store *st = open_rw(t);
	unsigned char *v;
	char *buf = NULL, *line;
	size_t len, blen = 0;
	int lines = 0;
	FILE *f;

	for (int i = 0; i < HEARTH_AUDIT_KEY_LEN; i++) {
		key[i] = (uint8_t)(i * 7 + 1);
		other[i] = (uint8_t)(i * 7 + 2);
	}
	/* 1-3 plain, 4-12 sealed */
	append_n(st, 1, 3, 1000);
	flush_ok(st);
	assert_int_equal(hearth_audit_set_seal_key(st, key), 0);
	append_n(st, 4, 4, 10000);
	flush_ok(st);
	append_n(st, 8, 5, 20000);
	flush_ok(st);
	assert_int_equal(hearth_audit_verify(st, &r), 0);
	assert_int_equal(r.records, 12);
	assert_int_equal(r.sealed, 9);
	close_store(st);

	v = rec_get(t->dir, 5, &len);
	assert_int_equal(v[0], 0x01);
	assert_null(memmem(v, len, "plan.completed", 14));
	free(v);
	v = rec_get(t->dir, 2, &len);
	assert_int_equal(v[0], '{');
	free(v);

	/* without the key: sealed, not broken */
	st = open_ro(t);
	assert_int_equal(hearth_audit_verify(st, &r), HEARTH_E_CONFIG);
	assert_int_equal(r.bad_seq, 0);
	assert_non_null(strstr(r.why, "record 4 is sealed"));
	f = open_memstream(&buf, &blen);
	assert_int_equal(hearth_audit_export(st, f), HEARTH_E_CONFIG);
	fclose(f);
	free(buf);
	buf = NULL;
	/* with it: plain JSON lines */
	assert_int_equal(hearth_audit_set_seal_key(st, key), 0);
	verify_ok(st, 1, 12);
	f = open_memstream(&buf, &blen);
	assert_int_equal(hearth_audit_export(st, f), 12);
	fclose(f);
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		cJSON *o;

		assert_int_equal(hearth_json_parse(line, strlen(line), &o, NULL, 0), 0);
		assert_non_null(cJSON_GetObjectItem(o, "hash"));
		cJSON_Delete(o);
		lines++;
	}
	assert_int_equal(lines, 12);
	free(buf);
	close_store(st);

	/* the wrong key opens nothing */
	verify_bad(t, other, 4, "cannot be unsealed");

	/* one flipped ciphertext byte */
	v = rec_get(t->dir, 9, &len);
	v[20] ^= 0x80;
	rec_put(t->dir, 9, v, len);
	verify_bad(t, key, 9, "record 9 cannot be unsealed");
	v[20] ^= 0x80;
	rec_put(t->dir, 9, v, len);
	free(v);
	verify_ro_ok(t, key, 1, 12);

	/* a sealed value moved to another key does not open there */
	v = rec_get(t->dir, 10, &len);
	rec_put(t->dir, 11, v, len);
	verify_bad(t, key, 11, "cannot be unsealed");
	free(v);

	/* sealed appends go on without the key being needed for the tip */
	st = open_rw(t);
	assert_int_equal(hearth_audit_set_seal_key(st, key), 0);
	assert_int_equal(hearth_audit_set_seal_key(st, NULL), 0);
	append_n(st, 13, 1, 50000);
	flush_ok(st);
	close_store(st);
	v = rec_get(t->dir, 13, &len);
	assert_int_equal(v[0], '{');
	free(v);
}

/* A flush dropped on a full map leaves no gap; the next append goes on. */
static void
test_map_full(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_store(t, false, 64 * 1024, 64 * 1024);
	static char detail[3100];
	char why[256];
	uint64_t committed = 0;
	int err = 0;

	memcpy(detail, "{\"pad\":\"", 8);
	memset(detail + 8, 'x', sizeof(detail) - 11);
	memcpy(detail + sizeof(detail) - 3, "\"}", 3);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(hearth_audit_append(st, 1000 + i, "big", "s", detail), 0);
		err = hearth_store_flush(st, why, sizeof(why));
		if (err)
			break;
		committed++;
	}
	assert_int_equal(err, HEARTH_E_MAP_FULL);
	assert_true(committed > 0);
	assert_int_equal(hearth_store_pending(st), 0);
	verify_ok(st, 1, committed);
	close_store(st);

	st = open_store(t, false, 1 << 20, 1 << 20);
	verify_ok(st, 1, committed);
	assert_int_equal(hearth_audit_append(st, 999999, "small", "s", NULL), 0);
	flush_ok(st);
	verify_ok(st, 1, committed + 1);
	close_store(st);
	verify_ro_ok(t, NULL, 1, committed + 1);
}

static void
test_export_lines(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_rw(t);
	char *buf = NULL, *p;
	size_t blen = 0;
	long lines = 0;
	FILE *f;

	append_n(st, 1, 17, 1000);
	flush_ok(st);
	close_store(st);
	st = open_ro(t);
	f = open_memstream(&buf, &blen);
	assert_non_null(f);
	assert_int_equal(hearth_audit_export(st, f), 17);
	fclose(f);
	for (p = buf; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 17);
	/* oldest first */
	assert_true(strncmp(buf, "{\"seq\":1,", 9) == 0);
	assert_non_null(strstr(buf, "\n{\"seq\":17,"));
	free(buf);
	close_store(st);
}

static void
test_invalid_input(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_rw(t);
	char big[CONFIG_HEARTH_AUDIT_DETAIL_MAX + 64], sub[300];

	assert_int_equal(hearth_audit_append(st, 1, "", "s", NULL), HEARTH_E_INVALID);
	assert_int_equal(hearth_audit_append(st, 1, "has space", "s", NULL), HEARTH_E_INVALID);
	assert_int_equal(hearth_audit_append(st, 1, "k", "a\nb", NULL), HEARTH_E_INVALID);
	assert_int_equal(hearth_audit_append(st, 1, "k", "\xff\xfe", NULL), HEARTH_E_INVALID);
	memset(sub, 's', sizeof(sub) - 1);
	sub[sizeof(sub) - 1] = '\0';
	assert_int_equal(hearth_audit_append(st, 1, "k", sub, NULL), HEARTH_E_INVALID);
	assert_int_equal(hearth_audit_append(st, -1, "k", "s", NULL), HEARTH_E_INVALID);
	assert_int_equal(hearth_audit_append(st, 1, "k", "s", "[1]"), HEARTH_E_INVALID);
	assert_int_equal(hearth_audit_append(st, 1, "k", "s", "{\"a\":1e999}"), HEARTH_E_INVALID);
	assert_int_equal(hearth_audit_append(st, 1, "k", "s", "{\"a\":\"\xc3\"}"),
	                 HEARTH_E_INVALID);
	assert_int_equal(hearth_audit_append(st, 1, "k", "s", "{\"a\":"), HEARTH_E_BAD_JSON);
	snprintf(big, sizeof(big), "{\"a\":\"%0*d\"}", CONFIG_HEARTH_AUDIT_DETAIL_MAX, 0);
	assert_int_equal(hearth_audit_append(st, 1, "k", "s", big), HEARTH_E_TOO_LARGE);
	assert_int_equal(hearth_audit_retain(st, 1, -1, 0), HEARTH_E_INVALID);
	assert_int_equal(hearth_store_pending(st), 0);
	assert_int_equal(hearth_audit_append(NULL, 1, "k", "s", NULL), HEARTH_E_INVALID);
	assert_int_equal(hearth_audit_verify(st, NULL), HEARTH_E_INVALID);
	close_store(st);

	st = open_ro(t);
	assert_int_equal(hearth_audit_append(st, 1, "k", "s", NULL), -EROFS);
	assert_int_equal(hearth_audit_retain(st, 1, 0, 0), -EROFS);
	close_store(st);
}

/* Every allocation of queueing and flushing may fail: nothing is lost or doubled. */
static void
test_alloc_failure(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_rw(t);
	char why[256];
	int err, queued = 0;

	for (long n = 0; n < 40; n++) {
		hearth_alloc_fail_after(n);
		err = hearth_audit_append(st, 1000 + n, "k", "s", "{\"b\":[1,2],\"a\":{\"c\":1}}");
		hearth_alloc_fail_after(-1);
		assert_true(err == 0 || err == -ENOMEM);
		queued += err == 0;
	}
	assert_true(queued > 0 && queued < 40);
	for (long n = 0; n < 200; n++) {
		hearth_alloc_fail_after(n);
		err = hearth_store_flush(st, why, sizeof(why));
		hearth_alloc_fail_after(-1);
		assert_true(err == 0 || err == -ENOMEM);
		if (!err)
			break;
	}
	flush_ok(st);
	verify_ok(st, 1, (uint64_t)queued);
	close_store(st);
}

static void
test_load_key(void **state)
{
	struct tmp *t = *state;
	uint8_t key[HEARTH_AUDIT_KEY_LEN], raw[HEARTH_AUDIT_KEY_LEN];
	char path[160], why[256];
	int fd;

	for (int i = 0; i < HEARTH_AUDIT_KEY_LEN; i++)
		raw[i] = (uint8_t)(0xa0 + i);
	snprintf(path, sizeof(path), "%s/audit.key", t->root);

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(
	        write(fd, "A0A1A2A3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\n", 65),
	        65);
	close(fd);
	assert_int_equal(hearth_audit_load_key(path, key, why, sizeof(why)), 0);
	assert_memory_equal(key, raw, sizeof(raw));

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, raw, sizeof(raw)), (ssize_t)sizeof(raw));
	close(fd);
	memset(key, 0, sizeof(key));
	assert_int_equal(hearth_audit_load_key(path, key, why, sizeof(why)), 0);
	assert_memory_equal(key, raw, sizeof(raw));

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "short\n", 6), 6);
	close(fd);
	assert_int_equal(hearth_audit_load_key(path, key, why, sizeof(why)), HEARTH_E_CONFIG);
	assert_non_null(strstr(why, "64 hex digits or 32 raw bytes"));

	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(hearth_audit_load_key(path, key, why, sizeof(why)), HEARTH_E_CONFIG);
	assert_non_null(strstr(why, "chmod 600"));
	assert_int_equal(hearth_audit_load_key("/nonexistent/k", key, why, sizeof(why)), -ENOENT);
}

/* Not a benchmark (tests/bench is): a rough figure for the issue note. */
static void
test_append_cost(void **state)
{
	struct tmp *t = *state;
	hearth_store *st = open_rw(t);
	uint8_t key[HEARTH_AUDIT_KEY_LEN] = {1};
	struct timespec a, b;
	const int n = 2000;
	double us[2];

	for (int sealed = 0; sealed < 2; sealed++) {
		if (sealed)
			assert_int_equal(hearth_audit_set_seal_key(st, key), 0);
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (int i = 0; i < n; i++)
			assert_int_equal(
			        hearth_audit_append(st, 1000 + i, "plan.completed", "p-1",
			                            "{\"recipe\":\"scene.movie_night\","
			                            "\"outcome\":\"completed\",\"steps\":3}"),
			        0);
		flush_ok(st);
		clock_gettime(CLOCK_MONOTONIC, &b);
		us[sealed] = ((double)(b.tv_sec - a.tv_sec) * 1e6 +
		              (double)(b.tv_nsec - a.tv_nsec) / 1e3) /
		             n;
	}
	print_message("audit append, group-committed, no sync: %.1f us plain, %.1f us sealed\n",
	              us[0], us[1]);
	verify_ok(st, 1, 2 * (uint64_t)n);
	close_store(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_append_verify, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_canonical_form, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_edit_one_byte, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_delete_record, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_delete_tail, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_swap_records, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_insert_forged, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_retention, tmpstore_setup, tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_retention_stops_at_damage, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_checkpoint_tamper, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_head_tamper, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_sealed, tmpstore_setup, tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_map_full, tmpstore_setup, tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_export_lines, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_invalid_input, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_alloc_failure, tmpstore_setup,
	                                        tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_load_key, tmpstore_setup, tmpstore_teardown),
	        cmocka_unit_test_setup_teardown(test_append_cost, tmpstore_setup,
	                                        tmpstore_teardown),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
