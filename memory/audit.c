/*
 * audit.c - the audit chain over the store's `audit` database: canonical
 * text, hashing, sealing, appends and retention run inside the flush
 * transaction, and the walks that verify and export the chain (the formats
 * are in audit.h).
 *
 * An append queues the part of the record known at call time (ts, kind,
 * subject, canonical detail) as a store apply op; at commit time the op
 * reads the chain's tip (the head anchor, checked against the last key),
 * numbers the record, hashes it, seals it when a key is set, writes it and
 * rewrites the head, all in the one flush transaction, so a thrown-away
 * flush leaves nothing behind and a retried one hashes against the right
 * record. An apply op only fails for an LMDB or memory failure: a damaged
 * chain is logged and marked, never a reason to refuse the flush (which
 * would lose the episodes queued with it). This module keeps per-store seal
 * keys in a small table (audit.h says why and how to clear it), never
 * prints, and never writes a record it cannot make canonical.
 */
#include "memory/audit.h"
#include "memory/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <mbedtls/gcm.h>
#include <mbedtls/platform_util.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hearth_config.h"
#include "platform/alloc.h"
#include "platform/crypto.h"
#include "platform/err.h"
#include "platform/json.h"
#include "platform/log.h"

#define KIND_MAX      64
#define SUBJECT_MAX   256
#define HASH_HEX_LEN  (2 * HEARTH_SHA256_LEN)
#define SEAL_VERSION  0x01
#define NONCE_LEN     12
#define TAG_LEN       16
#define SEAL_OVERHEAD (1 + NONCE_LEN + TAG_LEN)
#define KEY_FILE_MAX  128

static const char mac_key_name[] = "audit.checkpoint_key"; /* in secrets */
static const char cp_name[] = "audit_checkpoint";          /* in meta */
static const char head_name[] = "audit_head";              /* in meta */

/* ==== Seal keys per store ==== */

/* The seal key lives in the store's audit slot (store__slot), allocated when
 * set, wiped and freed by hearth_audit_forget (which hearth_store_close
 * calls). */
static const uint8_t *
seal_key_of(const hearth_store *st)
{
	return *store__slot((hearth_store *)st, STORE_SLOT_AUDIT);
}

/* ==== Growing buffer ==== */

/* A byte buffer; after a failed allocation it stays failed (oom). */
struct buf {
	char *p;
	size_t len;
	size_t cap;
	bool oom;
};

static bool
buf_reserve(struct buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->oom)
		return false;
	if (b->len + n <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	p = hearth_realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void
buf_add(struct buf *b, const void *s, size_t n)
{
	if (!n || !buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void
buf_u64(struct buf *b, uint64_t v)
{
	char s[24];

	buf_add(b, s, (size_t)snprintf(s, sizeof(s), "%" PRIu64, v));
}

static void
buf_i64(struct buf *b, int64_t v)
{
	char s[24];

	buf_add(b, s, (size_t)snprintf(s, sizeof(s), "%" PRId64, v));
}

static void
buf_hex(struct buf *b, const uint8_t bytes[HEARTH_SHA256_LEN])
{
	char hex[HASH_HEX_LEN + 1];

	hearth_hex_encode(bytes, HEARTH_SHA256_LEN, hex);
	buf_add(b, hex, HASH_HEX_LEN);
}

/* Wipe (the buffer may have held a plain record of a sealed chain) and free. */
static void
buf_free(struct buf *b)
{
	if (b->p)
		mbedtls_platform_zeroize(b->p, b->cap);
	hearth_free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ==== Canonical text (audit.h) ==== */

static void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
static bool
utf8_valid(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s, n;
		uint32_t cp;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3;
		else
			return false;
		cp = c & (0x3f >> n);
		for (unsigned i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		s += n + 1;
	}
	return true;
}

static void
put_string(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run = p;

	buf_add(b, "\"", 1);
	for (; *p; p++) {
		char esc[7] = "\\u00";
		size_t n = 2;

		if (*p >= 0x20 && *p != '"' && *p != '\\')
			continue;
		buf_add(b, run, (size_t)(p - run));
		run = p + 1;
		switch (*p) {
		case '"':
		case '\\':
			esc[1] = (char)*p;
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 0x0f];
			n = 6;
			break;
		}
		buf_add(b, esc, n);
	}
	buf_add(b, run, (size_t)(p - run));
	buf_add(b, "\"", 1);
}

/* false for a number JSON cannot hold (cJSON reads 1e999 as infinity). */
static bool
put_number(struct buf *b, double d)
{
	char s[40];

	if (!isfinite(d))
		return false;
	if (d == 0) {
		snprintf(s, sizeof(s), "0");
	} else if (d == trunc(d) && fabs(d) < 9007199254740992.0) {
		snprintf(s, sizeof(s), "%.0f", d);
	} else {
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(s, sizeof(s), "%.*g", prec, d);
			if (strtod(s, NULL) == d)
				break;
		}
	}
	buf_str(b, s);
	return true;
}

struct member {
	const char *key;
	const cJSON *item;
	size_t pos;
};

static int
member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * Write v canonically. strict (new records) also refuses strings that are
 * not UTF-8; verify writes leniently, byte for byte, so a stored record is
 * judged by its bytes. 0, HEARTH_E_INVALID or -ENOMEM.
 */
static int
put_value(struct buf *b, const cJSON *v, bool strict)
{
	struct member *m;
	const cJSON *it;
	size_t n = 0;
	int err = 0;

	switch (v->type & 0xff) {
	case cJSON_False:
		buf_str(b, "false");
		return 0;
	case cJSON_True:
		buf_str(b, "true");
		return 0;
	case cJSON_NULL:
		buf_str(b, "null");
		return 0;
	case cJSON_Number:
		return put_number(b, v->valuedouble) ? 0 : HEARTH_E_INVALID;
	case cJSON_String:
		if (!v->valuestring ||
		    (strict && !utf8_valid((const unsigned char *)v->valuestring)))
			return HEARTH_E_INVALID;
		put_string(b, v->valuestring);
		return 0;
	case cJSON_Array:
		buf_add(b, "[", 1);
		cJSON_ArrayForEach(it, v)
		{
			if (n++)
				buf_add(b, ",", 1);
			err = put_value(b, it, strict);
			if (err)
				return err;
		}
		buf_add(b, "]", 1);
		return 0;
	case cJSON_Object:
		break;
	default:
		return HEARTH_E_INVALID;
	}

	cJSON_ArrayForEach(it, v)
	{
		n++;
	}
	if (!n) {
		buf_add(b, "{}", 2);
		return 0;
	}
	m = hearth_malloc(n * sizeof(*m));
	if (!m)
		return -ENOMEM;
	n = 0;
	cJSON_ArrayForEach(it, v)
	{
		m[n] = (struct member){it->string ? it->string : "", it, n};
		n++;
	}
	qsort(m, n, sizeof(*m), member_cmp);
	buf_add(b, "{", 1);
	for (size_t i = 0; i < n && !err; i++) {
		if (strict && !utf8_valid((const unsigned char *)m[i].key)) {
			err = HEARTH_E_INVALID;
			break;
		}
		if (i)
			buf_add(b, ",", 1);
		put_string(b, m[i].key);
		buf_add(b, ":", 1);
		err = put_value(b, m[i].item, strict);
	}
	buf_add(b, "}", 1);
	hearth_free(m);
	return err;
}

/* "ts":T,"kind":K,"subject":U,"detail":D - the part known when queueing. */
static int
put_body(struct buf *b, int64_t ts, const char *kind, const char *subject, const cJSON *detail,
         bool strict)
{
	int err = 0;

	buf_str(b, "\"ts\":");
	buf_i64(b, ts);
	buf_str(b, ",\"kind\":");
	put_string(b, kind);
	buf_str(b, ",\"subject\":");
	put_string(b, subject);
	buf_str(b, ",\"detail\":");
	if (detail)
		err = put_value(b, detail, strict);
	else
		buf_str(b, "{}");
	if (!err && b->oom)
		err = -ENOMEM;
	return err;
}

/*
 * The canonical text around a body, into b (which it empties first):
 * {"seq":S,<body>,"prev_hash":"P"}, and its SHA-256 into hash.
 */
static int
put_record(struct buf *b, uint64_t seq, const char *body, size_t body_len,
           const uint8_t prev[HEARTH_SHA256_LEN], uint8_t hash[HEARTH_SHA256_LEN])
{
	b->len = 0;
	buf_str(b, "{\"seq\":");
	buf_u64(b, seq);
	buf_add(b, ",", 1);
	buf_add(b, body, body_len);
	buf_str(b, ",\"prev_hash\":\"");
	buf_hex(b, prev);
	buf_str(b, "\"}");
	if (b->oom)
		return -ENOMEM;
	return hearth_sha256(b->p, b->len, hash);
}

/* Turn the canonical text in b into the stored record: ,"hash":"H"} at the end. */
static int
put_hash(struct buf *b, const uint8_t hash[HEARTH_SHA256_LEN])
{
	b->len--; /* the closing brace */
	buf_str(b, ",\"hash\":\"");
	buf_hex(b, hash);
	buf_str(b, "\"}");
	return b->oom ? -ENOMEM : 0;
}

/* ==== Sealing ==== */

/* 0x01 | nonce | ciphertext | tag of plain, bound to seq, into out. */
static int
seal(const uint8_t *key, uint64_t seq, const void *plain, size_t len, struct buf *out)
{
	mbedtls_gcm_context gcm;
	unsigned char aad[8], *p;
	int err;

	out->len = 0;
	if (!buf_reserve(out, len + SEAL_OVERHEAD))
		return -ENOMEM;
	p = (unsigned char *)out->p;
	p[0] = SEAL_VERSION;
	err = hearth_random(p + 1, NONCE_LEN);
	if (err)
		return err;
	put_be64(aad, seq);
	mbedtls_gcm_init(&gcm);
	if (mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 8 * HEARTH_AUDIT_KEY_LEN) ||
	    mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len, p + 1, NONCE_LEN, aad,
	                              sizeof(aad), plain, p + 1 + NONCE_LEN, TAG_LEN,
	                              p + 1 + NONCE_LEN + len))
		err = -EIO;
	mbedtls_gcm_free(&gcm);
	if (!err)
		out->len = len + SEAL_OVERHEAD;
	return err;
}

static bool
is_sealed(const MDB_val *v)
{
	return v->mv_size > 0 && ((const unsigned char *)v->mv_data)[0] == SEAL_VERSION;
}

/* Open a sealed value into out. 0, HEARTH_E_CORRUPT (altered, or another key), -ENOMEM. */
static int
unseal(const uint8_t *key, uint64_t seq, const MDB_val *v, struct buf *out)
{
	const unsigned char *p = v->mv_data;
	mbedtls_gcm_context gcm;
	unsigned char aad[8];
	size_t len;
	int err = 0;

	out->len = 0;
	if (v->mv_size < SEAL_OVERHEAD)
		return HEARTH_E_CORRUPT;
	len = v->mv_size - SEAL_OVERHEAD;
	if (!buf_reserve(out, len + 1))
		return -ENOMEM;
	put_be64(aad, seq);
	mbedtls_gcm_init(&gcm);
	if (mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 8 * HEARTH_AUDIT_KEY_LEN) ||
	    mbedtls_gcm_auth_decrypt(&gcm, len, p + 1, NONCE_LEN, aad, sizeof(aad),
	                             p + 1 + NONCE_LEN + len, TAG_LEN, p + 1 + NONCE_LEN,
	                             (unsigned char *)out->p))
		err = HEARTH_E_CORRUPT;
	mbedtls_gcm_free(&gcm);
	if (!err)
		out->len = len;
	return err;
}

/* ==== Checking a stored record ==== */

enum bad {
	BAD_NONE,
	BAD_NO_KEY, /* sealed, and no key to open it */
	BAD_UNSEAL,
	BAD_JSON,
	BAD_FIELD,
	BAD_HASH,
	BAD_FORM,
	BAD_SEQ,
	BAD_LINK,
};

struct rec {
	uint64_t seq;
	int64_t ts;
	uint8_t hash[HEARTH_SHA256_LEN];
	const char *field; /* BAD_FIELD: which */
};

static bool
get_u64(const cJSON *o, const char *name, uint64_t *out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
	double d;

	if (!cJSON_IsNumber(it))
		return false;
	d = it->valuedouble;
	if (!(d >= 0 && d < 18446744073709551616.0) || d != trunc(d))
		return false;
	*out = (uint64_t)d;
	return true;
}

static bool
get_i64(const cJSON *o, const char *name, int64_t *out)
{
	long long v;

	if (hearth_json_get_int(o, name, &v) != 0)
		return false;
	*out = v;
	return true;
}

static bool
get_hash(const cJSON *o, const char *name, uint8_t out[HEARTH_SHA256_LEN])
{
	const char *s;

	return hearth_json_get_str(o, name, &s) == 0 &&
	       hearth_hex_decode(s, out, HEARTH_SHA256_LEN) == 0;
}

/*
 * Judge the record stored under kseq (value v) against the hash before it
 * (prev; NULL: do not check the link). Fills r (seq, ts and hash as stored)
 * as far as it got. Returns a verdict; *err is set for -ENOMEM.
 */
static enum bad
check_record(const uint8_t *seal_key, uint64_t kseq, const MDB_val *v, const uint8_t *prev,
             struct rec *r, int *err)
{
	struct buf plain = {0}, body = {0}, canon = {0};
	const char *text = v->mv_data, *kind, *subject;
	size_t len = v->mv_size;
	uint8_t stored_prev[HEARTH_SHA256_LEN], hash[HEARTH_SHA256_LEN];
	const cJSON *detail;
	cJSON *o = NULL;
	enum bad bad = BAD_NONE;

	*err = 0;
	memset(r, 0, sizeof(*r));
	if (is_sealed(v)) {
		if (!seal_key)
			return BAD_NO_KEY;
		*err = unseal(seal_key, kseq, v, &plain);
		if (*err == HEARTH_E_CORRUPT) {
			*err = 0;
			bad = BAD_UNSEAL;
		}
		if (*err || bad)
			goto done;
		text = plain.p;
		len = plain.len;
	}
	*err = hearth_json_parse(text, len, &o, NULL, 0);
	if (*err || !cJSON_IsObject(o)) {
		bad = *err == -ENOMEM ? BAD_NONE : BAD_JSON;
		*err = *err == -ENOMEM ? *err : 0;
		goto done;
	}
	detail = cJSON_GetObjectItemCaseSensitive(o, "detail");
	if (!get_u64(o, "seq", &r->seq))
		r->field = "seq";
	else if (!get_i64(o, "ts", &r->ts))
		r->field = "ts";
	else if (hearth_json_get_str(o, "kind", &kind) != 0)
		r->field = "kind";
	else if (hearth_json_get_str(o, "subject", &subject) != 0)
		r->field = "subject";
	else if (!cJSON_IsObject(detail))
		r->field = "detail";
	else if (!get_hash(o, "prev_hash", stored_prev))
		r->field = "prev_hash";
	else if (!get_hash(o, "hash", r->hash))
		r->field = "hash";
	if (r->field) {
		bad = BAD_FIELD;
		goto done;
	}

	*err = put_body(&body, r->ts, kind, subject, detail, false);
	if (*err == HEARTH_E_INVALID) {
		*err = 0;
		r->field = "detail";
		bad = BAD_FIELD;
		goto done;
	}
	if (!*err)
		*err = put_record(&canon, r->seq, body.p, body.len, stored_prev, hash);
	if (!*err)
		*err = put_hash(&canon, r->hash);
	if (*err)
		goto done;
	if (!hearth_ct_equal(hash, r->hash, sizeof(hash)))
		bad = BAD_HASH;
	else if (canon.len != len || memcmp(canon.p, text, len) != 0)
		bad = BAD_FORM;
	else if (r->seq != kseq)
		bad = BAD_SEQ;
	else if (prev && memcmp(prev, stored_prev, sizeof(stored_prev)) != 0)
		bad = BAD_LINK;
done:
	cJSON_Delete(o);
	buf_free(&plain);
	buf_free(&body);
	buf_free(&canon);
	return bad;
}

/* A person's sentence for a bad verdict on record seq. */
static void
say_bad(char *why, size_t why_len, enum bad bad, uint64_t seq, const struct rec *r,
        bool after_checkpoint)
{
	switch (bad) {
	case BAD_NO_KEY:
		snprintf(why, why_len,
		         "record %" PRIu64 " is sealed: verifying it needs the audit seal key",
		         seq);
		break;
	case BAD_UNSEAL:
		snprintf(why, why_len,
		         "record %" PRIu64 " cannot be unsealed: it was altered, or the seal key "
		         "is not the one it was sealed with",
		         seq);
		break;
	case BAD_JSON:
		snprintf(why, why_len, "record %" PRIu64 " is not a readable record (edited?)",
		         seq);
		break;
	case BAD_FIELD:
		snprintf(why, why_len, "record %" PRIu64 " has no valid \"%s\" (edited?)", seq,
		         r->field);
		break;
	case BAD_HASH:
		snprintf(why, why_len,
		         "record %" PRIu64 ": hash does not match its content (edited?)", seq);
		break;
	case BAD_FORM:
		snprintf(why, why_len,
		         "record %" PRIu64 " is not in canonical form: its bytes were changed "
		         "(edited?)",
		         seq);
		break;
	case BAD_SEQ:
		snprintf(why, why_len,
		         "record %" PRIu64 " holds the content of record %" PRIu64
		         " (reordered or copied?)",
		         seq, r->seq);
		break;
	case BAD_LINK:
		if (after_checkpoint)
			snprintf(why, why_len,
			         "record %" PRIu64 " does not follow the checkpoint: its prev_hash "
			         "is not the checkpoint's last hash (inserted or replaced?)",
			         seq);
		else
			snprintf(
			        why, why_len,
			        "record %" PRIu64 " does not follow record %" PRIu64
			        ": its prev_hash is not that record's hash (inserted or replaced?)",
			        seq, seq - 1);
		break;
	case BAD_NONE:
		snprintf(why, why_len, "record %" PRIu64 " is fine", seq);
		break;
	}
}

/* ==== Anchors: checkpoint and head ==== */

enum anchor_state {
	ANCHOR_ABSENT,
	ANCHOR_OK,
	ANCHOR_BAD, /* unreadable, or its MAC does not hold */
};

struct anchor {
	enum anchor_state state;
	bool parsed;  /* seq, hash (and ts, broken) were read, MAC or not */
	bool no_key;  /* BAD because the MAC key is missing */
	uint64_t seq; /* checkpoint: upto_seq; head: last_seq */
	uint8_t hash[HEARTH_SHA256_LEN];
	int64_t ts;      /* checkpoint */
	uint64_t broken; /* head */
};

/* The MAC key from secrets; *have false when absent (or not 32 bytes). */
static int
mac_key_get(hearth_store *st, MDB_txn *txn, uint8_t key[HEARTH_AUDIT_KEY_LEN], bool *have)
{
	MDB_val k = {sizeof(mac_key_name) - 1, (void *)mac_key_name}, v;
	int rc;

	*have = false;
	if (!store__has_db(st, HEARTH_DB_SECRETS))
		return MDB_SUCCESS;
	rc = mdb_get(txn, store__dbi(st, HEARTH_DB_SECRETS), &k, &v);
	if (rc == MDB_NOTFOUND)
		return MDB_SUCCESS;
	if (rc != MDB_SUCCESS)
		return rc;
	if (v.mv_size == HEARTH_AUDIT_KEY_LEN) {
		memcpy(key, v.mv_data, HEARTH_AUDIT_KEY_LEN);
		*have = true;
	}
	return MDB_SUCCESS;
}

/* The MAC key, made (and stored in this transaction) when absent or damaged. */
static int
mac_key_make(hearth_store *st, MDB_txn *txn, uint8_t key[HEARTH_AUDIT_KEY_LEN])
{
	MDB_val k = {sizeof(mac_key_name) - 1, (void *)mac_key_name};
	MDB_val v = {HEARTH_AUDIT_KEY_LEN, key};
	bool have;
	int err, rc;

	rc = mac_key_get(st, txn, key, &have);
	if (rc != MDB_SUCCESS || have)
		return rc;
	err = hearth_random(key, HEARTH_AUDIT_KEY_LEN);
	if (err)
		return -err;
	LOG_DEBUG("audit", "made the audit checkpoint key in %s", store__dir(st));
	return mdb_put(txn, store__dbi(st, HEARTH_DB_SECRETS), &k, &v, 0);
}

/* The canonical text of an anchor without its mac, into b. */
static int
put_anchor(struct buf *b, const char *name, const struct anchor *a)
{
	bool cp = name == cp_name;

	b->len = 0;
	buf_str(b, cp ? "{\"anchor\":\"audit.checkpoint\",\"upto_seq\":"
	              : "{\"anchor\":\"audit.head\",\"last_seq\":");
	buf_u64(b, a->seq);
	buf_str(b, ",\"last_hash\":\"");
	buf_hex(b, a->hash);
	if (cp) {
		buf_str(b, "\",\"ts\":");
		buf_i64(b, a->ts);
	} else {
		buf_str(b, "\",\"broken\":");
		buf_u64(b, a->broken);
	}
	buf_str(b, "}");
	return b->oom ? -ENOMEM : 0;
}

/* The stored form of anchor a: its text with ,"mac":"M" at the end, into b. */
static int
put_anchor_mac(struct buf *b, const char *name, const uint8_t *key, const struct anchor *a)
{
	uint8_t mac[HEARTH_SHA256_LEN];
	int err;

	err = put_anchor(b, name, a);
	if (!err)
		err = hearth_hmac_sha256(key, HEARTH_AUDIT_KEY_LEN, b->p, b->len, mac);
	if (err)
		return err;
	b->len--;
	buf_str(b, ",\"mac\":\"");
	buf_hex(b, mac);
	buf_str(b, "\"}");
	return b->oom ? -ENOMEM : 0;
}

/*
 * Read and check the anchor name in meta: OK only when the stored bytes are
 * exactly what this module would write with key. Returns an LMDB code.
 */
static int
anchor_read(hearth_store *st, MDB_txn *txn, const char *name, const uint8_t *key, struct anchor *a)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	bool cp = name == cp_name;
	struct buf b = {0};
	cJSON *o = NULL;
	int err, rc;

	memset(a, 0, sizeof(*a));
	rc = mdb_get(txn, store__dbi(st, HEARTH_DB_META), &k, &v);
	if (rc == MDB_NOTFOUND)
		return MDB_SUCCESS;
	if (rc != MDB_SUCCESS)
		return rc;
	a->state = ANCHOR_BAD;
	err = hearth_json_parse(v.mv_data, v.mv_size, &o, NULL, 0);
	if (err == -ENOMEM)
		return ENOMEM;
	if (err || !get_u64(o, cp ? "upto_seq" : "last_seq", &a->seq) ||
	    !get_hash(o, "last_hash", a->hash) ||
	    (cp ? !get_i64(o, "ts", &a->ts) : !get_u64(o, "broken", &a->broken)))
		goto done;
	a->parsed = true;
	if (!key) {
		a->no_key = true;
		goto done;
	}
	err = put_anchor_mac(&b, name, key, a);
	if (err) {
		rc = -err;
		goto done;
	}
	if (b.len == v.mv_size && hearth_ct_equal(b.p, v.mv_data, b.len))
		a->state = ANCHOR_OK;
done:
	cJSON_Delete(o);
	buf_free(&b);
	return rc;
}

static int
anchor_write(hearth_store *st, MDB_txn *txn, const char *name, const uint8_t *key,
             const struct anchor *a)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	struct buf b = {0};
	int err, rc;

	err = put_anchor_mac(&b, name, key, a);
	if (err) {
		buf_free(&b);
		return -err;
	}
	v.mv_size = b.len;
	v.mv_data = b.p;
	rc = mdb_put(txn, store__dbi(st, HEARTH_DB_META), &k, &v, 0);
	buf_free(&b);
	return rc;
}

/* ==== Appending (inside the flush transaction) ==== */

struct tip {
	uint64_t seq; /* of the record the next one follows; 0: none */
	uint8_t hash[HEARTH_SHA256_LEN];
	uint64_t broken; /* carried into the new head */
};

/* The hash of the last record as stored, or (unreadable) SHA-256 of its bytes. */
static int
last_hash(hearth_store *st, uint64_t seq, const MDB_val *v, uint8_t hash[HEARTH_SHA256_LEN])
{
	struct rec r;
	enum bad bad;
	int err;

	bad = check_record(seal_key_of(st), seq, v, NULL, &r, &err);
	if (err)
		return -err;
	if (bad == BAD_NONE || bad == BAD_HASH || bad == BAD_FORM || bad == BAD_SEQ) {
		memcpy(hash, r.hash, HEARTH_SHA256_LEN);
		return MDB_SUCCESS;
	}
	return -hearth_sha256(v->mv_data, v->mv_size, hash);
}

/*
 * Where the next record goes. The head names the tip; it is trusted when its
 * MAC holds and nothing lies past it (records deleted from the end then
 * leave a gap, which verify reports). Otherwise the chain goes on from the
 * last record (or the checkpoint, whichever is further) and the head is
 * marked broken from the record about to be appended, so the tampering stays
 * visible after the new head is signed.
 */
static int
chain_tip(hearth_store *st, MDB_txn *txn, const uint8_t *key, struct tip *t)
{
	struct anchor head, cp;
	MDB_cursor *cur;
	MDB_val k, v;
	bool have_last = false, trust_head;
	uint64_t last = 0;
	int rc;

	memset(t, 0, sizeof(*t));
	rc = anchor_read(st, txn, head_name, key, &head);
	if (rc == MDB_SUCCESS)
		rc = anchor_read(st, txn, cp_name, key, &cp);
	if (rc != MDB_SUCCESS)
		return rc;
	rc = mdb_cursor_open(txn, store__dbi(st, HEARTH_DB_AUDIT), &cur);
	if (rc != MDB_SUCCESS)
		return rc;
	/* the last well-formed key (anything else is for verify to name) */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
		if (k.mv_size == 8) {
			last = get_be64(k.mv_data);
			have_last = true;
			break;
		}
	}
	if (rc == MDB_NOTFOUND)
		rc = MDB_SUCCESS;
	trust_head = head.state == ANCHOR_OK && head.seq >= last &&
	             (cp.state == ANCHOR_ABSENT || head.seq >= cp.seq);
	if (rc == MDB_SUCCESS && have_last && !trust_head) {
		t->seq = last;
		rc = last_hash(st, last, &v, t->hash);
	}
	mdb_cursor_close(cur);
	if (rc != MDB_SUCCESS)
		return rc;

	if (trust_head) {
		t->seq = head.seq;
		memcpy(t->hash, head.hash, sizeof(t->hash));
		t->broken = head.broken;
		return MDB_SUCCESS;
	}
	if (head.state == ANCHOR_ABSENT && !have_last && cp.state == ANCHOR_ABSENT)
		return MDB_SUCCESS; /* a new chain */
	if (cp.parsed && cp.seq > t->seq) {
		t->seq = cp.seq;
		memcpy(t->hash, cp.hash, sizeof(t->hash));
	}
	/* the first record the head does not vouch for */
	if (head.state == ANCHOR_OK)
		t->broken = head.broken ? head.broken : head.seq + 1;
	else
		t->broken = t->seq + 1;
	LOG_WARN("audit",
	         "the audit chain head in %s is missing, altered or behind the records; "
	         "going on from record %" PRIu64 " and marking the chain broken",
	         store__dir(st), t->seq);
	return MDB_SUCCESS;
}

static int
apply_append(hearth_store *st, MDB_txn *txn, const void *body, size_t body_len)
{
	uint8_t key[HEARTH_AUDIT_KEY_LEN], hash[HEARTH_SHA256_LEN];
	const uint8_t *seal_key = seal_key_of(st);
	struct buf rec = {0}, sealed = {0};
	unsigned char kb[8];
	struct anchor head;
	struct tip tip;
	MDB_val k = {sizeof(kb), kb}, v;
	int err, rc;

	rc = mac_key_make(st, txn, key);
	if (rc == MDB_SUCCESS)
		rc = chain_tip(st, txn, key, &tip);
	if (rc != MDB_SUCCESS)
		goto wipe;
	err = put_record(&rec, tip.seq + 1, body, body_len, tip.hash, hash);
	if (!err)
		err = put_hash(&rec, hash);
	if (!err && seal_key)
		err = seal(seal_key, tip.seq + 1, rec.p, rec.len, &sealed);
	if (err) {
		rc = -err;
		goto free_bufs;
	}
	put_be64(kb, tip.seq + 1);
	v.mv_size = seal_key ? sealed.len : rec.len;
	v.mv_data = seal_key ? sealed.p : rec.p;
	rc = mdb_put(txn, store__dbi(st, HEARTH_DB_AUDIT), &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_SUCCESS) {
		memset(&head, 0, sizeof(head));
		head.seq = tip.seq + 1;
		memcpy(head.hash, hash, sizeof(hash));
		head.broken = tip.broken;
		rc = anchor_write(st, txn, head_name, key, &head);
	}
free_bufs:
	buf_free(&rec);
	buf_free(&sealed);
wipe:
	mbedtls_platform_zeroize(key, sizeof(key));
	return rc;
}

static bool
kind_valid(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > KIND_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._:-", *s)))
			return false;
	return true;
}

static bool
subject_valid(const char *s)
{
	if (strlen(s) > SUBJECT_MAX || !utf8_valid((const unsigned char *)s))
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

int
hearth_audit_append(hearth_store *st, int64_t ts_ms, const char *kind, const char *subject,
                    const char *detail_json)
{
	struct buf body = {0};
	cJSON *detail = NULL;
	size_t before;
	int err;

	if (!st || !kind || !subject || ts_ms < 0 || !kind_valid(kind) || !subject_valid(subject))
		return HEARTH_E_INVALID;
	if (store__read_only(st))
		return -EROFS;
	if (detail_json) {
		err = hearth_json_parse(detail_json, strlen(detail_json), &detail, NULL, 0);
		if (err)
			return err;
		if (!cJSON_IsObject(detail)) {
			cJSON_Delete(detail);
			return HEARTH_E_INVALID;
		}
	}
	err = put_body(&body, ts_ms, kind, subject, NULL, true);
	if (!err && detail) {
		body.len -= 2; /* the {} put_body wrote for no detail */
		before = body.len;
		err = put_value(&body, detail, true);
		if (!err && body.oom)
			err = -ENOMEM;
		if (!err && body.len - before > (size_t)CONFIG_HEARTH_AUDIT_DETAIL_MAX)
			err = HEARTH_E_TOO_LARGE;
	}
	if (!err)
		err = store__queue_apply(st, apply_append, body.p, body.len);
	cJSON_Delete(detail);
	buf_free(&body);
	return err;
}

/* ==== Retention (inside the flush transaction) ==== */

struct retain_args {
	int64_t now_ms;
	int64_t keep_ms;
	uint64_t keep_min;
};

static int
apply_retain(hearth_store *st, MDB_txn *txn, const void *data, size_t len)
{
	const uint8_t *seal_key = seal_key_of(st);
	uint8_t key[HEARTH_AUDIT_KEY_LEN], prev[HEARTH_SHA256_LEN] = {0};
	struct retain_args a;
	struct anchor cp;
	MDB_cursor *cur;
	MDB_stat ms;
	MDB_val k, v;
	uint64_t expect = 1, prunable, pruned = 0;
	struct rec r;
	enum bad bad;
	int err, rc;

	if (len != sizeof(a))
		return EINVAL;
	memcpy(&a, data, sizeof(a));
	rc = mdb_stat(txn, store__dbi(st, HEARTH_DB_AUDIT), &ms);
	if (rc != MDB_SUCCESS || ms.ms_entries <= a.keep_min)
		return rc;
	prunable = ms.ms_entries - a.keep_min;
	rc = mac_key_make(st, txn, key);
	if (rc == MDB_SUCCESS)
		rc = anchor_read(st, txn, cp_name, key, &cp);
	if (rc != MDB_SUCCESS)
		goto wipe;
	if (cp.state == ANCHOR_BAD) {
		LOG_WARN("audit", "audit retention skipped in %s: the checkpoint does not verify",
		         store__dir(st));
		goto wipe;
	}
	if (cp.state == ANCHOR_OK) {
		expect = cp.seq + 1;
		memcpy(prev, cp.hash, sizeof(prev));
	}
	rc = mdb_cursor_open(txn, store__dbi(st, HEARTH_DB_AUDIT), &cur);
	if (rc != MDB_SUCCESS)
		goto wipe;
	/* Prune a prefix that verifies, oldest first, while it is old enough. */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && pruned < prunable;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8 || get_be64(k.mv_data) != expect) {
			LOG_WARN("audit",
			         "audit retention stops before record %" PRIu64 " in %s: %s",
			         expect, store__dir(st), "the sequence is broken there");
			break;
		}
		bad = check_record(seal_key, expect, &v, prev, &r, &err);
		if (err) {
			rc = -err;
			break;
		}
		if (bad) {
			char why[256];

			say_bad(why, sizeof(why), bad, expect, &r, false);
			LOG_WARN("audit", "audit retention stops in %s: %s", store__dir(st), why);
			break;
		}
		if (r.ts >= a.now_ms - a.keep_ms)
			break;
		rc = mdb_cursor_del(cur, 0);
		if (rc != MDB_SUCCESS)
			break;
		memcpy(prev, r.hash, sizeof(prev));
		pruned++;
		expect++;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND || rc == MDB_SUCCESS)
		rc = MDB_SUCCESS;
	if (rc == MDB_SUCCESS && pruned) {
		memset(&cp, 0, sizeof(cp));
		cp.seq = expect - 1;
		memcpy(cp.hash, prev, sizeof(prev));
		cp.ts = a.now_ms;
		rc = anchor_write(st, txn, cp_name, key, &cp);
		LOG_DEBUG("audit", "pruned %" PRIu64 " audit record(s) in %s, up to %" PRIu64,
		          pruned, store__dir(st), cp.seq);
	}
wipe:
	mbedtls_platform_zeroize(key, sizeof(key));
	return rc;
}

int
hearth_audit_retain(hearth_store *st, int64_t now_ms, int64_t keep_ms, uint64_t keep_min)
{
	struct retain_args a = {now_ms, keep_ms, keep_min};

	if (!st || keep_ms < 0 || now_ms < 0)
		return HEARTH_E_INVALID;
	if (store__read_only(st))
		return -EROFS;
	return store__queue_apply(st, apply_retain, &a, sizeof(a));
}

/* ==== Verify ==== */

/* "record 5" or "records 5-9" for messages. */
static void
say_range(char *buf, size_t len, uint64_t a, uint64_t b)
{
	if (a == b)
		snprintf(buf, len, "record %" PRIu64 " is", a);
	else
		snprintf(buf, len, "records %" PRIu64 "-%" PRIu64 " are", a, b);
}

/* The head's verdict on a chain whose records end at last (hash last_hash). */
static uint64_t
check_head(const struct anchor *head, bool any, uint64_t last, const uint8_t *last_hash, char *why,
           size_t why_len)
{
	char range[64];

	if (head->state == ANCHOR_ABSENT) {
		if (!any)
			return 0;
		snprintf(why, why_len,
		         "the chain's head anchor is missing, so records may have been deleted "
		         "from the end");
		return last + 1;
	}
	if (head->state == ANCHOR_BAD) {
		snprintf(why, why_len, "the chain's head anchor %s (edited?)",
		         head->no_key ? "cannot be checked: the audit checkpoint key is missing "
		                        "from the secrets database"
		                      : "does not verify");
		return last + 1;
	}
	if (head->seq > last) {
		say_range(range, sizeof(range), last + 1, head->seq);
		snprintf(why, why_len, "%s missing from the end of the chain (deleted?)", range);
		return last + 1;
	}
	if (head->seq < last) {
		say_range(range, sizeof(range), head->seq + 1, last);
		snprintf(why, why_len, "%s past the chain's signed head (inserted?)", range);
		return head->seq + 1;
	}
	if (memcmp(head->hash, last_hash, HEARTH_SHA256_LEN) != 0) {
		snprintf(why, why_len,
		         "record %" PRIu64 " is not the one the chain's signed head names "
		         "(replaced?)",
		         last);
		return last ? last : 1;
	}
	if (head->broken) {
		snprintf(why, why_len,
		         "the chain's head was missing, altered or behind the records at "
		         "record %" PRIu64 " when more were appended (records inserted, or "
		         "deleted from the end?)",
		         head->broken);
		return head->broken;
	}
	return 0;
}

int
hearth_audit_verify(hearth_store *st, struct hearth_audit_report *out)
{
	uint8_t key[HEARTH_AUDIT_KEY_LEN], prev[HEARTH_SHA256_LEN] = {0};
	const uint8_t *seal_key;
	struct anchor cp, head;
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	uint64_t expect = 1;
	bool have_key, any;
	struct rec r;
	enum bad bad;
	int err, rc;

	if (!st || !out)
		return HEARTH_E_INVALID;
	memset(out, 0, sizeof(*out));
	if (!store__has_db(st, HEARTH_DB_AUDIT))
		return 0; /* a store older than the chain: empty */
	seal_key = seal_key_of(st);
	err = store__read_txn(st, &txn);
	if (err)
		return err;
	rc = mac_key_get(st, txn, key, &have_key);
	if (rc == MDB_SUCCESS)
		rc = anchor_read(st, txn, cp_name, have_key ? key : NULL, &cp);
	if (rc == MDB_SUCCESS)
		rc = anchor_read(st, txn, head_name, have_key ? key : NULL, &head);
	if (rc != MDB_SUCCESS)
		goto lmdb_fail;

	if (cp.state == ANCHOR_BAD) {
		out->bad_seq = cp.parsed ? cp.seq + 1 : 1;
		if (cp.no_key)
			snprintf(out->why, sizeof(out->why),
			         "the checkpoint cannot be checked: the audit checkpoint key is "
			         "missing from the secrets database (deleted?)");
		else if (cp.parsed)
			snprintf(out->why, sizeof(out->why),
			         "the checkpoint of pruned records 1-%" PRIu64
			         " does not verify (forged?)",
			         cp.seq);
		else
			snprintf(out->why, sizeof(out->why),
			         "the checkpoint of pruned records is unreadable (edited?)");
		err = HEARTH_E_CORRUPT;
		goto abort_txn;
	}
	if (cp.state == ANCHOR_OK) {
		expect = cp.seq + 1;
		memcpy(prev, cp.hash, sizeof(prev));
		out->pruned_upto = cp.seq;
	}

	rc = mdb_cursor_open(txn, store__dbi(st, HEARTH_DB_AUDIT), &cur);
	if (rc != MDB_SUCCESS)
		goto lmdb_fail;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint64_t kseq;
		char range[64];

		if (k.mv_size != 8) {
			out->bad_seq = expect;
			snprintf(out->why, sizeof(out->why),
			         "an entry with a malformed key lies where record %" PRIu64
			         " should be (inserted?)",
			         expect);
			goto corrupt;
		}
		kseq = get_be64(k.mv_data);
		if (kseq < expect) {
			out->bad_seq = kseq;
			snprintf(out->why, sizeof(out->why),
			         "record %" PRIu64
			         " lies in the pruned part: the checkpoint covers "
			         "records up to %" PRIu64 " (inserted?)",
			         kseq, expect - 1);
			goto corrupt;
		}
		if (kseq > expect) {
			out->bad_seq = expect;
			say_range(range, sizeof(range), expect, kseq - 1);
			snprintf(out->why, sizeof(out->why), "%s missing (deleted?)", range);
			goto corrupt;
		}
		bad = check_record(seal_key, kseq, &v, prev, &r, &err);
		if (err)
			goto abort_txn;
		if (bad == BAD_NO_KEY) {
			say_bad(out->why, sizeof(out->why), bad, kseq, &r, false);
			err = HEARTH_E_CONFIG;
			goto abort_txn;
		}
		if (bad) {
			out->bad_seq = kseq;
			say_bad(out->why, sizeof(out->why), bad, kseq, &r,
			        kseq == out->pruned_upto + 1 && out->pruned_upto);
			goto corrupt;
		}
		if (is_sealed(&v))
			out->sealed++;
		if (!out->records++)
			out->first_seq = kseq;
		out->last_seq = kseq;
		memcpy(prev, r.hash, sizeof(prev));
		expect++;
	}
	if (rc != MDB_NOTFOUND)
		goto lmdb_fail;

	any = out->records || cp.state == ANCHOR_OK;
	out->bad_seq = check_head(&head, any, expect - 1, prev, out->why, sizeof(out->why));
	err = out->bad_seq ? HEARTH_E_CORRUPT : 0;
	goto abort_txn;

corrupt:
	err = HEARTH_E_CORRUPT;
	goto abort_txn;
lmdb_fail:
	err = store__map_err(rc);
abort_txn:
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mbedtls_platform_zeroize(key, sizeof(key));
	if (err != HEARTH_E_CORRUPT) {
		out->bad_seq = 0;
		if (err != HEARTH_E_CONFIG)
			out->why[0] = '\0';
	}
	return err;
}

/* ==== Export ==== */

long
hearth_audit_export(hearth_store *st, FILE *f)
{
	const uint8_t *seal_key;
	struct buf plain = {0};
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	long n = 0;
	int err, rc;

	if (!st || !f)
		return HEARTH_E_INVALID;
	if (!store__has_db(st, HEARTH_DB_AUDIT))
		return 0;
	seal_key = seal_key_of(st);
	err = store__read_txn(st, &txn);
	if (err)
		return err;
	rc = mdb_cursor_open(txn, store__dbi(st, HEARTH_DB_AUDIT), &cur);
	if (rc != MDB_SUCCESS) {
		err = store__map_err(rc);
		goto abort_txn;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && !err;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const void *text = v.mv_data;
		size_t len = v.mv_size;
		cJSON *o = NULL;

		if (k.mv_size != 8) {
			err = HEARTH_E_CORRUPT;
			break;
		}
		if (is_sealed(&v)) {
			if (!seal_key) {
				err = HEARTH_E_CONFIG;
				break;
			}
			err = unseal(seal_key, get_be64(k.mv_data), &v, &plain);
			text = plain.p;
			len = plain.len;
		}
		/* one line of JSON per record, whatever the bytes became */
		if (!err) {
			err = hearth_json_parse(text, len, &o, NULL, 0);
			if (err && err != -ENOMEM)
				err = HEARTH_E_CORRUPT;
			cJSON_Delete(o);
		}
		if (!err && (fwrite(text, 1, len, f) != len || fputc('\n', f) == EOF))
			err = -EIO;
		if (!err)
			n++;
	}
	if (!err && rc != MDB_NOTFOUND && rc != MDB_SUCCESS)
		err = store__map_err(rc);
	mdb_cursor_close(cur);
abort_txn:
	mdb_txn_abort(txn);
	buf_free(&plain);
	if (!err && fflush(f) == EOF)
		err = -EIO;
	return err ? err : n;
}

/* ==== Keys ==== */

int
hearth_audit_set_seal_key(hearth_store *st, const uint8_t key[HEARTH_AUDIT_KEY_LEN])
{
	void **slot;

	if (!st)
		return HEARTH_E_INVALID;
	if (!key) {
		hearth_audit_forget(st);
		return 0;
	}
	slot = store__slot(st, STORE_SLOT_AUDIT);
	if (!*slot && !(*slot = hearth_malloc(HEARTH_AUDIT_KEY_LEN)))
		return -ENOMEM;
	memcpy(*slot, key, HEARTH_AUDIT_KEY_LEN);
	return 0;
}

void
hearth_audit_forget(hearth_store *st)
{
	void **slot;

	if (!st)
		return;
	slot = store__slot(st, STORE_SLOT_AUDIT);
	if (*slot) {
		mbedtls_platform_zeroize(*slot, HEARTH_AUDIT_KEY_LEN);
		hearth_free(*slot);
		*slot = NULL;
	}
}

static bool
all_hex_then_space(const unsigned char *p, size_t n)
{
	size_t i = 0;

	for (; i < n && i < HASH_HEX_LEN; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') ||
		      (p[i] >= 'A' && p[i] <= 'F')))
			return false;
	if (i != HASH_HEX_LEN)
		return false;
	for (; i < n; i++)
		if (!strchr(" \t\r\n", p[i]))
			return false;
	return true;
}

int
hearth_audit_load_key(const char *path, uint8_t key[HEARTH_AUDIT_KEY_LEN], char *why,
                      size_t why_len)
{
	unsigned char raw[KEY_FILE_MAX + 1];
	char hex[HASH_HEX_LEN + 1];
	struct stat sb;
	ssize_t got;
	size_t n = 0;
	int fd, err = 0;

	if (!path || !key)
		return HEARTH_E_INVALID;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		store__say(why, why_len, "cannot open key file %s: %s", path, strerror(errno));
		return err;
	}
	if (fstat(fd, &sb) < 0) {
		err = -errno;
		store__say(why, why_len, "cannot read key file %s: %s", path, strerror(errno));
		goto close_fd;
	}
	if (!S_ISREG(sb.st_mode)) {
		store__say(why, why_len, "key file %s is not a regular file", path);
		err = HEARTH_E_CONFIG;
		goto close_fd;
	}
	if (sb.st_mode & 077) {
		store__say(why, why_len,
		           "key file %s can be read by other users: chmod 600 it (and make a new "
		           "key if others may have read it)",
		           path);
		err = HEARTH_E_CONFIG;
		goto close_fd;
	}
	while (n < sizeof(raw)) {
		got = read(fd, raw + n, sizeof(raw) - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			err = -errno;
			store__say(why, why_len, "cannot read key file %s: %s", path,
			           strerror(errno));
			goto wipe;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	if (all_hex_then_space(raw, n)) {
		memcpy(hex, raw, HASH_HEX_LEN);
		hex[HASH_HEX_LEN] = '\0';
		err = hearth_hex_decode(hex, key, HEARTH_AUDIT_KEY_LEN);
	} else if (n == HEARTH_AUDIT_KEY_LEN) {
		memcpy(key, raw, HEARTH_AUDIT_KEY_LEN);
	} else {
		err = HEARTH_E_CONFIG;
	}
	if (err) {
		store__say(why, why_len,
		           "key file %s must hold 64 hex digits or 32 raw bytes (make one with: "
		           "(umask 077; head -c 32 /dev/urandom > FILE))",
		           path);
		err = HEARTH_E_CONFIG;
	}
wipe:
	mbedtls_platform_zeroize(raw, sizeof(raw));
	mbedtls_platform_zeroize(hex, sizeof(hex));
close_fd:
	close(fd);
	return err;
}

bool
hearth_audit_seal_required(void)
{
#ifdef CONFIG_HEARTH_AUDIT_SEAL
	return true;
#else
	return false;
#endif
}
