/*
 * constraints.c - constraint memory: validation of hard rules, their
 * canonical form, the policy hash, and their storage by id in the
 * `constraints` database. Validation is strict (unknown and repeated keys
 * are errors) and every error names the exact place in the input
 * ("rules.json: rules[2].when.all[0].flag: ..."), because rules come from a
 * person editing a file or typing at the CLI. Rules are stored in canonical
 * form (keys sorted, compact), and the policy hash is taken over the
 * canonical set, so the same rules give the same hash whatever the order
 * they were written or loaded in. Replacing a set is one apply op: the old
 * set is dropped and the new one written in the same flush transaction.
 * This module never evaluates a rule (the planner does) and never prints.
 */
#include "memory/constraints.h"
#include "memory/store_internal.h"

#include <errno.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/alloc.h"
#include "platform/crypto.h"
#include "platform/err.h"
#include "platform/id.h"
#include "platform/json.h"
#include "platform/log.h"

#define NAME_MAX_LEN   64 /* capability, property and flag names */
#define REASON_MAX_LEN 512
#define PATH_LEN       256

/* ==== Validation ==== */

/* Where the validator is: the source for messages and the path so far. */
struct vctx {
	const char *source;
	char *why;
	size_t why_len;
	char path[PATH_LEN];
	size_t plen;
};

static int fail(struct vctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write "<source>: <path>: <message>" into why; returns HEARTH_E_INVALID. */
static int
fail(struct vctx *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!c->why || !c->why_len)
		return HEARTH_E_INVALID;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->why, c->why_len, "%s%s%s%s%s", c->source ? c->source : "",
	         c->source ? ": " : "", c->path, c->plen ? ": " : "", msg);
	return HEARTH_E_INVALID;
}

/* Append ".key" (or "key" at the start) to the path; returns the old length. */
static size_t
push_key(struct vctx *c, const char *key)
{
	size_t old = c->plen;
	int n = snprintf(c->path + old, sizeof(c->path) - old, "%s%s", old ? "." : "", key);

	if (n > 0)
		c->plen = old + (size_t)n < sizeof(c->path) ? old + (size_t)n : sizeof(c->path) - 1;
	return old;
}

static size_t
push_index(struct vctx *c, int i)
{
	size_t old = c->plen;
	int n = snprintf(c->path + old, sizeof(c->path) - old, "[%d]", i);

	if (n > 0)
		c->plen = old + (size_t)n < sizeof(c->path) ? old + (size_t)n : sizeof(c->path) - 1;
	return old;
}

static void
pop(struct vctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = '\0';
}

/* Reject keys that appear twice in any object below item. */
static int
check_unique_keys(struct vctx *c, const cJSON *item)
{
	const cJSON *a, *b;
	size_t old;
	int err, i = 0;

	if (cJSON_IsObject(item)) {
		cJSON_ArrayForEach(a, item)
		{
			for (b = a->next; b; b = b->next)
				if (a->string && b->string && !strcmp(a->string, b->string))
					return fail(c, "key \"%s\" appears twice", a->string);
			old = push_key(c, a->string ? a->string : "?");
			err = check_unique_keys(c, a);
			pop(c, old);
			if (err)
				return err;
		}
	} else if (cJSON_IsArray(item)) {
		cJSON_ArrayForEach(a, item)
		{
			old = push_index(c, i++);
			err = check_unique_keys(c, a);
			pop(c, old);
			if (err)
				return err;
		}
	}
	return 0;
}

/* Every key of obj is one of the NULL-terminated list allowed. */
static int
check_keys(struct vctx *c, const cJSON *obj, const char *const *allowed)
{
	const cJSON *m;
	char list[160];
	size_t n = 0;

	cJSON_ArrayForEach(m, obj)
	{
		bool ok = false;

		for (const char *const *a = allowed; *a && !ok; a++)
			ok = !strcmp(m->string, *a);
		if (ok)
			continue;
		list[0] = '\0';
		for (const char *const *a = allowed; *a; a++) {
			int w = snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "", *a);

			if (w < 0 || (size_t)w >= sizeof(list) - n)
				break;
			n += (size_t)w;
		}
		push_key(c, m->string);
		return fail(c, "unknown key (expected one of: %s)", list);
	}
	return 0;
}

/* obj.key as a string of 1..max characters (checked as an id when id). */
static int
check_str(struct vctx *c, const cJSON *obj, const char *key, bool required, size_t max, bool id)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
	size_t old, n;
	int err = 0;

	if (!item) {
		if (required)
			return fail(c, "missing \"%s\"", key);
		return 0;
	}
	old = push_key(c, key);
	if (!cJSON_IsString(item))
		err = fail(c, "expected a string, got %s", hearth_json_type_name(item));
	else if ((n = strlen(item->valuestring)) == 0 || n > max)
		err = fail(c, "must have 1 to %zu characters", max);
	else if (id && !hearth_id_valid_str(item->valuestring))
		err = fail(c, "\"%s\" is not an id (1 to %d characters of A-Z a-z 0-9 _ . -)",
		           item->valuestring, HEARTH_ID_LEN_MAX);
	pop(c, old);
	return err;
}

static int
check_num(struct vctx *c, const cJSON *obj, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
	size_t old;
	int err = 0;

	if (!item || cJSON_IsNumber(item))
		return 0;
	old = push_key(c, key);
	err = fail(c, "expected a number, got %s", hearth_json_type_name(item));
	pop(c, old);
	return err;
}

static bool
parse_hhmm(const char *s, int *minutes)
{
	if (strlen(s) != 5 || s[2] != ':')
		return false;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (s[i] < '0' || s[i] > '9'))
			return false;
	int h = (s[0] - '0') * 10 + (s[1] - '0');
	int m = (s[3] - '0') * 10 + (s[4] - '0');

	if (h > 23 || m > 59)
		return false;
	*minutes = h * 60 + m;
	return true;
}

static int
check_time(struct vctx *c, const cJSON *t)
{
	static const char *const keys[] = {"from", "to", NULL};
	const char *names[2] = {"from", "to"};
	int mins[2], err;

	if (!cJSON_IsObject(t))
		return fail(c,
		            "expected an object {\"from\": \"HH:MM\", \"to\": \"HH:MM\"}, got %s",
		            hearth_json_type_name(t));
	err = check_keys(c, t, keys);
	for (int i = 0; i < 2 && !err; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, names[i]);
		size_t old;

		if (!v)
			return fail(c, "missing \"%s\"", names[i]);
		old = push_key(c, names[i]);
		if (!cJSON_IsString(v) || !parse_hhmm(v->valuestring, &mins[i]))
			err = fail(c, "expected a time \"HH:MM\" (00:00 to 23:59)");
		pop(c, old);
	}
	if (!err && mins[0] == mins[1])
		err = fail(c, "\"from\" and \"to\" are the same time: the window would be empty");
	return err;
}

static int check_cond(struct vctx *c, const cJSON *cond, int depth);

static int
check_list(struct vctx *c, const cJSON *cond, const char *key, int depth)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(cond, key), *it;
	size_t old = push_key(c, key), o2;
	int err = 0, i = 0;

	if (!cJSON_IsArray(arr))
		err = fail(c, "expected an array of conditions, got %s",
		           hearth_json_type_name(arr));
	else if (!arr->child)
		err = fail(c, "needs at least one condition");
	for (it = err ? NULL : arr->child; it; it = it->next) {
		o2 = push_index(c, i++);
		err = check_cond(c, it, depth + 1);
		pop(c, o2);
		if (err)
			break;
	}
	pop(c, old);
	return err;
}

static int
check_cond(struct vctx *c, const cJSON *cond, int depth)
{
	static const char *const k_all[] = {"all", NULL};
	static const char *const k_any[] = {"any", NULL};
	static const char *const k_not[] = {"not", NULL};
	static const char *const k_flag[] = {"flag", "is", NULL};
	static const char *const k_dev[] = {"device", "property", "is", "lt", "gt", NULL};
	static const char *const k_time[] = {"time", NULL};
	const cJSON *is;
	size_t old;
	int err;

	if (depth > HEARTH_CONSTRAINT_DEPTH_MAX)
		return fail(c, "conditions nest deeper than %d", HEARTH_CONSTRAINT_DEPTH_MAX);
	if (!cJSON_IsObject(cond))
		return fail(c, "expected a condition object, got %s", hearth_json_type_name(cond));
	if (cJSON_HasObjectItem(cond, "all")) {
		err = check_keys(c, cond, k_all);
		if (!err)
			err = check_list(c, cond, "all", depth);
		return err;
	}
	if (cJSON_HasObjectItem(cond, "any")) {
		err = check_keys(c, cond, k_any);
		if (!err)
			err = check_list(c, cond, "any", depth);
		return err;
	}
	if (cJSON_HasObjectItem(cond, "not")) {
		err = check_keys(c, cond, k_not);
		if (err)
			return err;
		old = push_key(c, "not");
		err = check_cond(c, cJSON_GetObjectItemCaseSensitive(cond, "not"), depth + 1);
		pop(c, old);
		return err;
	}
	if (cJSON_HasObjectItem(cond, "flag")) {
		err = check_keys(c, cond, k_flag);
		if (!err)
			err = check_str(c, cond, "flag", true, NAME_MAX_LEN, false);
		if (err)
			return err;
		is = cJSON_GetObjectItemCaseSensitive(cond, "is");
		if (!is)
			return fail(c, "missing \"is\" (true or false)");
		if (!cJSON_IsBool(is)) {
			old = push_key(c, "is");
			err = fail(c, "expected true or false, got %s", hearth_json_type_name(is));
			pop(c, old);
		}
		return err;
	}
	if (cJSON_HasObjectItem(cond, "device")) {
		err = check_keys(c, cond, k_dev);
		if (!err)
			err = check_str(c, cond, "device", true, HEARTH_ID_LEN_MAX, true);
		if (!err)
			err = check_str(c, cond, "property", true, NAME_MAX_LEN, false);
		if (!err)
			err = check_num(c, cond, "lt");
		if (!err)
			err = check_num(c, cond, "gt");
		if (err)
			return err;
		is = cJSON_GetObjectItemCaseSensitive(cond, "is");
		if (is && (cJSON_HasObjectItem(cond, "lt") || cJSON_HasObjectItem(cond, "gt")))
			return fail(c, "\"is\" cannot be combined with \"lt\" or \"gt\"");
		if (!is && !cJSON_HasObjectItem(cond, "lt") && !cJSON_HasObjectItem(cond, "gt"))
			return fail(c, "needs \"is\", \"lt\" or \"gt\"");
		if (is && !cJSON_IsBool(is) && !cJSON_IsNumber(is) && !cJSON_IsString(is)) {
			old = push_key(c, "is");
			err = fail(c, "expected a boolean, number or string, got %s",
			           hearth_json_type_name(is));
			pop(c, old);
		}
		return err;
	}
	if (cJSON_HasObjectItem(cond, "time")) {
		err = check_keys(c, cond, k_time);
		if (err)
			return err;
		old = push_key(c, "time");
		err = check_time(c, cJSON_GetObjectItemCaseSensitive(cond, "time"));
		pop(c, old);
		return err;
	}
	return fail(c,
	            "expected one of \"all\", \"any\", \"not\", \"flag\", \"device\" or \"time\"");
}

static int
check_forbid(struct vctx *c, const cJSON *f)
{
	static const char *const keys[] = {"capability", "device", "args", NULL};
	const cJSON *args;
	size_t old;
	int err;

	if (!cJSON_IsObject(f))
		return fail(c, "expected an object, got %s", hearth_json_type_name(f));
	err = check_keys(c, f, keys);
	if (!err)
		err = check_str(c, f, "capability", true, NAME_MAX_LEN, false);
	if (!err)
		err = check_str(c, f, "device", false, HEARTH_ID_LEN_MAX, true);
	if (err)
		return err;
	args = cJSON_GetObjectItemCaseSensitive(f, "args");
	if (args && !cJSON_IsObject(args)) {
		old = push_key(c, "args");
		err = fail(c, "expected an object of argument values, got %s",
		           hearth_json_type_name(args));
		pop(c, old);
	}
	return err;
}

/* risk: the selector of a forbid, and the level its steps have. */
static int
check_risk(struct vctx *c, const cJSON *r)
{
	static const char *const keys[] = {"capability", "device", "args", "level", NULL};
	const cJSON *level = cJSON_GetObjectItemCaseSensitive(r, "level");
	cJSON *sel;
	size_t old;
	int err;

	if (!cJSON_IsObject(r))
		return fail(c, "expected an object, got %s", hearth_json_type_name(r));
	err = check_keys(c, r, keys);
	if (err)
		return err;
	if (!cJSON_IsString(level) ||
	    (strcmp(level->valuestring, "low") && strcmp(level->valuestring, "medium") &&
	     strcmp(level->valuestring, "high"))) {
		old = push_key(c, "level");
		err = fail(c, "expected \"low\", \"medium\" or \"high\"");
		pop(c, old);
		return err;
	}
	/* the rest is a forbid's selector */
	sel = cJSON_Duplicate(r, 1);
	if (!sel)
		return -ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(sel, "level");
	err = check_forbid(c, sel);
	cJSON_Delete(sel);
	return err;
}

static int
check_cap(struct vctx *c, const cJSON *cap)
{
	static const char *const keys[] = {"capability", "property", "device", "min", "max", NULL};
	double min, max;
	int err;

	if (!cJSON_IsObject(cap))
		return fail(c, "expected an object, got %s", hearth_json_type_name(cap));
	err = check_keys(c, cap, keys);
	if (!err)
		err = check_str(c, cap, "capability", true, NAME_MAX_LEN, false);
	if (!err)
		err = check_str(c, cap, "property", true, NAME_MAX_LEN, false);
	if (!err)
		err = check_str(c, cap, "device", false, HEARTH_ID_LEN_MAX, true);
	if (!err)
		err = check_num(c, cap, "min");
	if (!err)
		err = check_num(c, cap, "max");
	if (err)
		return err;
	if (hearth_json_get_num(cap, "min", &min) && hearth_json_get_num(cap, "max", &max))
		return fail(c, "needs \"min\", \"max\" or both");
	if (!hearth_json_get_num(cap, "min", &min) && !hearth_json_get_num(cap, "max", &max) &&
	    min > max)
		return fail(c, "\"min\" (%g) is above \"max\" (%g)", min, max);
	return 0;
}

/* One rule at the current path. */
static int
check_rule(struct vctx *c, const cJSON *rule)
{
	static const char *const keys[] = {"id",   "when",           "forbid", "cap",
	                                   "risk", "approval_lifts", "reason", NULL};
	const cJSON *item;
	size_t old;
	int err;

	if (!cJSON_IsObject(rule))
		return fail(c, "expected a rule object, got %s", hearth_json_type_name(rule));
	err = check_unique_keys(c, rule);
	if (!err)
		err = check_keys(c, rule, keys);
	if (!err)
		err = check_str(c, rule, "id", true, HEARTH_ID_LEN_MAX, true);
	if (!err)
		err = check_str(c, rule, "reason", true, REASON_MAX_LEN, false);
	if (err)
		return err;
	item = cJSON_GetObjectItemCaseSensitive(rule, "approval_lifts");
	if (item && !cJSON_IsBool(item)) {
		old = push_key(c, "approval_lifts");
		err = fail(c, "expected true or false, got %s", hearth_json_type_name(item));
		pop(c, old);
		return err;
	}
	item = cJSON_GetObjectItemCaseSensitive(rule, "when");
	if (item) {
		old = push_key(c, "when");
		err = check_cond(c, item, 1);
		pop(c, old);
		if (err)
			return err;
	}
	if (cJSON_HasObjectItem(rule, "forbid") + cJSON_HasObjectItem(rule, "cap") +
	            cJSON_HasObjectItem(rule, "risk") !=
	    1)
		return fail(c, "needs exactly one of \"forbid\", \"cap\" or \"risk\"");
	if ((item = cJSON_GetObjectItemCaseSensitive(rule, "risk"))) {
		if (cJSON_HasObjectItem(rule, "approval_lifts"))
			return fail(c, "\"approval_lifts\" goes with \"forbid\" or \"cap\", not "
			               "with \"risk\"");
		old = push_key(c, "risk");
		err = check_risk(c, item);
		pop(c, old);
		return err;
	}
	item = cJSON_GetObjectItemCaseSensitive(rule, "forbid");
	old = push_key(c, item ? "forbid" : "cap");
	err = item ? check_forbid(c, item)
	           : check_cap(c, cJSON_GetObjectItemCaseSensitive(rule, "cap"));
	pop(c, old);
	return err;
}

int
hearth_constraint_validate(const cJSON *rule, const char *source, char *why, size_t why_len)
{
	struct vctx c = {.source = source, .why = why, .why_len = why_len};

	if (why && why_len)
		why[0] = '\0';
	return check_rule(&c, rule);
}

int
hearth_constraints_validate(const cJSON *rules, const char *source, char *why, size_t why_len)
{
	struct vctx c = {.source = source, .why = why, .why_len = why_len};
	const cJSON *r, *other;
	const char *id, *id2;
	int err, i = 0, n;

	if (why && why_len)
		why[0] = '\0';
	push_key(&c, "rules");
	if (!cJSON_IsArray(rules))
		return fail(&c, "expected an array of rules, got %s", hearth_json_type_name(rules));
	n = cJSON_GetArraySize(rules);
	if (n > HEARTH_CONSTRAINTS_MAX) {
		fail(&c, "%d rules, at most %d are allowed", n, HEARTH_CONSTRAINTS_MAX);
		return HEARTH_E_TOO_LARGE;
	}
	cJSON_ArrayForEach(r, rules)
	{
		size_t old = push_index(&c, i);
		int j = 0;

		err = check_rule(&c, r);
		if (err)
			return err;
		hearth_json_get_str(r, "id", &id);
		for (other = rules->child; other != r; other = other->next, j++) {
			hearth_json_get_str(other, "id", &id2);
			if (!strcmp(id, id2)) {
				push_key(&c, "id");
				return fail(&c, "\"%s\" is also the id of rules[%d]", id, j);
			}
		}
		pop(&c, old);
		i++;
	}
	return 0;
}

/* ==== Canonical form and hash ==== */

static int
by_key(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

	return strcmp(x->string, y->string);
}

/* A new tree equal to item with the keys of every object sorted; NULL on ENOMEM. */
static cJSON *
canon_tree(const cJSON *item)
{
	const cJSON **kids = NULL, *k;
	cJSON *out;
	int n = 0, i;

	if (!cJSON_IsObject(item) && !cJSON_IsArray(item))
		return cJSON_Duplicate(item, 0);
	out = cJSON_IsObject(item) ? cJSON_CreateObject() : cJSON_CreateArray();
	if (!out)
		return NULL;
	n = cJSON_GetArraySize(item);
	if (n == 0)
		return out;
	kids = hearth_malloc((size_t)n * sizeof(*kids));
	if (!kids)
		goto free_out;
	i = 0;
	for (k = item->child; k; k = k->next)
		kids[i++] = k;
	if (cJSON_IsObject(item))
		qsort(kids, (size_t)n, sizeof(*kids), by_key);
	for (i = 0; i < n; i++) {
		cJSON *c = canon_tree(kids[i]);
		bool ok;

		if (!c)
			goto free_kids;
		ok = cJSON_IsObject(item) ? cJSON_AddItemToObject(out, kids[i]->string, c)
		                          : cJSON_AddItemToArray(out, c);
		if (!ok) {
			cJSON_Delete(c);
			goto free_kids;
		}
	}
	hearth_free(kids);
	return out;

free_kids:
	hearth_free(kids);
free_out:
	cJSON_Delete(out);
	return NULL;
}

char *
hearth_constraints_canonical(const cJSON *item)
{
	cJSON *c;
	char *text;

	if (!item)
		return NULL;
	c = canon_tree(item);
	if (!c)
		return NULL;
	text = hearth_json_print(c);
	cJSON_Delete(c);
	return text;
}

/* A rule's id and canonical text, for sorting a set. */
struct canon_rule {
	const char *id;
	char *text;
};

static int
by_id(const void *a, const void *b)
{
	const struct canon_rule *x = a, *y = b;
	int d = strcmp(x->id, y->id);

	return d ? d : strcmp(x->text, y->text);
}

/* SHA-256 hex of "[" texts joined by "," "]". */
static int
hash_texts(const struct canon_rule *r, size_t n, char out[65])
{
	uint8_t md[HEARTH_SHA256_LEN];
	size_t len = 2, off = 0;
	char *buf;
	int err;

	for (size_t i = 0; i < n; i++)
		len += strlen(r[i].text) + 1;
	buf = hearth_malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	buf[off++] = '[';
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(r[i].text);

		if (i)
			buf[off++] = ',';
		memcpy(buf + off, r[i].text, l);
		off += l;
	}
	buf[off++] = ']';
	err = hearth_sha256(buf, off, md);
	hearth_free(buf);
	if (!err)
		hearth_hex_encode(md, sizeof(md), out);
	return err;
}

static void
free_canon(struct canon_rule *r, size_t n)
{
	for (size_t i = 0; r && i < n; i++)
		hearth_free(r[i].text);
	hearth_free(r);
}

int
hearth_constraints_hash_of(const cJSON *rules, char out[65])
{
	struct canon_rule *r = NULL;
	const cJSON *it;
	size_t n, i = 0;
	int err;

	if (!cJSON_IsArray(rules) || !out)
		return HEARTH_E_INVALID;
	n = (size_t)cJSON_GetArraySize(rules);
	if (n) {
		r = hearth_calloc(n, sizeof(*r));
		if (!r)
			return -ENOMEM;
	}
	cJSON_ArrayForEach(it, rules)
	{
		if (hearth_json_get_str(it, "id", &r[i].id))
			r[i].id = "";
		r[i].text = hearth_constraints_canonical(it);
		if (!r[i].text) {
			free_canon(r, n);
			return -ENOMEM;
		}
		i++;
	}
	if (n)
		qsort(r, n, sizeof(*r), by_id);
	err = hash_texts(r, n, out);
	free_canon(r, n);
	return err;
}

/* ==== Storing ==== */

/*
 * Apply op data for a replacement: for each rule, the id's length and the
 * text's length (uint32_t each, native order), then the id and the text.
 */
static int
apply_replace(hearth_store *st, MDB_txn *txn, const void *data, size_t len)
{
	MDB_dbi dbi = store__dbi(st, HEARTH_DB_CONSTRAINTS);
	const unsigned char *p = data, *end = p + len;
	int rc = mdb_drop(txn, dbi, 0);

	while (rc == MDB_SUCCESS && p < end) {
		uint32_t kl, vl;
		MDB_val k, v;

		if ((size_t)(end - p) < 2 * sizeof(uint32_t))
			return EINVAL;
		memcpy(&kl, p, sizeof(kl));
		memcpy(&vl, p + sizeof(kl), sizeof(vl));
		p += 2 * sizeof(uint32_t);
		if ((size_t)(end - p) < (size_t)kl + vl)
			return EINVAL;
		k.mv_size = kl;
		k.mv_data = (void *)p;
		v.mv_size = vl;
		v.mv_data = (void *)(p + kl);
		rc = mdb_put(txn, dbi, &k, &v, 0);
		p += (size_t)kl + vl;
	}
	return rc;
}

int
hearth_constraints_replace(hearth_store *st, const cJSON *rules, const char *source, char *why,
                           size_t why_len)
{
	struct canon_rule *r = NULL;
	unsigned char *buf = NULL, *p;
	const cJSON *it;
	size_t n, i = 0, len = 0;
	int err;

	if (!st)
		return HEARTH_E_INVALID;
	err = hearth_constraints_validate(rules, source, why, why_len);
	if (err)
		return err;
	if (store__read_only(st))
		return -EROFS;
	n = (size_t)cJSON_GetArraySize(rules);
	if (n) {
		r = hearth_calloc(n, sizeof(*r));
		if (!r)
			goto no_mem;
	}
	cJSON_ArrayForEach(it, rules)
	{
		hearth_json_get_str(it, "id", &r[i].id);
		r[i].text = hearth_constraints_canonical(it);
		if (!r[i].text)
			goto no_mem;
		len += 2 * sizeof(uint32_t) + strlen(r[i].id) + strlen(r[i].text);
		i++;
	}
	/* An empty set still needs a byte for the op: it drops every rule. */
	buf = hearth_malloc(len ? len : 1);
	if (!buf)
		goto no_mem;
	p = buf;
	for (i = 0; i < n; i++) {
		uint32_t kl = (uint32_t)strlen(r[i].id), vl = (uint32_t)strlen(r[i].text);

		memcpy(p, &kl, sizeof(kl));
		memcpy(p + sizeof(kl), &vl, sizeof(vl));
		p += 2 * sizeof(uint32_t);
		memcpy(p, r[i].id, kl);
		memcpy(p + kl, r[i].text, vl);
		p += kl + vl;
	}
	err = store__queue_apply(st, apply_replace, buf, len);
	hearth_free(buf);
	free_canon(r, n);
	if (err == -ENOMEM)
		goto no_mem_msg;
	return err;

no_mem:
	hearth_free(buf);
	free_canon(r, n);
no_mem_msg:
	if (why && why_len)
		snprintf(why, why_len, "%s%sout of memory storing the rules", source ? source : "",
		         source ? ": " : "");
	return -ENOMEM;
}

int
hearth_constraints_load_file(hearth_store *st, const char *path, char *why, size_t why_len)
{
	char perr[128];
	cJSON *rules = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int err;

	if (why && why_len)
		why[0] = '\0';
	if (!st || !path)
		return HEARTH_E_INVALID;
	f = fopen(path, "rb");
	if (!f) {
		err = -errno;
		if (why && why_len)
			snprintf(why, why_len, "%s: cannot open: %s", path, strerror(-err));
		return err;
	}
	text = hearth_malloc(HEARTH_CONSTRAINTS_FILE_MAX + 1);
	if (!text) {
		err = -ENOMEM;
		goto close_f;
	}
	len = fread(text, 1, HEARTH_CONSTRAINTS_FILE_MAX + 1, f);
	if (ferror(f)) {
		err = -EIO;
		if (why && why_len)
			snprintf(why, why_len, "%s: cannot read it", path);
		goto free_text;
	}
	if (len > HEARTH_CONSTRAINTS_FILE_MAX) {
		err = HEARTH_E_TOO_LARGE;
		if (why && why_len)
			snprintf(why, why_len, "%s: larger than %d bytes: split the rules", path,
			         HEARTH_CONSTRAINTS_FILE_MAX);
		goto free_text;
	}
	err = hearth_json_parse(text, len, &rules, perr, sizeof(perr));
	if (err) {
		if (why && why_len)
			snprintf(why, why_len, "%s: %s", path,
			         err == -ENOMEM ? "out of memory reading the rules" : perr);
		goto free_text;
	}
	err = hearth_constraints_replace(st, rules, path, why, why_len);
	cJSON_Delete(rules);
free_text:
	hearth_free(text);
close_f:
	fclose(f);
	return err;
}

int
hearth_constraints_add(hearth_store *st, const cJSON *rule, const char *source, char *why,
                       size_t why_len)
{
	const char *id;
	char *text;
	int err;

	if (!st)
		return HEARTH_E_INVALID;
	err = hearth_constraint_validate(rule, source, why, why_len);
	if (err)
		return err;
	if (store__read_only(st))
		return -EROFS;
	hearth_json_get_str(rule, "id", &id);
	text = hearth_constraints_canonical(rule);
	if (!text)
		return -ENOMEM;
	err = store__put(st, HEARTH_DB_CONSTRAINTS, id, strlen(id), text, strlen(text));
	hearth_free(text);
	return err;
}

int
hearth_constraints_remove(hearth_store *st, const char *id)
{
	if (!st || !id || !hearth_id_valid_str(id))
		return HEARTH_E_INVALID;
	if (store__read_only(st))
		return -EROFS;
	return store__del(st, HEARTH_DB_CONSTRAINTS, id, strlen(id));
}

/* ==== Reading ==== */

/*
 * Decode one stored rule (key k, value v) into the set being read: its
 * canonical text into r[*n] and, when arr is not NULL, its tree into arr.
 */
static int
take_rule(const MDB_val *k, const MDB_val *v, struct canon_rule **r, size_t *n, size_t *cap,
          cJSON *arr)
{
	cJSON *rule = NULL, *tree;
	const char *id;
	int err;

	err = hearth_json_parse(v->mv_data, v->mv_size, &rule, NULL, 0);
	if (err == -ENOMEM)
		return err;
	if (err || hearth_json_get_str(rule, "id", &id) || strlen(id) != k->mv_size ||
	    memcmp(id, k->mv_data, k->mv_size) != 0) {
		LOG_ERR("constraints",
		        "stored rule %.*s does not decode: load the rules again or restore a "
		        "backup",
		        (int)(k->mv_size > 64 ? 64 : k->mv_size), (const char *)k->mv_data);
		err = HEARTH_E_CORRUPT;
		goto free_rule;
	}
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct canon_rule *nr = hearth_realloc(*r, ncap * sizeof(*nr));

		if (!nr)
			goto no_mem;
		*r = nr;
		*cap = ncap;
	}
	(*r)[*n].id = "";
	(*r)[*n].text = hearth_constraints_canonical(rule);
	if (!(*r)[*n].text)
		goto no_mem;
	(*n)++;
	if (arr) {
		tree = canon_tree(rule);
		if (!tree)
			goto no_mem;
		if (!cJSON_AddItemToArray(arr, tree)) {
			cJSON_Delete(tree);
			goto no_mem;
		}
	}
	cJSON_Delete(rule);
	return 0;

no_mem:
	err = -ENOMEM;
free_rule:
	cJSON_Delete(rule);
	return err;
}

int
hearth_constraints_get(hearth_store *st, cJSON **rules, char hash[65])
{
	struct canon_rule *r = NULL;
	size_t n = 0, cap = 0;
	cJSON *arr = NULL;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	int err = 0, rc;

	if (!st || (!rules && !hash))
		return HEARTH_E_INVALID;
	if (rules) {
		*rules = NULL;
		arr = cJSON_CreateArray();
		if (!arr)
			return -ENOMEM;
	}
	if (store__has_db(st, HEARTH_DB_CONSTRAINTS)) {
		err = store__read_txn(st, &txn);
		if (err)
			goto free_all;
		rc = mdb_cursor_open(txn, store__dbi(st, HEARTH_DB_CONSTRAINTS), &cur);
		if (rc == MDB_SUCCESS) {
			/* In id order: the LMDB key order is the canonical order. */
			for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && !err;
			     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
				err = take_rule(&k, &v, &r, &n, &cap, arr);
			mdb_cursor_close(cur);
		}
		mdb_txn_abort(txn);
		if (!err && rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
			err = store__map_err(rc);
		if (err)
			goto free_all;
	}
	if (hash) {
		err = hash_texts(r, n, hash);
		if (err)
			goto free_all;
	}
	free_canon(r, n);
	if (rules)
		*rules = arr;
	return 0;

free_all:
	free_canon(r, n);
	cJSON_Delete(arr);
	return err;
}

int
hearth_constraints_policy_hash(hearth_store *st, char out[65])
{
	if (!out)
		return HEARTH_E_INVALID;
	return hearth_constraints_get(st, NULL, out);
}
