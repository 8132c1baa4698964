/*
 * consents.c - consents and standing pre-approvals by scope in the
 * `consents` database. Grants, revocations and standing changes are apply
 * ops that read the scope's record inside the flush transaction and write it
 * back, so changes queued in one loop turn apply in order and none is lost;
 * a stored record that does not decode is started afresh (with a warning)
 * rather than blocking the flush. The module keeps the record's form (see
 * consents.h) and answers the one question the planner asks of it (is this
 * allowed now?); deciding what needs consent is not its business.
 */
#include "memory/consents.h"
#include "memory/store_internal.h"
#include "memory/audit.h"
#include "memory/semantic.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <string.h>

#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/id.h"
#include "platform/json.h"
#include "platform/log.h"

enum consent_op {
	CONSENT_GRANT,
	CONSENT_STANDING,
	CONSENT_REVOKE,
};

/* Apply op data: this header, then scope, who and what, each NUL-terminated ("" for none). */
struct consent_hdr {
	int64_t at_ms;
	int64_t expires_ms;
	uint8_t op;
	uint8_t standing;
};

/* The op decoded. */
struct consent_args {
	struct consent_hdr h;
	const char *scope;
	const char *who;
	const char *what;
};

static bool
scope_valid(const char *scope)
{
	size_t n;

	if (!scope)
		return false;
	n = strlen(scope);
	if (!n || n > HEARTH_CONSENT_SCOPE_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)scope; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

static bool
decode(const void *data, size_t len, struct consent_args *a)
{
	const char *p, *end = (const char *)data + len;
	const char **out[3] = {&a->scope, &a->who, &a->what};

	if (len < sizeof(a->h) + 3 || end[-1] != '\0')
		return false;
	memcpy(&a->h, data, sizeof(a->h));
	p = (const char *)data + sizeof(a->h);
	for (int i = 0; i < 3; i++) {
		const char *z = p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;

		if (!z)
			return false;
		*out[i] = p;
		p = z + 1;
	}
	return true;
}

/* ==== Records (inside the flush transaction) ==== */

/* The grants array of rec (made when missing or of another type); NULL on ENOMEM. */
static cJSON *
grants_of(cJSON *rec)
{
	cJSON *g = cJSON_GetObjectItemCaseSensitive(rec, "grants");

	if (cJSON_IsArray(g))
		return g;
	cJSON_DeleteItemFromObjectCaseSensitive(rec, "grants");
	return cJSON_AddArrayToObject(rec, "grants");
}

static bool
set_item(cJSON *obj, const char *key, cJSON *item)
{
	if (!item)
		return false;
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	if (!cJSON_AddItemToObject(obj, key, item)) {
		cJSON_Delete(item);
		return false;
	}
	return true;
}

/* Remove the grants matching who and what ("" matches any). */
static void
drop_grants(cJSON *grants, const char *who, const char *what)
{
	cJSON *g = grants->child, *next;
	const char *s;

	for (; g; g = next) {
		next = g->next;
		if (*who && (hearth_json_get_str(g, "who", &s) || strcmp(s, who)))
			continue;
		if (*what && (hearth_json_get_str(g, "what", &s) || strcmp(s, what)))
			continue;
		cJSON_Delete(cJSON_DetachItemViaPointer(grants, g));
	}
}

/* Apply a grant or a standing change to rec. false on ENOMEM. */
static bool
change(cJSON *rec, const struct consent_args *a)
{
	cJSON *grants = grants_of(rec), *g;
	const char *by = a->who;

	if (!grants)
		return false;
	if (a->h.op == CONSENT_GRANT) {
		drop_grants(grants, a->who, a->what);
		while (cJSON_GetArraySize(grants) >= HEARTH_CONSENT_GRANTS_MAX)
			cJSON_DeleteItemFromArray(grants, 0);
		g = cJSON_CreateObject();
		if (!g || !cJSON_AddItemToArray(grants, g)) {
			cJSON_Delete(g);
			return false;
		}
		if (!cJSON_AddStringToObject(g, "who", a->who) ||
		    !cJSON_AddStringToObject(g, "what", a->what) ||
		    !cJSON_AddNumberToObject(g, "at", (double)a->h.at_ms) ||
		    (a->h.expires_ms > 0 &&
		     !cJSON_AddNumberToObject(g, "expires", (double)a->h.expires_ms)))
			return false;
		if (!cJSON_HasObjectItem(rec, "standing") &&
		    !cJSON_AddBoolToObject(rec, "standing", false))
			return false;
	} else if (!set_item(rec, "standing", cJSON_CreateBool(a->h.standing))) {
		return false;
	}
	return set_item(rec, "by", cJSON_CreateString(by)) &&
	       set_item(rec, "at", cJSON_CreateNumber((double)a->h.at_ms));
}

static int
apply_consent(hearth_store *st, MDB_txn *txn, const void *data, size_t len)
{
	MDB_dbi dbi = store__dbi(st, HEARTH_DB_CONSENTS);
	struct consent_args a;
	cJSON *rec = NULL, *grants;
	MDB_val k, v;
	char *text;
	bool standing;
	int err, rc;

	if (!decode(data, len, &a))
		return EINVAL;
	k.mv_size = strlen(a.scope);
	k.mv_data = (void *)a.scope;
	if (a.h.op == CONSENT_REVOKE && !*a.who && !*a.what) {
		rc = mdb_del(txn, dbi, &k, NULL);
		return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
	}
	rc = mdb_get(txn, dbi, &k, &v);
	if (rc == MDB_SUCCESS) {
		err = hearth_json_parse(v.mv_data, v.mv_size, &rec, NULL, 0);
		if (err == -ENOMEM)
			return ENOMEM;
		if (err || !cJSON_IsObject(rec)) {
			LOG_WARN("consents",
			         "record of scope %s does not decode: starting it afresh", a.scope);
			cJSON_Delete(rec);
			rec = NULL;
		}
	} else if (rc != MDB_NOTFOUND) {
		return rc;
	}
	if (!rec && a.h.op == CONSENT_REVOKE)
		return MDB_SUCCESS; /* nothing to revoke */
	if (!rec)
		rec = cJSON_CreateObject();
	if (!rec)
		return ENOMEM;

	if (a.h.op == CONSENT_REVOKE) {
		grants = grants_of(rec);
		if (!grants)
			goto no_mem;
		drop_grants(grants, a.who, a.what);
		if (hearth_json_get_bool(rec, "standing", &standing))
			standing = false;
		if (!grants->child && !standing) {
			cJSON_Delete(rec);
			rc = mdb_del(txn, dbi, &k, NULL);
			return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
		}
	} else if (!change(rec, &a)) {
		goto no_mem;
	}
	text = hearth_json_print(rec);
	cJSON_Delete(rec);
	if (!text)
		return ENOMEM;
	v.mv_size = strlen(text);
	v.mv_data = text;
	rc = mdb_put(txn, dbi, &k, &v, 0);
	hearth_free(text);
	return rc;

no_mem:
	cJSON_Delete(rec);
	return ENOMEM;
}

/* ==== Queueing ==== */

static int
queue_op(hearth_store *st, const struct consent_hdr *h, const char *scope, const char *who,
         const char *what)
{
	size_t ls = strlen(scope) + 1, lw = who ? strlen(who) + 1 : 1;
	size_t lt = what ? strlen(what) + 1 : 1;
	unsigned char buf[sizeof(*h) + HEARTH_CONSENT_SCOPE_MAX + 2 * HEARTH_ID_LEN_MAX + 3];
	unsigned char *p = buf;

	if (store__read_only(st))
		return -EROFS;
	memcpy(p, h, sizeof(*h));
	p += sizeof(*h);
	memcpy(p, scope, ls);
	p += ls;
	memcpy(p, who ? who : "", lw);
	p += lw;
	memcpy(p, what ? what : "", lt);
	p += lt;
	return store__queue_apply(st, apply_consent, buf, (size_t)(p - buf));
}

int
hearth_consent_grant(hearth_store *st, const char *scope, const char *who, const char *what,
                     int64_t at_ms, int64_t expires_ms)
{
	struct consent_hdr h = {.op = CONSENT_GRANT, .at_ms = at_ms, .expires_ms = expires_ms};

	if (!st || !scope_valid(scope) || !who || !hearth_id_valid_str(who) || !what ||
	    !hearth_id_valid_str(what) || at_ms < 0 || expires_ms < 0 ||
	    (expires_ms && expires_ms <= at_ms))
		return HEARTH_E_INVALID;
	return queue_op(st, &h, scope, who, what);
}

int
hearth_consent_set_standing(hearth_store *st, const char *scope, bool standing, const char *by,
                            int64_t at_ms)
{
	struct consent_hdr h = {.op = CONSENT_STANDING, .at_ms = at_ms, .standing = standing};

	if (!st || !scope_valid(scope) || !by || !hearth_id_valid_str(by) || at_ms < 0)
		return HEARTH_E_INVALID;
	return queue_op(st, &h, scope, by, NULL);
}

int
hearth_consent_revoke(hearth_store *st, const char *scope, const char *who, const char *what)
{
	struct consent_hdr h = {.op = CONSENT_REVOKE};

	if (!st || !scope_valid(scope) || (who && !hearth_id_valid_str(who)) ||
	    (what && !hearth_id_valid_str(what)))
		return HEARTH_E_INVALID;
	return queue_op(st, &h, scope, who, what);
}

/* ==== Reads ==== */

int
hearth_consent_get(hearth_store *st, const char *scope, cJSON **out)
{
	MDB_val k, v;
	MDB_txn *txn;
	int err, rc;

	if (!st || !out || !scope_valid(scope))
		return HEARTH_E_INVALID;
	*out = NULL;
	if (!store__has_db(st, HEARTH_DB_CONSENTS))
		return HEARTH_E_NOT_FOUND;
	err = store__read_txn(st, &txn);
	if (err)
		return err;
	k.mv_size = strlen(scope);
	k.mv_data = (void *)scope;
	rc = mdb_get(txn, store__dbi(st, HEARTH_DB_CONSENTS), &k, &v);
	if (rc == MDB_SUCCESS) {
		err = hearth_json_parse(v.mv_data, v.mv_size, out, NULL, 0);
		if (err == HEARTH_E_BAD_JSON || (!err && !cJSON_IsObject(*out)))
			err = HEARTH_E_CORRUPT;
		if (err) {
			cJSON_Delete(*out);
			*out = NULL;
		}
	} else {
		err = store__map_err(rc);
	}
	mdb_txn_abort(txn);
	return err;
}

int
hearth_consent_allowed(hearth_store *st, const char *scope, const char *what, int64_t now_ms)
{
	const cJSON *g;
	const char *s;
	cJSON *rec;
	double exp;
	bool standing;
	int err, yes = 0;

	err = hearth_consent_get(st, scope, &rec);
	if (err == HEARTH_E_NOT_FOUND)
		return 0;
	if (err)
		return err;
	if (!hearth_json_get_bool(rec, "standing", &standing) && standing) {
		cJSON_Delete(rec);
		return 1;
	}
	cJSON_ArrayForEach(g, hearth_json_arr(rec, "grants"))
	{
		if (what && (hearth_json_get_str(g, "what", &s) || strcmp(s, what)))
			continue;
		if (!hearth_json_get_num(g, "expires", &exp) && exp <= (double)now_ms)
			continue;
		yes = 1;
		break;
	}
	cJSON_Delete(rec);
	return yes;
}

int
hearth_consents_each(hearth_store *st, const char *prefix, hearth_store_visit_fn fn, void *ud)
{
	if (prefix && strlen(prefix) > HEARTH_CONSENT_SCOPE_MAX)
		return HEARTH_E_INVALID;
	return store__each(st, HEARTH_DB_CONSENTS, prefix && prefix[0] ? prefix : NULL, false,
	                   HEARTH_CONSENT_SCOPE_MAX, fn, ud);
}

/* ==== The owner's standing consents (hearthctl consent) ==== */

static bool
scope_ok(const char *scope)
{
	size_t n = scope ? strlen(scope) : 0;

	if (n == 0 || n > HEARTH_CONSENT_SCOPE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (scope[i] <= ' ' || scope[i] > '~')
			return false;
	return true;
}

int
hearth_consent_owner(hearth_store *st, const char *scope, bool grant, int64_t now_ms)
{
	cJSON *d;
	char *text;
	int rc;

	if (!scope_ok(scope))
		return HEARTH_E_INVALID;
	if (grant)
		rc = hearth_consent_set_standing(st, scope, true, "owner", now_ms);
	else
		rc = hearth_consent_revoke(st, scope, NULL, NULL);
	/* Revoking forgets the approvals counted towards a learned one, so
	 * the question comes back (approval.h). */
	if (!rc && !grant)
		rc = hearth_semantic_put_json(st, "approvals", scope, NULL);
	if (rc)
		return rc;
	d = cJSON_CreateObject();
	if (!d || !cJSON_AddStringToObject(d, "scope", scope) ||
	    !cJSON_AddBoolToObject(d, "standing", grant) ||
	    !cJSON_AddStringToObject(d, "by", "owner")) {
		cJSON_Delete(d);
		return -ENOMEM;
	}
	text = hearth_json_print(d);
	cJSON_Delete(d);
	rc = text ? hearth_audit_append(st, now_ms, grant ? "consent.granted" : "consent.revoked",
	                                scope, text)
	          : -ENOMEM;
	hearth_free(text);
	return rc;
}

static int
list_one(void *ud, const char *scope, const char *json, size_t len)
{
	struct {
		hearth_store *st;
		cJSON *arr;
	} *l = ud;
	cJSON *rec, *o;

	if (hearth_json_parse(json, len, &rec, NULL, 0))
		return 0;
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "scope", scope)) {
		cJSON_Delete(o);
		cJSON_Delete(rec);
		return -ENOMEM;
	}
	cJSON_AddBoolToObject(o, "standing",
	                      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "standing")));
	if (cJSON_GetObjectItemCaseSensitive(rec, "by"))
		cJSON_AddItemToObject(
		        o, "by", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(rec, "by"), 1));
	if (cJSON_GetObjectItemCaseSensitive(rec, "at"))
		cJSON_AddItemToObject(
		        o, "at", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(rec, "at"), 1));
	cJSON_AddNumberToObject(
	        o, "grants", cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(rec, "grants")));
	cJSON_Delete(rec);
	cJSON_AddItemToArray(l->arr, o);
	return 0;
}

static int
list_counts(void *ud, const char *scope, const char *json, size_t len)
{
	struct {
		hearth_store *st;
		cJSON *arr;
	} *l = ud;
	cJSON *rec, *o = NULL, *v, *e;

	if (hearth_json_parse(json, len, &rec, NULL, 0))
		return 0;
	v = cJSON_GetObjectItemCaseSensitive(rec, "value");
	cJSON_ArrayForEach(e, l->arr)
	{
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "scope");

		if (cJSON_IsString(s) && !strcmp(s->valuestring, scope))
			o = e;
	}
	if (!o) {
		o = cJSON_CreateObject();
		if (!o) {
			cJSON_Delete(rec);
			return -ENOMEM;
		}
		cJSON_AddStringToObject(o, "scope", scope);
		cJSON_AddBoolToObject(o, "standing", false);
		cJSON_AddItemToArray(l->arr, o);
	}
	cJSON_AddNumberToObject(
	        o, "approved",
	        cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(v, "approved"))
	                ? cJSON_GetObjectItemCaseSensitive(v, "approved")->valuedouble
	                : 0);
	cJSON_AddNumberToObject(o, "denied",
	                        cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(v, "denied"))
	                                ? cJSON_GetObjectItemCaseSensitive(v, "denied")->valuedouble
	                                : 0);
	cJSON_Delete(rec);
	return 0;
}

int
hearth_consents_list(hearth_store *st, cJSON **out)
{
	struct {
		hearth_store *st;
		cJSON *arr;
	} l = {st, cJSON_CreateArray()};
	int rc;

	*out = NULL;
	if (!l.arr)
		return -ENOMEM;
	rc = hearth_consents_each(st, NULL, list_one, &l);
	if (rc >= 0)
		rc = hearth_semantic_each(st, "approvals", list_counts, &l);
	if (rc < 0) {
		cJSON_Delete(l.arr);
		return rc;
	}
	*out = l.arr;
	return 0;
}
