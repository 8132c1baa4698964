/*
 * policy.c - hard constraints applied to a bound plan (see policy.h).
 */
#include "agents/orchestrator/policy.h"

#include "memory/constraints.h"
#include "platform/alloc.h"
#include "platform/strbuf.h"
#include "platform/json.h"
#include "recipes/capability.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ==== Conditions: three-valued ==== */

enum tv {
	TV_FALSE,
	TV_TRUE,
	TV_UNKNOWN,
};

static enum tv
tv_of(bool b)
{
	return b ? TV_TRUE : TV_FALSE;
}

/* "HH:MM" to minutes, or -1. */
static int
parse_hhmm(const cJSON *v)
{
	const char *s;
	int h, m;

	if (!cJSON_IsString(v))
		return -1;
	s = v->valuestring;
	if (strlen(s) != 5 || s[2] != ':' || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' ||
	    s[3] < '0' || s[3] > '9' || s[4] < '0' || s[4] > '9')
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 23 || m > 59)
		return -1;
	return h * 60 + m;
}

static enum tv eval_cond(const cJSON *c, const struct hearth_policy_env *env, int depth);

static enum tv
eval_list(const cJSON *list, bool all, const struct hearth_policy_env *env, int depth)
{
	const cJSON *c;
	bool unknown = false;

	if (!cJSON_IsArray(list) || !cJSON_GetArraySize(list))
		return TV_UNKNOWN;
	cJSON_ArrayForEach(c, list)
	{
		enum tv v = eval_cond(c, env, depth + 1);

		if (v == TV_UNKNOWN)
			unknown = true;
		else if (all && v == TV_FALSE)
			return TV_FALSE;
		else if (!all && v == TV_TRUE)
			return TV_TRUE;
	}
	if (unknown)
		return TV_UNKNOWN;
	return all ? TV_TRUE : TV_FALSE;
}

static enum tv
eval_flag(const cJSON *c, const struct hearth_policy_env *env)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "flag");
	const cJSON *is = cJSON_GetObjectItemCaseSensitive(c, "is");
	int v;

	if (!cJSON_IsString(name) || !cJSON_IsBool(is) || !env->ctx)
		return TV_UNKNOWN;
	v = hearth_context_flag(env->ctx, name->valuestring);
	if (v < 0)
		return TV_UNKNOWN;
	return tv_of((v == 1) == cJSON_IsTrue(is));
}

static enum tv
eval_device(const cJSON *c, const struct hearth_policy_env *env)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "device");
	const cJSON *prop = cJSON_GetObjectItemCaseSensitive(c, "property");
	const cJSON *is = cJSON_GetObjectItemCaseSensitive(c, "is");
	const cJSON *lt = cJSON_GetObjectItemCaseSensitive(c, "lt");
	const cJSON *gt = cJSON_GetObjectItemCaseSensitive(c, "gt");
	const struct hearth_device *d;
	const cJSON *v;

	if (!cJSON_IsString(id) || !cJSON_IsString(prop) || !env->ctx)
		return TV_UNKNOWN;
	if (!is && !lt && !gt)
		return TV_UNKNOWN;
	d = hearth_context_device(env->ctx, id->valuestring);
	if (!d || d->online == 0 || !d->state)
		return TV_UNKNOWN;
	v = cJSON_GetObjectItemCaseSensitive(d->state, prop->valuestring);
	if (!v || cJSON_IsNull(v))
		return TV_UNKNOWN;
	if (is)
		return tv_of(hearth_json_value_equal(is, v, 1e-9));
	if (!cJSON_IsNumber(v) || (lt && !cJSON_IsNumber(lt)) || (gt && !cJSON_IsNumber(gt)))
		return TV_UNKNOWN;
	return tv_of((!lt || v->valuedouble < lt->valuedouble) &&
	             (!gt || v->valuedouble > gt->valuedouble));
}

static enum tv
eval_time(const cJSON *c, const struct hearth_policy_env *env)
{
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(c, "time");
	int from = parse_hhmm(cJSON_GetObjectItemCaseSensitive(w, "from"));
	int to = parse_hhmm(cJSON_GetObjectItemCaseSensitive(w, "to"));
	int m = env->local_minute;

	if (from < 0 || to < 0 || from == to || m < 0 || m > 1439)
		return TV_UNKNOWN;
	if (from < to)
		return tv_of(m >= from && m < to);
	return tv_of(m >= from || m < to);
}

static enum tv
eval_cond(const cJSON *c, const struct hearth_policy_env *env, int depth)
{
	const cJSON *x;

	if (depth > HEARTH_CONSTRAINT_DEPTH_MAX || !cJSON_IsObject(c))
		return TV_UNKNOWN;
	if ((x = cJSON_GetObjectItemCaseSensitive(c, "all")))
		return eval_list(x, true, env, depth);
	if ((x = cJSON_GetObjectItemCaseSensitive(c, "any")))
		return eval_list(x, false, env, depth);
	if ((x = cJSON_GetObjectItemCaseSensitive(c, "not"))) {
		enum tv v = eval_cond(x, env, depth + 1);

		return v == TV_UNKNOWN ? TV_UNKNOWN : tv_of(v == TV_FALSE);
	}
	if (cJSON_GetObjectItemCaseSensitive(c, "flag"))
		return eval_flag(c, env);
	if (cJSON_GetObjectItemCaseSensitive(c, "device"))
		return eval_device(c, env);
	if (cJSON_GetObjectItemCaseSensitive(c, "time"))
		return eval_time(c, env);
	return TV_UNKNOWN;
}

bool
hearth_policy_when(const cJSON *rule, const struct hearth_policy_env *env)
{
	const cJSON *when = cJSON_GetObjectItemCaseSensitive(rule, "when");

	if (!when)
		return true;
	return eval_cond(when, env, 1) != TV_FALSE;
}

/* ==== Notes ==== */

static const char *
rule_str(const cJSON *rule, const char *key, const char *dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rule, key);

	return cJSON_IsString(v) ? v->valuestring : dflt;
}

static const char *
step_label(const struct hearth_policy_env *env, const struct hearth_step *st)
{
	const struct hearth_device *d =
	        env->ctx ? hearth_context_device(env->ctx, st->device) : NULL;

	return d && d->name ? d->name : st->device;
}

/* ==== Matching steps ==== */

/* Capability and device of a forbid / cap body. */
static bool
targets(const cJSON *body, const struct hearth_step *st)
{
	const cJSON *cap = cJSON_GetObjectItemCaseSensitive(body, "capability");
	const cJSON *dev = cJSON_GetObjectItemCaseSensitive(body, "device");

	if (!cJSON_IsString(cap) || hearth_capability_find(cap->valuestring) != st->cap)
		return false;
	if (dev && (!cJSON_IsString(dev) || strcmp(dev->valuestring, st->device)))
		return false;
	return true;
}

static bool
forbids(const cJSON *forbid, const struct hearth_step *st)
{
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(forbid, "args");
	const cJSON *a;

	if (!targets(forbid, st))
		return false;
	cJSON_ArrayForEach(a, args)
	{
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(st->args, a->string);

		if (!v || !hearth_json_value_equal(a, v, 1e-9))
			return false;
	}
	return true;
}

/* The bound the step's value breaks (*bound set), or false. */
static bool
exceeds(const cJSON *cap, const struct hearth_step *st, const cJSON **value, double *bound)
{
	const cJSON *prop = cJSON_GetObjectItemCaseSensitive(cap, "property");
	const cJSON *mx = cJSON_GetObjectItemCaseSensitive(cap, "max");
	const cJSON *mn = cJSON_GetObjectItemCaseSensitive(cap, "min");
	const cJSON *v;

	if (!targets(cap, st) || !cJSON_IsString(prop))
		return false;
	v = cJSON_GetObjectItemCaseSensitive(st->args, prop->valuestring);
	if (!cJSON_IsNumber(v))
		return false;
	*value = v;
	if (cJSON_IsNumber(mx) && v->valuedouble > mx->valuedouble) {
		*bound = mx->valuedouble;
		return true;
	}
	if (cJSON_IsNumber(mn) && v->valuedouble < mn->valuedouble) {
		*bound = mn->valuedouble;
		return true;
	}
	return false;
}

enum hearth_risk
hearth_policy_risk(const cJSON *rules, const struct hearth_policy_env *env,
                   const struct hearth_step *st, enum hearth_risk builtin, const char **rule_id)
{
	const cJSON *rule;
	int best = -1;

	*rule_id = NULL;
	cJSON_ArrayForEach(rule, rules)
	{
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(rule, "risk");
		const cJSON *lv = cJSON_GetObjectItemCaseSensitive(r, "level");
		int level;

		if (!r || !cJSON_IsString(lv) || !forbids(r, st) || !hearth_policy_when(rule, env))
			continue;
		level = !strcmp(lv->valuestring, "high")     ? HEARTH_RISK_HIGH
		        : !strcmp(lv->valuestring, "medium") ? HEARTH_RISK_MEDIUM
		                                             : HEARTH_RISK_LOW;
		if (level > best) {
			best = level;
			*rule_id = rule_str(rule, "id", "?");
		}
	}
	return best < 0 ? builtin : (enum hearth_risk)best;
}

/* ==== Applying ==== */

static void
drop_step(struct hearth_plan *p, bool *marks, int i)
{
	struct hearth_step *st = &p->steps[i];

	cJSON_Delete(st->args);
	cJSON_Delete(st->prev);
	hearth_free(st->note);
	memmove(&p->steps[i], &p->steps[i + 1], (size_t)(p->nsteps - i - 1) * sizeof(*st));
	memmove(&marks[i], &marks[i + 1], (size_t)(p->nsteps - i - 1) * sizeof(*marks));
	p->nsteps--;
	memset(&p->steps[p->nsteps], 0, sizeof(*st));
	marks[p->nsteps] = false;
}

static const char *const lift_note = " (an approval could lift this rule, but its recipe "
                                     "never asks for one)";

int
hearth_policy_apply(const cJSON *rules, const struct hearth_policy_env *env, struct hearth_plan *p,
                    struct hearth_policy_result *res)
{
	int nrules = cJSON_GetArraySize(rules);
	bool *active = NULL, *used = NULL, *marks = NULL;
	struct hearth_strbuf t = {0};
	const cJSON *rule;
	int k, rc = 0;

	memset(res, 0, sizeof(*res));
	if (!cJSON_IsArray(rules) || nrules == 0 || p->nsteps == 0)
		return 0;
	active = hearth_calloc((size_t)nrules, sizeof(*active));
	used = hearth_calloc((size_t)nrules, sizeof(*used));
	marks = hearth_calloc((size_t)p->nsteps, sizeof(*marks));
	if (!active || !used || !marks) {
		rc = -ENOMEM;
		goto out;
	}
	k = 0;
	cJSON_ArrayForEach(rule, rules) active[k++] = hearth_policy_when(rule, env);

	for (int i = 0; i < p->nsteps;) {
		struct hearth_step *st = &p->steps[i];
		bool dropped = false;

		k = 0;
		cJSON_ArrayForEach(rule, rules)
		{
			const cJSON *forbid = cJSON_GetObjectItemCaseSensitive(rule, "forbid");
			const cJSON *cap = cJSON_GetObjectItemCaseSensitive(rule, "cap");
			const char *id = rule_str(rule, "id", "?");
			const char *reason = rule_str(rule, "reason", "a hard rule forbids it");
			bool lifts = cJSON_IsTrue(
			        cJSON_GetObjectItemCaseSensitive(rule, "approval_lifts"));
			const cJSON *v = NULL;
			double bound = 0;
			int r = k++;

			if (!active[r])
				continue;
			if (forbid && forbids(forbid, st)) {
				used[r] = true;
				if (lifts && env->can_approve) {
					if (!marks[i]) {
						marks[i] = true;
						res->approvals++;
					}
					hearth_strbuf_addf(
					        &t, "%s (%s) needs an approval: %s (rule %s). ",
					        step_label(env, st), st->id, reason, id);
					continue;
				}
				hearth_strbuf_addf(&t, "%s (%s) is not done: %s (rule %s)%s. ",
				                   step_label(env, st), st->id, reason, id,
				                   lifts ? lift_note : "");
				dropped = true;
				break;
			}
			if (cap && exceeds(cap, st, &v, &bound)) {
				used[r] = true;
				if (lifts && env->can_approve) {
					if (!marks[i]) {
						marks[i] = true;
						res->approvals++;
					}
					hearth_strbuf_addf(
					        &t, "%s %s %g needs an approval: %s (rule %s). ",
					        step_label(env, st), v->string, v->valuedouble,
					        reason, id);
					continue;
				}
				hearth_strbuf_addf(&t, "%s %s %g capped at %g: %s (rule %s)%s. ",
				                   step_label(env, st), v->string, v->valuedouble,
				                   bound, reason, id, lifts ? lift_note : "");
				cJSON_SetNumberValue((cJSON *)v, bound);
				res->capped++;
			}
		}
		if (dropped) {
			if (marks[i])
				res->approvals--;
			drop_step(p, marks, i);
			res->dropped++;
			continue;
		}
		i++;
	}
	for (k = 0; k < nrules; k++)
		res->nrules_applied += used[k];
	if (t.oom) {
		rc = -ENOMEM;
		goto out;
	}
	if (t.buf)
		while (t.len && t.buf[t.len - 1] == ' ')
			t.buf[--t.len] = '\0';
	res->notes = t.buf;
	t.buf = NULL;
	if (res->approvals) {
		res->needs_approval = marks;
		marks = NULL;
	}
out:
	hearth_free(t.buf);
	hearth_free(active);
	hearth_free(used);
	hearth_free(marks);
	return rc;
}

void
hearth_policy_result_clear(struct hearth_policy_result *res)
{
	hearth_free(res->needs_approval);
	hearth_free(res->notes);
	memset(res, 0, sizeof(*res));
}
