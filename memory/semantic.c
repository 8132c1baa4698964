/*
 * semantic.c - semantic memory: small learned records keyed "kind/name" in
 * the `semantic` database, each a JSON object with a version counter. Every
 * update is an apply op: it reads the record inside the flush transaction,
 * changes it and writes it back, so updates queued in one loop turn build on
 * each other in queue order and none is lost. A stored record that does not
 * decode is replaced by a fresh one (with a warning) rather than blocking the
 * flush, since a failing apply op would hold back every other write. This
 * module owns the record forms (see semantic.h) and nothing else; it never
 * logs a value.
 */
#include "memory/semantic.h"
#include "memory/store_internal.h"

#include <errno.h>
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/json.h"
#include "platform/log.h"

#define KIND_MAX     32
#define SEM_NAME_MAX 255
#define KEY_MAX      (KIND_MAX + 1 + SEM_NAME_MAX)
#define VALUE_MAX    65536

enum sem_op {
	SEM_RECIPE,
	SEM_DEVICE,
	SEM_HABIT,
	SEM_JSON,
};

/* Apply op data: this header, the key "kind/name", NUL, then (SEM_JSON) the value text. */
struct sem_hdr {
	double latency_ms;
	uint16_t klen;
	uint8_t op;
	uint8_t ok;
	int8_t hour;
};

/* ==== Keys ==== */

static bool
kind_valid(const char *kind)
{
	size_t n = strlen(kind);

	if (!n || n > KIND_MAX)
		return false;
	for (; *kind; kind++)
		if (!((*kind >= 'a' && *kind <= 'z') || (*kind >= '0' && *kind <= '9') ||
		      *kind == '_' || *kind == '.' || *kind == '-'))
			return false;
	return true;
}

/* "kind/name" into key (KEY_MAX + 1 bytes); its length, or 0 when invalid. */
static size_t
make_key(char *key, const char *kind, const char *name)
{
	size_t nk, nn;

	if (!kind || !name || !kind_valid(kind))
		return 0;
	nk = strlen(kind);
	nn = strlen(name);
	if (!nn || nn > SEM_NAME_MAX)
		return 0;
	memcpy(key, kind, nk);
	key[nk] = '/';
	memcpy(key + nk + 1, name, nn + 1);
	return nk + 1 + nn;
}

static bool
typed_kind(const char *kind)
{
	return !strcmp(kind, "recipe") || !strcmp(kind, "device") || !strcmp(kind, "habit");
}

/* ==== Latency histogram ==== */

static int
lat_bucket(double ms)
{
	double b;

	if (!(ms >= 1.0))
		return 0;
	b = 1.0 + floor(2.0 * log2(ms));
	if (b >= HEARTH_SEMANTIC_LAT_BUCKETS - 1)
		return HEARTH_SEMANTIC_LAT_BUCKETS - 1;
	return (int)b;
}

static double
lat_lower(int i)
{
	return i == 0 ? 0.0 : pow(2.0, (i - 1) / 2.0);
}

static double
lat_upper(int i)
{
	return pow(2.0, i / 2.0);
}

double
hearth_semantic_percentile(const uint32_t hist[HEARTH_SEMANTIC_LAT_BUCKETS], double p)
{
	double total = 0, cum = 0, rank;

	if (!hist || !(p > 0 && p < 1))
		return 0;
	for (int i = 0; i < HEARTH_SEMANTIC_LAT_BUCKETS; i++)
		total += hist[i];
	if (total == 0)
		return 0;
	rank = p * total;
	for (int i = 0; i < HEARTH_SEMANTIC_LAT_BUCKETS; i++) {
		if (!hist[i])
			continue;
		if (cum + hist[i] >= rank) {
			if (i == HEARTH_SEMANTIC_LAT_BUCKETS - 1)
				return lat_lower(i);
			return lat_lower(i) +
			       (rank - cum) / hist[i] * (lat_upper(i) - lat_lower(i));
		}
		cum += hist[i];
	}
	return lat_lower(HEARTH_SEMANTIC_LAT_BUCKETS - 1);
}

/* ==== Record helpers ==== */

static double
num_or(const cJSON *o, const char *key, double dflt)
{
	double v;

	return hearth_json_get_num(o, key, &v) == 0 ? v : dflt;
}

/* Set o.key to the number v (replacing it). false on ENOMEM. */
static bool
set_num(cJSON *o, const char *key, double v)
{
	cJSON *item = cJSON_GetObjectItemCaseSensitive(o, key);

	if (cJSON_IsNumber(item)) {
		cJSON_SetNumberValue(item, v);
		return true;
	}
	if (item)
		cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	return cJSON_AddNumberToObject(o, key, v) != NULL;
}

/*
 * o.key as an array of n numbers (made, or remade when it has another
 * shape), counts copied into c. NULL on ENOMEM.
 */
static cJSON *
counts(cJSON *o, const char *key, int n, double *c)
{
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, key), *it;
	int i = 0;

	if (cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == n) {
		cJSON_ArrayForEach(it, arr)
		{
			c[i++] = cJSON_IsNumber(it) && it->valuedouble > 0 ? it->valuedouble : 0;
		}
		return arr;
	}
	if (arr)
		cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	arr = cJSON_AddArrayToObject(o, key);
	for (i = 0; arr && i < n; i++) {
		c[i] = 0;
		if (!cJSON_AddItemToArray(arr, cJSON_CreateNumber(0)))
			return NULL;
	}
	return arr;
}

static void
counts_store(cJSON *arr, const double *c)
{
	cJSON *it;
	int i = 0;

	cJSON_ArrayForEach(it, arr)
	{
		cJSON_SetNumberValue(it, c[i]);
		i++;
	}
}

/* ==== Updates (inside the flush transaction) ==== */

static bool
update_recipe(cJSON *rec, const struct sem_hdr *h)
{
	double a = num_or(rec, "a", 1), b = num_or(rec, "b", 1);

	if (h->ok)
		a += 1;
	else
		b += 1;
	return set_num(rec, "a", a) && set_num(rec, "b", b);
}

static bool
update_device(cJSON *rec, const struct sem_hdr *h)
{
	double hist[HEARTH_SEMANTIC_LAT_BUCKETS], total = 0;
	cJSON *arr;
	double ewma;

	if (!set_num(rec, "attempts", num_or(rec, "attempts", 0) + 1) ||
	    !set_num(rec, "successes", num_or(rec, "successes", 0) + (h->ok ? 1 : 0)))
		return false;
	if (!(h->latency_ms >= 0))
		return true;
	ewma = num_or(rec, "ewma_ms", -1);
	if (ewma < 0)
		ewma = h->latency_ms;
	else
		ewma = HEARTH_SEMANTIC_EWMA_ALPHA * h->latency_ms +
		       (1 - HEARTH_SEMANTIC_EWMA_ALPHA) * ewma;
	if (!set_num(rec, "ewma_ms", ewma))
		return false;
	arr = counts(rec, "hist", HEARTH_SEMANTIC_LAT_BUCKETS, hist);
	if (!arr)
		return false;
	hist[lat_bucket(h->latency_ms)] += 1;
	for (int i = 0; i < HEARTH_SEMANTIC_LAT_BUCKETS; i++)
		total += hist[i];
	if (total >= HEARTH_SEMANTIC_LAT_HALVE_AT)
		for (int i = 0; i < HEARTH_SEMANTIC_LAT_BUCKETS; i++)
			hist[i] = floor(hist[i] / 2);
	counts_store(arr, hist);
	return true;
}

static bool
update_habit(cJSON *rec, const struct sem_hdr *h)
{
	double hours[24];
	cJSON *arr = counts(rec, "hours", 24, hours);

	if (!arr)
		return false;
	hours[h->hour] += 1;
	counts_store(arr, hours);
	return true;
}

/* Set rec.value to the JSON text value. MDB_SUCCESS, ENOMEM. */
static int
update_json(cJSON *rec, const char *value)
{
	cJSON *v = NULL;
	int err = hearth_json_parse(value, strlen(value), &v, NULL, 0);

	if (err) /* it parsed when queued: only memory can fail */
		return err == -ENOMEM ? ENOMEM : MDB_SUCCESS;
	cJSON_DeleteItemFromObjectCaseSensitive(rec, "value");
	if (!cJSON_AddItemToObject(rec, "value", v)) {
		cJSON_Delete(v);
		return ENOMEM;
	}
	return MDB_SUCCESS;
}

static int
apply_update(hearth_store *st, MDB_txn *txn, const void *data, size_t len)
{
	MDB_dbi dbi = store__dbi(st, HEARTH_DB_SEMANTIC);
	const char *key, *value;
	struct sem_hdr h;
	cJSON *rec = NULL;
	MDB_val k, v;
	char *text;
	bool ok;
	int err, rc;

	if (len < sizeof(h) + 1)
		return EINVAL;
	memcpy(&h, data, sizeof(h));
	key = (const char *)data + sizeof(h);
	if (sizeof(h) + h.klen + 1 > len || key[h.klen] != '\0')
		return EINVAL;
	value = key + h.klen + 1;
	if (h.op > SEM_JSON || (h.op == SEM_HABIT && (h.hour < 0 || h.hour > 23)))
		return EINVAL; /* not a form queue_update() makes */

	k.mv_size = h.klen;
	k.mv_data = (void *)key;
	rc = mdb_get(txn, dbi, &k, &v);
	if (rc == MDB_SUCCESS) {
		err = hearth_json_parse(v.mv_data, v.mv_size, &rec, NULL, 0);
		if (err == -ENOMEM)
			return ENOMEM;
		if (err || !cJSON_IsObject(rec)) {
			LOG_WARN("semantic", "record %s does not decode: starting it afresh", key);
			cJSON_Delete(rec);
			rec = NULL;
		}
	} else if (rc != MDB_NOTFOUND) {
		return rc;
	}
	if (!rec)
		rec = cJSON_CreateObject();
	if (!rec)
		return ENOMEM;

	switch (h.op) {
	case SEM_RECIPE:
		ok = update_recipe(rec, &h);
		break;
	case SEM_DEVICE:
		ok = update_device(rec, &h);
		break;
	case SEM_HABIT:
		ok = update_habit(rec, &h);
		break;
	default:
		ok = update_json(rec, value) == MDB_SUCCESS;
		break;
	}
	if (ok)
		ok = set_num(rec, "version", num_or(rec, "version", 0) + 1);
	text = ok ? hearth_json_print(rec) : NULL;
	cJSON_Delete(rec);
	if (!text)
		return ENOMEM;
	v.mv_size = strlen(text);
	v.mv_data = text;
	rc = mdb_put(txn, dbi, &k, &v, 0);
	hearth_free(text);
	return rc;
}

/* Queue one update: header, key and optional value in one apply op. */
static int
queue_update(hearth_store *st, struct sem_hdr *h, const char *key, size_t klen, const char *value)
{
	size_t vlen = value ? strlen(value) + 1 : 0;
	size_t len = sizeof(*h) + klen + 1 + vlen;
	unsigned char small[sizeof(*h) + KEY_MAX + 1];
	unsigned char *buf = small;
	int err;

	if (store__read_only(st))
		return -EROFS;
	if (klen > KEY_MAX) /* make_key never gives more; said for the optimizer too */
		return HEARTH_E_INVALID;
	if (len > sizeof(small)) {
		buf = hearth_malloc(len);
		if (!buf)
			return -ENOMEM;
	}
	h->klen = (uint16_t)klen;
	memcpy(buf, h, sizeof(*h));
	memcpy(buf + sizeof(*h), key, klen + 1);
	if (vlen)
		memcpy(buf + sizeof(*h) + klen + 1, value, vlen);
	err = store__queue_apply(st, apply_update, buf, len);
	if (buf != small)
		hearth_free(buf);
	return err;
}

int
hearth_semantic_recipe_outcome(hearth_store *st, const char *recipe, bool success)
{
	struct sem_hdr h = {.op = SEM_RECIPE, .ok = success};
	char key[KEY_MAX + 1];
	size_t klen;

	if (!st || !(klen = make_key(key, "recipe", recipe)))
		return HEARTH_E_INVALID;
	return queue_update(st, &h, key, klen, NULL);
}

int
hearth_semantic_device_sample(hearth_store *st, const char *device, double latency_ms, bool ok)
{
	struct sem_hdr h = {.op = SEM_DEVICE, .ok = ok};
	char key[KEY_MAX + 1];
	size_t klen;

	if (!st || !(klen = make_key(key, "device", device)) || isnan(latency_ms) ||
	    isinf(latency_ms))
		return HEARTH_E_INVALID;
	h.latency_ms = latency_ms;
	return queue_update(st, &h, key, klen, NULL);
}

int
hearth_semantic_habit(hearth_store *st, const char *recipe, int hour)
{
	struct sem_hdr h = {.op = SEM_HABIT};
	char key[KEY_MAX + 1];
	size_t klen;

	if (!st || hour < 0 || hour > 23 || !(klen = make_key(key, "habit", recipe)))
		return HEARTH_E_INVALID;
	h.hour = (int8_t)hour;
	return queue_update(st, &h, key, klen, NULL);
}

int
hearth_semantic_put_json(hearth_store *st, const char *kind, const char *name, const char *json)
{
	struct sem_hdr h = {.op = SEM_JSON};
	char key[KEY_MAX + 1];
	cJSON *check = NULL;
	size_t klen;
	int err;

	if (!st || !(klen = make_key(key, kind, name)) || typed_kind(kind))
		return HEARTH_E_INVALID;
	if (!json) {
		if (store__read_only(st))
			return -EROFS;
		return store__del(st, HEARTH_DB_SEMANTIC, key, klen);
	}
	if (strlen(json) > VALUE_MAX)
		return HEARTH_E_TOO_LARGE;
	err = hearth_json_parse(json, strlen(json), &check, NULL, 0);
	if (err)
		return err;
	cJSON_Delete(check);
	return queue_update(st, &h, key, klen, json);
}

/* ==== Reads ==== */

/* The committed record under key, parsed into *rec (NULL when absent). */
static int
read_record(hearth_store *st, const char *key, size_t klen, cJSON **rec)
{
	MDB_val k = {klen, (void *)key}, v;
	MDB_txn *txn;
	int err, rc;

	*rec = NULL;
	if (!store__has_db(st, HEARTH_DB_SEMANTIC))
		return 0;
	err = store__read_txn(st, &txn);
	if (err)
		return err;
	rc = mdb_get(txn, store__dbi(st, HEARTH_DB_SEMANTIC), &k, &v);
	if (rc == MDB_SUCCESS) {
		err = hearth_json_parse(v.mv_data, v.mv_size, rec, NULL, 0);
		if (err == HEARTH_E_BAD_JSON || (!err && !cJSON_IsObject(*rec)))
			err = HEARTH_E_CORRUPT;
		if (err) {
			cJSON_Delete(*rec);
			*rec = NULL;
		}
	} else if (rc != MDB_NOTFOUND) {
		err = store__map_err(rc);
	}
	mdb_txn_abort(txn);
	return err;
}

static uint64_t
version_of(const cJSON *rec)
{
	double v = num_or(rec, "version", 0);

	return v > 0 ? (uint64_t)v : 0;
}

/* Counts of rec.key (n numbers) into out; false when the shape is wrong. */
static bool
read_counts(const cJSON *rec, const char *key, int n, uint32_t *out)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(rec, key), *it;
	int i = 0;

	if (!arr)
		return true; /* never filled */
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n)
		return false;
	cJSON_ArrayForEach(it, arr)
	{
		if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > UINT32_MAX)
			return false;
		out[i++] = (uint32_t)it->valuedouble;
	}
	return true;
}

int
hearth_semantic_recipe_get(hearth_store *st, const char *recipe, struct hearth_recipe_stats *out)
{
	char key[KEY_MAX + 1];
	size_t klen;
	cJSON *rec;
	int err;

	if (!st || !out || !(klen = make_key(key, "recipe", recipe)))
		return HEARTH_E_INVALID;
	err = read_record(st, key, klen, &rec);
	if (err)
		return err;
	out->a = num_or(rec, "a", 1);
	out->b = num_or(rec, "b", 1);
	out->version = version_of(rec);
	cJSON_Delete(rec);
	if (!(out->a > 0 && out->b > 0))
		return HEARTH_E_CORRUPT;
	out->mean = out->a / (out->a + out->b);
	return 0;
}

int
hearth_semantic_device_get(hearth_store *st, const char *device, struct hearth_device_stats *out)
{
	char key[KEY_MAX + 1];
	size_t klen;
	cJSON *rec;
	bool shaped;
	int err;

	if (!st || !out || !(klen = make_key(key, "device", device)))
		return HEARTH_E_INVALID;
	memset(out, 0, sizeof(*out));
	err = read_record(st, key, klen, &rec);
	if (err)
		return err;
	shaped = read_counts(rec, "hist", HEARTH_SEMANTIC_LAT_BUCKETS, out->hist);
	out->ewma_ms = num_or(rec, "ewma_ms", 0);
	out->attempts = (uint64_t)num_or(rec, "attempts", 0);
	out->successes = (uint64_t)num_or(rec, "successes", 0);
	out->version = version_of(rec);
	cJSON_Delete(rec);
	if (!shaped)
		return HEARTH_E_CORRUPT;
	for (int i = 0; i < HEARTH_SEMANTIC_LAT_BUCKETS; i++)
		out->samples += out->hist[i];
	out->p95_ms = hearth_semantic_percentile(out->hist, 0.95);
	out->reliability = out->attempts ? (double)out->successes / (double)out->attempts : 0;
	return 0;
}

int
hearth_semantic_habit_get(hearth_store *st, const char *recipe, struct hearth_habit_stats *out)
{
	char key[KEY_MAX + 1];
	size_t klen;
	cJSON *rec;
	bool shaped;
	int err;

	if (!st || !out || !(klen = make_key(key, "habit", recipe)))
		return HEARTH_E_INVALID;
	memset(out, 0, sizeof(*out));
	err = read_record(st, key, klen, &rec);
	if (err)
		return err;
	shaped = read_counts(rec, "hours", 24, out->hours);
	out->version = version_of(rec);
	cJSON_Delete(rec);
	if (!shaped)
		return HEARTH_E_CORRUPT;
	for (int i = 0; i < 24; i++)
		out->total += out->hours[i];
	return 0;
}

int
hearth_semantic_get_json(hearth_store *st, const char *kind, const char *name, char **json,
                         uint64_t *version)
{
	char key[KEY_MAX + 1];
	const cJSON *val;
	size_t klen;
	cJSON *rec;
	int err;

	if (!st || !json || !(klen = make_key(key, kind, name)) || typed_kind(kind))
		return HEARTH_E_INVALID;
	*json = NULL;
	err = read_record(st, key, klen, &rec);
	if (err)
		return err;
	if (!rec)
		return HEARTH_E_NOT_FOUND;
	val = cJSON_GetObjectItemCaseSensitive(rec, "value");
	if (!val) {
		err = HEARTH_E_CORRUPT;
		goto free_rec;
	}
	*json = hearth_json_print(val);
	if (!*json) {
		err = -ENOMEM;
		goto free_rec;
	}
	if (version)
		*version = version_of(rec);
free_rec:
	cJSON_Delete(rec);
	return err;
}

int
hearth_semantic_each(hearth_store *st, const char *kind, hearth_store_visit_fn fn, void *ud)
{
	char prefix[KIND_MAX + 2];

	if (!st || !fn || !kind || !kind_valid(kind))
		return HEARTH_E_INVALID;
	snprintf(prefix, sizeof(prefix), "%s/", kind);
	return store__each(st, HEARTH_DB_SEMANTIC, prefix, true, SEM_NAME_MAX, fn, ud);
}
