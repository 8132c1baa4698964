/*
 * plan.c - plan lifetime and the plan's JSON forms. The forms are the wire
 * protocol: keep field names as DESIGN.md section 4 gives them.
 */
#include "agents/plan.h"

#include "platform/alloc.h"
#include "platform/id.h"
#include "platform/json.h"
#include "recipes/capability.h"

#include <stdio.h>
#include <string.h>

struct hearth_plan *
hearth_plan_new(int nsteps)
{
	struct hearth_plan *p = hearth_calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (nsteps > 0) {
		p->steps = hearth_calloc((size_t)nsteps, sizeof(*p->steps));
		if (!p->steps) {
			hearth_free(p);
			return NULL;
		}
	}
	p->nsteps = nsteps;
	for (int i = 0; i < nsteps; i++)
		hearth_step_init(&p->steps[i]);
	return p;
}

void
hearth_step_init(struct hearth_step *st)
{
	st->rebound_to = -1;
	st->ms_dispatched = st->ms_sent = st->ms_confirmed = -1;
	st->ms_failed = st->ms_rebound = st->ms_compensated = -1;
}

void
hearth_plan_free(struct hearth_plan *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nsteps; i++) {
		cJSON_Delete(p->steps[i].args);
		cJSON_Delete(p->steps[i].prev);
		hearth_free(p->steps[i].note);
	}
	hearth_free(p->steps);
	cJSON_Delete(p->slots);
	hearth_free(p->rationale);
	cJSON_Delete(p->critique);
	cJSON_Delete(p->alternatives);
	cJSON_Delete(p->score);
	hearth_free(p->reason);
	hearth_reply_clear(&p->reply);
	hearth_free(p);
}

const char *
hearth_risk_name(enum hearth_risk r)
{
	return r == HEARTH_RISK_HIGH ? "high" : r == HEARTH_RISK_MEDIUM ? "medium" : "low";
}

const char *
hearth_plan_state_name(enum hearth_plan_state s)
{
	static const char *const names[] = {
	        "previewed", "awaiting_approval", "queued", "running", "compensating",
	        "completed", "compensated",       "failed", "denied",  "expired",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

const char *
hearth_step_state_name(enum hearth_step_state s)
{
	static const char *const names[] = {
	        "pending", "dispatched", "confirmed", "skipped", "failed", "rebound", "compensated",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

bool
hearth_plan_state_terminal(enum hearth_plan_state s)
{
	return s >= HEARTH_PLAN_COMPLETED;
}

/* The step's timeline as {"dispatched": ms, ...}: only what happened. */
static cJSON *
timeline_json(const struct hearth_step *st)
{
	const struct {
		const char *name;
		int64_t ms;
	} ev[] = {
	        {"dispatched", st->ms_dispatched}, {"sent", st->ms_sent},
	        {"confirmed", st->ms_confirmed},   {"failed", st->ms_failed},
	        {"rebound", st->ms_rebound},       {"compensated", st->ms_compensated},
	};
	cJSON *o = cJSON_CreateObject();

	for (size_t i = 0; o && i < sizeof(ev) / sizeof(ev[0]); i++)
		if (ev[i].ms >= 0)
			cJSON_AddNumberToObject(o, ev[i].name, (double)ev[i].ms);
	return o;
}

/* Read a timeline back (journal form); missing entries stay -1. */
static void
timeline_from(struct hearth_step *st, const cJSON *tl)
{
	struct {
		const char *name;
		int64_t *ms;
	} ev[] = {
	        {"dispatched", &st->ms_dispatched}, {"sent", &st->ms_sent},
	        {"confirmed", &st->ms_confirmed},   {"failed", &st->ms_failed},
	        {"rebound", &st->ms_rebound},       {"compensated", &st->ms_compensated},
	};

	for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
		double v;

		if (!hearth_json_get_num(tl, ev[i].name, &v) && v >= 0 && v < 1e15)
			*ev[i].ms = (int64_t)v;
	}
}

cJSON *
hearth_plan_steps_json(const struct hearth_plan *p)
{
	cJSON *arr = cJSON_CreateArray();

	for (int i = 0; arr && i < p->nsteps; i++) {
		const struct hearth_step *st = &p->steps[i];
		cJSON *o = cJSON_CreateObject();

		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			return NULL;
		}
		cJSON_AddStringToObject(o, "id", st->id);
		cJSON_AddStringToObject(o, "device", st->device);
		cJSON_AddStringToObject(o, "capability", hearth_capability_at(st->cap)->name);
		cJSON_AddItemToObject(o, "args", cJSON_Duplicate(st->args, 1));
		cJSON_AddStringToObject(o, "state", hearth_step_state_name(st->state));
		if (st->note)
			cJSON_AddStringToObject(o, "note", st->note);
		if (st->rebound_to >= 0 && st->rebound_to < p->nsteps)
			cJSON_AddStringToObject(o, "rebound_to", p->steps[st->rebound_to].device);
		if (st->ms_dispatched >= 0 || st->ms_rebound >= 0)
			cJSON_AddItemToObject(o, "timeline", timeline_json(st));
		if (st->after) {
			cJSON *af = cJSON_AddArrayToObject(o, "after");
			char ref[2 * HEARTH_ID_MAX + 2];

			for (int k = 0; af && k < p->nsteps && k < 64; k++) {
				if (!(st->after & (UINT64_C(1) << k)))
					continue;
				snprintf(ref, sizeof(ref), "%s@%s", p->steps[k].id,
				         p->steps[k].device);
				cJSON_AddItemToArray(af, cJSON_CreateString(ref));
			}
		}
	}
	return arr;
}

cJSON *
hearth_plan_reply_json(const struct hearth_plan *p)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "id", p->intent_id);
	cJSON_AddStringToObject(o, "intent", p->intent);
	cJSON_AddItemToObject(o, "slots",
	                      p->slots ? cJSON_Duplicate(p->slots, 1) : cJSON_CreateObject());
	cJSON_AddStringToObject(o, "recipe", p->recipe);
	cJSON_AddStringToObject(o, "plan_id", p->id);
	cJSON_AddStringToObject(o, "state", hearth_plan_state_name(p->state));
	cJSON_AddStringToObject(o, "rationale", p->rationale ? p->rationale : "");
	cJSON_AddStringToObject(o, "risk", hearth_risk_name(p->risk));
	if (p->needs_approval || p->preapproved) {
		cJSON *a = cJSON_AddObjectToObject(o, "approval");

		if (a) {
			cJSON_AddBoolToObject(a, "preapproved", p->preapproved);
			if (p->approval_scope[0])
				cJSON_AddStringToObject(a, "scope", p->approval_scope);
			if (p->approval_expires)
				cJSON_AddNumberToObject(a, "expires_at",
				                        (double)p->approval_expires);
		}
	}
	if (p->policy_hash[0])
		cJSON_AddStringToObject(o, "policy_hash", p->policy_hash);
	cJSON_AddItemToObject(o, "steps", hearth_plan_steps_json(p));
	cJSON_AddItemToObject(o, "critique",
	                      p->critique ? cJSON_Duplicate(p->critique, 1) : cJSON_CreateArray());
	cJSON_AddItemToObject(o, "alternatives",
	                      p->alternatives ? cJSON_Duplicate(p->alternatives, 1)
	                                      : cJSON_CreateArray());
	cJSON_AddItemToObject(o, "score",
	                      p->score ? cJSON_Duplicate(p->score, 1) : cJSON_CreateObject());
	return o;
}

cJSON *
hearth_plan_event_json(const struct hearth_plan *p, int64_t wall_ms)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "plan_id", p->id);
	cJSON_AddStringToObject(o, "intent_id", p->intent_id);
	cJSON_AddStringToObject(o, "intent", p->intent);
	cJSON_AddStringToObject(o, "state", hearth_plan_state_name(p->state));
	if (p->reason)
		cJSON_AddStringToObject(o, "reason", p->reason);
	cJSON_AddItemToObject(o, "steps", hearth_plan_steps_json(p));
	cJSON_AddNumberToObject(o, "ts", (double)wall_ms);
	return o;
}

cJSON *
hearth_plan_episode_json(const struct hearth_plan *p, const hearth_now *now)
{
	cJSON *o = cJSON_CreateObject(), *lat;

	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "v", 1);
	cJSON_AddStringToObject(o, "id", p->id);
	cJSON_AddStringToObject(o, "intent_id", p->intent_id);
	cJSON_AddStringToObject(o, "intent", p->intent);
	cJSON_AddStringToObject(o, "recipe", p->recipe);
	cJSON_AddStringToObject(o, "recipe_version", p->recipe_version);
	if (p->policy_hash[0])
		cJSON_AddStringToObject(o, "policy_hash", p->policy_hash);
	cJSON_AddItemToObject(o, "slots",
	                      p->slots ? cJSON_Duplicate(p->slots, 1) : cJSON_CreateObject());
	if (p->source[0])
		cJSON_AddStringToObject(o, "source", p->source);
	if (p->user[0])
		cJSON_AddStringToObject(o, "user", p->user);
	cJSON_AddStringToObject(o, "outcome", hearth_plan_state_name(p->state));
	if (p->reason)
		cJSON_AddStringToObject(o, "reason", p->reason);
	cJSON_AddNumberToObject(o, "ts", (double)p->wall_received);
	cJSON_AddNumberToObject(o, "ended_at", (double)now->wall_ms);
	lat = cJSON_AddObjectToObject(o, "latency_ms");
	if (lat) {
		if (p->t_first_command)
			cJSON_AddNumberToObject(lat, "first_command",
			                        (double)(p->t_first_command - p->t_received));
		cJSON_AddNumberToObject(lat, "total", (double)(now->mono_ms - p->t_received));
	}
	cJSON_AddItemToObject(o, "steps", hearth_plan_steps_json(p));
	cJSON_AddStringToObject(o, "rationale", p->rationale ? p->rationale : "");
	if (p->critique)
		cJSON_AddItemToObject(o, "critique", cJSON_Duplicate(p->critique, 1));
	if (p->score)
		cJSON_AddItemToObject(o, "score", cJSON_Duplicate(p->score, 1));
	return o;
}

/* ==== Journal form ==== */

static const char *
nz(const char *s)
{
	return s && s[0] ? s : NULL;
}

cJSON *
hearth_plan_journal_json(const struct hearth_plan *p)
{
	cJSON *o = cJSON_CreateObject(), *steps;

	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "v", 1);
	cJSON_AddStringToObject(o, "id", p->id);
	cJSON_AddStringToObject(o, "intent_id", p->intent_id);
	cJSON_AddStringToObject(o, "intent", p->intent);
	cJSON_AddStringToObject(o, "recipe", p->recipe);
	cJSON_AddStringToObject(o, "recipe_version", p->recipe_version);
	if (p->policy_hash[0])
		cJSON_AddStringToObject(o, "policy_hash", p->policy_hash);
	if (nz(p->source))
		cJSON_AddStringToObject(o, "source", p->source);
	if (nz(p->user))
		cJSON_AddStringToObject(o, "user", p->user);
	cJSON_AddItemToObject(o, "slots",
	                      p->slots ? cJSON_Duplicate(p->slots, 1) : cJSON_CreateObject());
	cJSON_AddStringToObject(o, "state", hearth_plan_state_name(p->state));
	cJSON_AddStringToObject(o, "rationale", p->rationale ? p->rationale : "");
	if (p->critique)
		cJSON_AddItemToObject(o, "critique", cJSON_Duplicate(p->critique, 1));
	if (p->score)
		cJSON_AddItemToObject(o, "score", cJSON_Duplicate(p->score, 1));
	if (p->reason)
		cJSON_AddStringToObject(o, "reason", p->reason);
	cJSON_AddNumberToObject(o, "ts", (double)p->wall_received);
	cJSON_AddBoolToObject(o, "commanded", p->t_first_command != 0);
	cJSON_AddStringToObject(o, "risk", hearth_risk_name(p->risk));
	if (p->needs_approval || p->preapproved) {
		cJSON *a = cJSON_AddObjectToObject(o, "approval");

		if (a) {
			cJSON_AddBoolToObject(a, "needed", p->needs_approval);
			cJSON_AddBoolToObject(a, "preapproved", p->preapproved);
			cJSON_AddBoolToObject(a, "replied", p->replied);
			if (p->approval_scope[0])
				cJSON_AddStringToObject(a, "scope", p->approval_scope);
			if (p->nonce[0])
				cJSON_AddStringToObject(a, "nonce", p->nonce);
			if (p->approval_expires)
				cJSON_AddNumberToObject(a, "expires_at",
				                        (double)p->approval_expires);
			if (p->approver[0])
				cJSON_AddStringToObject(a, "approver", p->approver);
		}
	}
	steps = cJSON_AddArrayToObject(o, "steps");
	for (int i = 0; steps && i < p->nsteps; i++) {
		const struct hearth_step *st = &p->steps[i];
		cJSON *j = cJSON_CreateObject();

		if (!j || !cJSON_AddItemToArray(steps, j)) {
			cJSON_Delete(j);
			cJSON_Delete(o);
			return NULL;
		}
		cJSON_AddStringToObject(j, "id", st->id);
		cJSON_AddStringToObject(j, "device", st->device);
		cJSON_AddStringToObject(j, "capability", hearth_capability_at(st->cap)->name);
		cJSON_AddItemToObject(j, "args", cJSON_Duplicate(st->args, 1));
		if (st->prev)
			cJSON_AddItemToObject(j, "prev", cJSON_Duplicate(st->prev, 1));
		cJSON_AddStringToObject(j, "state", hearth_step_state_name(st->state));
		if (st->note)
			cJSON_AddStringToObject(j, "note", st->note);
		cJSON_AddBoolToObject(j, "optimistic", st->optimistic);
		cJSON_AddBoolToObject(j, "compensate", st->compensate);
		cJSON_AddBoolToObject(j, "undoing", st->undoing);
		cJSON_AddNumberToObject(j, "attempts", st->attempts);
		cJSON_AddNumberToObject(j, "timeout_ms", st->timeout_ms);
		if (st->rebound_to >= 0)
			cJSON_AddNumberToObject(j, "rebound_to", st->rebound_to);
		cJSON_AddItemToObject(j, "timeline", timeline_json(st));
		if (st->after) {
			cJSON *af = cJSON_AddArrayToObject(j, "after");

			for (int k = 0; af && k < p->nsteps && k < 64; k++)
				if (st->after & (UINT64_C(1) << k))
					cJSON_AddItemToArray(af, cJSON_CreateNumber(k));
		}
	}
	return o;
}

static int
state_from(const char *name, const char *(*namer)(int), int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(namer(i), name))
			return i;
	return -1;
}

static const char *
plan_namer(int i)
{
	return hearth_plan_state_name((enum hearth_plan_state)i);
}

static const char *
step_namer(int i)
{
	return hearth_step_state_name((enum hearth_step_state)i);
}

/* Copy a string field into a fixed buffer; false when missing or too long. */
static bool
take_str(const cJSON *j, const char *key, char *dst, size_t len, bool required)
{
	const char *s;

	if (hearth_json_get_str(j, key, &s))
		return !required;
	if (strlen(s) >= len)
		return false;
	memcpy(dst, s, strlen(s) + 1);
	return true;
}

struct hearth_plan *
hearth_plan_from_journal(const cJSON *j, char *why, size_t wl)
{
	const cJSON *steps = cJSON_GetObjectItemCaseSensitive(j, "steps"), *sj, *a;
	struct hearth_plan *p;
	const char *s;
	double num;
	bool b;
	int i = 0, n;

	if (!cJSON_IsObject(j) || !cJSON_IsArray(steps)) {
		snprintf(why, wl, "a journal entry is an object with steps");
		return NULL;
	}
	n = cJSON_GetArraySize(steps);
	p = hearth_plan_new(n);
	if (!p) {
		snprintf(why, wl, "out of memory");
		return NULL;
	}
	if (!take_str(j, "id", p->id, sizeof(p->id), true) || !hearth_id_valid_str(p->id) ||
	    !take_str(j, "intent_id", p->intent_id, sizeof(p->intent_id), true) ||
	    !take_str(j, "intent", p->intent, sizeof(p->intent), true) ||
	    !take_str(j, "recipe", p->recipe, sizeof(p->recipe), true) ||
	    !take_str(j, "recipe_version", p->recipe_version, sizeof(p->recipe_version), false) ||
	    !take_str(j, "policy_hash", p->policy_hash, sizeof(p->policy_hash), false) ||
	    !take_str(j, "source", p->source, sizeof(p->source), false) ||
	    !take_str(j, "user", p->user, sizeof(p->user), false)) {
		snprintf(why, wl, "missing or oversized id, intent_id, intent or recipe");
		goto fail;
	}
	if (hearth_json_get_str(j, "state", &s) ||
	    (n = state_from(s, plan_namer, HEARTH_PLAN_EXPIRED + 1)) < 0) {
		snprintf(why, wl, "plan %s: unknown state", p->id);
		goto fail;
	}
	p->state = (enum hearth_plan_state)n;
	p->slots = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(j, "slots"), 1);
	if (!hearth_json_get_str(j, "rationale", &s))
		p->rationale = hearth_strdup(s);
	if (!hearth_json_get_str(j, "reason", &s))
		p->reason = hearth_strdup(s);
	if (!hearth_json_get_str(j, "risk", &s))
		p->risk = !strcmp(s, "high")     ? HEARTH_RISK_HIGH
		          : !strcmp(s, "medium") ? HEARTH_RISK_MEDIUM
		                                 : HEARTH_RISK_LOW;
	{
		const cJSON *ap = cJSON_GetObjectItemCaseSensitive(j, "approval");

		if (cJSON_IsObject(ap)) {
			p->needs_approval =
			        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ap, "needed"));
			p->preapproved =
			        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ap, "preapproved"));
			p->replied = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ap, "replied"));
			take_str(ap, "scope", p->approval_scope, sizeof(p->approval_scope), false);
			take_str(ap, "nonce", p->nonce, sizeof(p->nonce), false);
			take_str(ap, "approver", p->approver, sizeof(p->approver), false);
			if (!hearth_json_get_num(ap, "expires_at", &num))
				p->approval_expires = (int64_t)num;
		}
	}
	if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "critique")))
		p->critique = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(j, "critique"), 1);
	if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "score")))
		p->score = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(j, "score"), 1);
	if (!hearth_json_get_num(j, "ts", &num))
		p->wall_received = (int64_t)num;
	cJSON_ArrayForEach(sj, steps)
	{
		struct hearth_step *st = &p->steps[i++];
		long long v;

		if (!take_str(sj, "id", st->id, sizeof(st->id), true) ||
		    !take_str(sj, "device", st->device, sizeof(st->device), true) ||
		    hearth_json_get_str(sj, "capability", &s) ||
		    (st->cap = hearth_capability_find(s)) < 0 ||
		    !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(sj, "args")) ||
		    hearth_json_get_str(sj, "state", &s) ||
		    (n = state_from(s, step_namer, HEARTH_STEP_COMPENSATED + 1)) < 0) {
			snprintf(why, wl, "plan %s: step %d is not valid", p->id, i - 1);
			goto fail;
		}
		st->state = (enum hearth_step_state)n;
		st->args = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(sj, "args"), 1);
		if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(sj, "prev")))
			st->prev = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(sj, "prev"), 1);
		if (!hearth_json_get_str(sj, "note", &s))
			st->note = hearth_strdup(s);
		if (!hearth_json_get_bool(sj, "optimistic", &b))
			st->optimistic = b;
		st->compensate = true;
		if (!hearth_json_get_bool(sj, "compensate", &b))
			st->compensate = b;
		if (!hearth_json_get_bool(sj, "undoing", &b))
			st->undoing = b;
		if (!hearth_json_get_int(sj, "attempts", &v) && v >= 0 && v < 1000)
			st->attempts = (int)v;
		st->timeout_ms = 10000;
		if (!hearth_json_get_int(sj, "timeout_ms", &v) && v >= 10 && v <= 3600000)
			st->timeout_ms = (int)v;
		/* a later step: the replacement is appended when a step is rebound */
		if (!hearth_json_get_int(sj, "rebound_to", &v)) {
			if (v < i || v >= cJSON_GetArraySize(steps)) {
				snprintf(why, wl, "plan %s: step %d is rebound to no later step",
				         p->id, i - 1);
				goto fail;
			}
			st->rebound_to = (int)v;
		}
		timeline_from(st, cJSON_GetObjectItemCaseSensitive(sj, "timeline"));
		/* only earlier steps: a journal cannot make a step wait forever */
		cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(sj, "after"))
		{
			if (!cJSON_IsNumber(a) || a->valuedouble < 0 || a->valuedouble >= i - 1 ||
			    a->valuedouble >= 64 || a->valuedouble != (int)a->valuedouble) {
				snprintf(why, wl, "plan %s: step %d waits for no earlier step",
				         p->id, i - 1);
				goto fail;
			}
			st->after |= UINT64_C(1) << (int)a->valuedouble;
		}
		if (!st->args) {
			snprintf(why, wl, "out of memory");
			goto fail;
		}
	}
	return p;
fail:
	hearth_plan_free(p);
	return NULL;
}

/* ==== Posting ==== */

static void
post_plan_msg(enum hearth_msg_type type, const char *id, cJSON *body, const hearth_outbox *out)
{
	hearth_msg m = {.type = type};

	if (!body)
		return;
	memcpy(m.id, id, sizeof(m.id));
	m.body = body;
	hearth_post(out, &m);
}

void
hearth_plan_post_journal(const struct hearth_plan *p, bool ended, const hearth_outbox *out)
{
	hearth_msg m = {.type = HEARTH_MSG_JOURNAL};

	memcpy(m.id, p->id, sizeof(m.id));
	if (!ended && !(m.body = hearth_plan_journal_json(p)))
		return;
	hearth_post(out, &m);
}

void
hearth_plan_post_event(const struct hearth_plan *p, const hearth_now *now, const hearth_outbox *out)
{
	post_plan_msg(HEARTH_MSG_PLAN_EVENT, p->id, hearth_plan_event_json(p, now->wall_ms), out);
}

void
hearth_plan_post_reply(struct hearth_plan *p, const hearth_outbox *out)
{
	hearth_msg m = {.type = HEARTH_MSG_INTENT_REPLY};

	if (p->replied)
		return;
	p->replied = true;
	memcpy(m.id, p->intent_id, sizeof(m.id));
	m.body = hearth_plan_reply_json(p);
	m.reply = p->reply;
	memset(&p->reply, 0, sizeof(p->reply));
	if (m.body)
		hearth_post(out, &m);
	else
		hearth_reply_clear(&m.reply);
}

void
hearth_plan_post_episode(const struct hearth_plan *p, const hearth_now *now,
                         const hearth_outbox *out)
{
	post_plan_msg(HEARTH_MSG_EPISODE, p->id, hearth_plan_episode_json(p, now), out);
}
