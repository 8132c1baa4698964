/*
 * episodic.c - queries and upkeep over the `episodes` database. Reading
 * walks the time-ordered keys with one cursor in one read transaction: a time
 * range positions the cursor (MDB_SET_RANGE) and stops it, so its cost is the
 * episodes inside the range; the recipe, device and outcome filters look
 * first for the quoted value in the raw text (a cheap skip for plain values)
 * and then parse the record to be sure. Writing is never done here directly:
 * pruning by age and annotations are apply ops queued through the store, so
 * they land in the loop turn's group commit, in order with the episodes
 * queued before them; the age window is a commit hook. This module owns no
 * episode it hands out (the visitor borrows them) and never logs a record.
 */
#include "memory/episodic.h"
#include "memory/store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <string.h>

#include "platform/alloc.h"
#include "platform/clock.h"
#include "platform/err.h"
#include "platform/id.h"
#include "platform/json.h"
#include "platform/log.h"

#define KEY_LEN           16
#define ANNOTATE_KEY_MAX  64
#define ANNOTATE_JSON_MAX 65536

/* ==== Helpers ==== */

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

/*
 * Can s be found verbatim, in quotes, in any JSON text that holds it as a
 * string? True for characters no JSON writer escapes.
 */
static bool
plain(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == ':' || c == ' '))
			return false;
	}
	return true;
}

/*
 * Could text hold the string s? False only when s is plain and "s" (quoted)
 * does not occur in it, so the record surely does not match.
 */
static bool
may_hold(const void *text, size_t len, const char *s)
{
	size_t n;

	if (!plain(s))
		return true;
	n = strlen(s);
	for (const char *p = text, *end = p + len; p + n + 2 <= end;) {
		const char *q = memchr(p, '"', (size_t)(end - p) - n - 1);

		if (!q)
			return false;
		if (memcmp(q + 1, s, n) == 0 && q[n + 1] == '"')
			return true;
		p = q + 1;
	}
	return false;
}

static bool
str_field_is(const cJSON *doc, const char *key, const char *want)
{
	const char *s;

	return hearth_json_get_str(doc, key, &s) == 0 && strcmp(s, want) == 0;
}

static bool
has_device(const cJSON *doc, const char *device)
{
	const cJSON *step;

	cJSON_ArrayForEach(step, hearth_json_arr(doc, "steps"))
	{
		if (str_field_is(step, "device", device))
			return true;
	}
	return false;
}

/* Delete every episode whose key time is before cutoff. Returns an LMDB code. */
static int
delete_before(MDB_txn *txn, MDB_dbi dbi, uint64_t cutoff)
{
	MDB_cursor *cur;
	MDB_val k, v;
	long n = 0;
	int rc;

	rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != MDB_SUCCESS)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == MDB_SUCCESS) {
		if (k.mv_size != KEY_LEN || get_be64(k.mv_data) >= cutoff)
			break;
		rc = mdb_cursor_del(cur, 0);
		if (rc != MDB_SUCCESS)
			break;
		n++;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND || rc == MDB_SUCCESS) {
		if (n)
			LOG_DEBUG("episodic", "pruned %ld episode(s) before %" PRIu64, n, cutoff);
		return MDB_SUCCESS;
	}
	return rc;
}

/* ==== Queries ==== */

/* Does the record match the query's field filters? Sets *doc (or NULL to skip). */
static int
load_match(const struct hearth_episode_query *q, const MDB_val *v, cJSON **doc)
{
	int err;

	*doc = NULL;
	if ((q->recipe && !may_hold(v->mv_data, v->mv_size, q->recipe)) ||
	    (q->outcome && !may_hold(v->mv_data, v->mv_size, q->outcome)) ||
	    (q->device && !may_hold(v->mv_data, v->mv_size, q->device)))
		return 0;
	err = hearth_json_parse(v->mv_data, v->mv_size, doc, NULL, 0);
	if (err == -ENOMEM)
		return err;
	if (err || !cJSON_IsObject(*doc)) {
		LOG_WARN("episodic", "skipping an episode that is not a JSON object (%zu bytes)",
		         v->mv_size);
		goto skip;
	}
	if ((q->recipe && !str_field_is(*doc, "recipe", q->recipe)) ||
	    (q->outcome && !str_field_is(*doc, "outcome", q->outcome)) ||
	    (q->device && !has_device(*doc, q->device)))
		goto skip;
	return 0;

skip:
	cJSON_Delete(*doc);
	*doc = NULL;
	return 0;
}

long
hearth_episodes_query(hearth_store *st, const struct hearth_episode_query *q,
                      hearth_episode_visit_fn visit, void *ud)
{
	static const struct hearth_episode_query all = {0};
	uint64_t from, to; /* to == 0: no upper bound */
	unsigned char start[KEY_LEN];
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	MDB_cursor_op step;
	long n = 0;
	int err = 0, rc;

	if (!st || !visit)
		return HEARTH_E_INVALID;
	if (!q)
		q = &all;
	from = q->from_ms > 0 ? (uint64_t)q->from_ms : 0;
	to = q->to_ms > 0 ? (uint64_t)q->to_ms : 0;
	if (to && from >= to)
		return HEARTH_E_INVALID;

	err = store__read_txn(st, &txn);
	if (err)
		return err;
	rc = mdb_cursor_open(txn, store__dbi(st, HEARTH_DB_EPISODES), &cur);
	if (rc != MDB_SUCCESS)
		goto abort_txn;

	/* Position on the first key of the walk. */
	k.mv_size = sizeof(start);
	k.mv_data = start;
	if (q->oldest_first) {
		step = MDB_NEXT;
		put_be64(start, from);
		put_be64(start + 8, 0);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	} else if (to) {
		step = MDB_PREV;
		put_be64(start, to);
		put_be64(start + 8, 0);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_SUCCESS)
			rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
		else if (rc == MDB_NOTFOUND)
			rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	} else {
		step = MDB_PREV;
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	}

	for (; rc == MDB_SUCCESS; rc = mdb_cursor_get(cur, &k, &v, step)) {
		struct hearth_episode ep;
		cJSON *doc;
		uint64_t ts;

		if (k.mv_size != KEY_LEN) {
			rc = MDB_CORRUPTED;
			break;
		}
		ts = get_be64(k.mv_data);
		if ((step == MDB_NEXT && to && ts >= to) || (step == MDB_PREV && ts < from))
			break;
		err = load_match(q, &v, &doc);
		if (err)
			break;
		if (!doc)
			continue;
		ep.ts_ms = (int64_t)ts;
		ep.seq = get_be64((const unsigned char *)k.mv_data + 8);
		ep.json = v.mv_data;
		ep.len = v.mv_size;
		ep.doc = doc;
		n++;
		err = visit(ud, &ep);
		cJSON_Delete(doc);
		if (err || (q->limit > 0 && n >= q->limit))
			break;
	}
	if (rc == MDB_NOTFOUND)
		rc = MDB_SUCCESS;
	mdb_cursor_close(cur);
abort_txn:
	mdb_txn_abort(txn);
	if (rc != MDB_SUCCESS)
		return store__map_err(rc);
	if (err < 0)
		return err;
	return n;
}

/* ==== Pruning by age ==== */

static int
apply_prune(hearth_store *st, MDB_txn *txn, const void *data, size_t len)
{
	int64_t cutoff;

	if (len != sizeof(cutoff))
		return EINVAL;
	memcpy(&cutoff, data, sizeof(cutoff));
	return delete_before(txn, store__dbi(st, HEARTH_DB_EPISODES), (uint64_t)cutoff);
}

int
hearth_episodes_prune(hearth_store *st, int64_t now_ms, int64_t max_age_ms)
{
	int64_t cutoff;

	if (!st || max_age_ms <= 0)
		return HEARTH_E_INVALID;
	if (store__read_only(st))
		return -EROFS;
	if (now_ms <= max_age_ms)
		return 0; /* nothing can be that old */
	cutoff = now_ms - max_age_ms;
	return store__queue_apply(st, apply_prune, &cutoff, sizeof(cutoff));
}

static int
age_hook(void *ud, MDB_txn *txn)
{
	struct hearth_episode_age *age = ud;
	int64_t now;

	if (age->max_age_ms <= 0)
		return MDB_SUCCESS;
	now = age->now ? age->now(age->now_ud) : hearth_wall_ms();
	if (now <= age->max_age_ms)
		return MDB_SUCCESS;
	return delete_before(txn, store__dbi(age->store, HEARTH_DB_EPISODES),
	                     (uint64_t)(now - age->max_age_ms));
}

int
hearth_episodes_set_max_age(hearth_store *st, struct hearth_episode_age *age)
{
	if (!st || !age)
		return HEARTH_E_INVALID;
	if (store__read_only(st))
		return -EROFS;
	age->store = st;
	return store__on_commit(st, age_hook, age);
}

/* ==== Annotations ==== */

/*
 * Apply op data: plan id, key and value text, each NUL-terminated, one after
 * the other. The value was checked when queued.
 */
struct annotation {
	const char *plan_id;
	const char *key;
	const char *value;
};

static bool
annotation_decode(const void *data, size_t len, struct annotation *a)
{
	const char *p = data, *end = p + len, *z;

	if (!len || end[-1] != '\0')
		return false;
	a->plan_id = p;
	z = memchr(p, '\0', (size_t)(end - p));
	if (!z || z + 1 >= end)
		return false;
	a->key = z + 1;
	z = memchr(a->key, '\0', (size_t)(end - a->key));
	if (!z || z + 1 >= end)
		return false;
	a->value = z + 1;
	return true;
}

/* Set a->key in the record doc and write it back under key k. */
static int
annotate_record(MDB_txn *txn, MDB_dbi dbi, unsigned char *k, cJSON *doc, const struct annotation *a)
{
	cJSON *val = NULL;
	MDB_val mk, mv;
	char *text;
	int err, rc;

	/* The value parsed when it was queued: only memory can fail here. */
	err = hearth_json_parse(a->value, strlen(a->value), &val, NULL, 0);
	if (err)
		return err == -ENOMEM ? ENOMEM : MDB_SUCCESS;
	if (cJSON_GetObjectItemCaseSensitive(doc, a->key)) {
		if (!cJSON_ReplaceItemInObjectCaseSensitive(doc, a->key, val)) {
			cJSON_Delete(val);
			return ENOMEM;
		}
	} else if (!cJSON_AddItemToObject(doc, a->key, val)) {
		cJSON_Delete(val);
		return ENOMEM;
	}
	text = hearth_json_print(doc);
	if (!text)
		return ENOMEM;
	mk.mv_size = KEY_LEN;
	mk.mv_data = k;
	mv.mv_size = strlen(text);
	mv.mv_data = text;
	rc = mdb_put(txn, dbi, &mk, &mv, 0);
	hearth_free(text);
	return rc;
}

static int
apply_annotate(hearth_store *st, MDB_txn *txn, const void *data, size_t len)
{
	MDB_dbi dbi = store__dbi(st, HEARTH_DB_EPISODES);
	unsigned char key[KEY_LEN] = {0};
	struct annotation a;
	MDB_cursor *cur;
	MDB_val k, v;
	cJSON *doc = NULL;
	long seen = 0;
	int err, rc;

	if (!annotation_decode(data, len, &a))
		return EINVAL;
	rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != MDB_SUCCESS)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	     rc == MDB_SUCCESS && seen < HEARTH_EPISODE_ANNOTATE_SCAN;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_PREV), seen++) {
		if (k.mv_size != KEY_LEN || !may_hold(v.mv_data, v.mv_size, a.plan_id))
			continue;
		err = hearth_json_parse(v.mv_data, v.mv_size, &doc, NULL, 0);
		if (err == -ENOMEM) {
			rc = ENOMEM;
			break;
		}
		if (!err && cJSON_IsObject(doc) && str_field_is(doc, "id", a.plan_id)) {
			memcpy(key, k.mv_data, sizeof(key));
			break;
		}
		cJSON_Delete(doc);
		doc = NULL;
	}
	mdb_cursor_close(cur);
	if (doc) {
		rc = annotate_record(txn, dbi, key, doc, &a);
		cJSON_Delete(doc);
		return rc;
	}
	if (rc == MDB_SUCCESS || rc == MDB_NOTFOUND) {
		LOG_WARN("episodic", "no episode of plan %s among the newest %d: %s not recorded",
		         a.plan_id, HEARTH_EPISODE_ANNOTATE_SCAN, a.key);
		return MDB_SUCCESS;
	}
	return rc;
}

int
hearth_episode_annotate(hearth_store *st, const char *plan_id, const char *key,
                        const char *json_value)
{
	size_t lp, lk, lv;
	cJSON *check = NULL;
	char *buf;
	int err;

	if (!st || !plan_id || !key || !json_value || !hearth_id_valid_str(plan_id))
		return HEARTH_E_INVALID;
	lk = strlen(key);
	if (!lk || lk > ANNOTATE_KEY_MAX || strcmp(key, "id") == 0)
		return HEARTH_E_INVALID;
	lv = strlen(json_value);
	if (lv > ANNOTATE_JSON_MAX)
		return HEARTH_E_TOO_LARGE;
	if (store__read_only(st))
		return -EROFS;
	err = hearth_json_parse(json_value, lv, &check, NULL, 0);
	if (err)
		return err;
	cJSON_Delete(check);

	lp = strlen(plan_id);
	buf = hearth_malloc(lp + lk + lv + 3);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, plan_id, lp + 1);
	memcpy(buf + lp + 1, key, lk + 1);
	memcpy(buf + lp + lk + 2, json_value, lv + 1);
	err = store__queue_apply(st, apply_annotate, buf, lp + lk + lv + 3);
	hearth_free(buf);
	return err;
}

/* ==== Traces ==== */

static void
copy_field(cJSON *dst, const cJSON *src, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, key);

	if (v)
		cJSON_AddItemToObject(dst, key, cJSON_Duplicate(v, 1));
}

static int
add_trace(void *ud, const struct hearth_episode *ep)
{
	static const char *const run_keys[] = {"id",         "intent_id", "intent", "slots",
	                                       "outcome",    "reason",    "ts",     "ended_at",
	                                       "latency_ms", "rationale"};
	static const char *const step_keys[] = {"id",   "device",     "state",
	                                        "note", "rebound_to", "timeline"};
	cJSON *t = cJSON_CreateObject(), *steps;
	const cJSON *st;

	if (!t || !cJSON_AddItemToArray(ud, t)) {
		cJSON_Delete(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < sizeof(run_keys) / sizeof(run_keys[0]); i++)
		copy_field(t, ep->doc, run_keys[i]);
	/* the episode's "id" is the plan id */
	cJSON_AddItemToObject(t, "plan_id", cJSON_DetachItemFromObject(t, "id"));
	steps = cJSON_AddArrayToObject(t, "steps");
	cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(ep->doc, "steps"))
	{
		cJSON *o = cJSON_CreateObject();

		if (!o || !steps || !cJSON_AddItemToArray(steps, o)) {
			cJSON_Delete(o);
			return -ENOMEM;
		}
		for (size_t i = 0; i < sizeof(step_keys) / sizeof(step_keys[0]); i++)
			copy_field(o, st, step_keys[i]);
		if (!cJSON_GetObjectItemCaseSensitive(o, "timeline"))
			cJSON_AddObjectToObject(o, "timeline");
	}
	return 0;
}

long
hearth_episodes_trace(hearth_store *st, const char *recipe, long limit, cJSON **out)
{
	struct hearth_episode_query q = {.recipe = recipe, .limit = limit};
	long n;

	*out = NULL;
	if (!st || !recipe || !recipe[0])
		return HEARTH_E_INVALID;
	*out = cJSON_CreateArray();
	if (!*out)
		return -ENOMEM;
	n = hearth_episodes_query(st, &q, add_trace, *out);
	if (n < 0) {
		cJSON_Delete(*out);
		*out = NULL;
	}
	return n;
}
