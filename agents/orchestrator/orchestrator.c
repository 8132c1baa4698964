/*
 * orchestrator.c - from an intent to a bound, minimal plan (see
 * orchestrator.h).
 *
 * Binding rules: a recipe step selects the announced devices that have its
 * capability (in the slot's room, of its kind); offline devices are left out
 * and said so. Args a device has no capability for are dropped for that
 * device (an on/off lamp gets "on" but not "brightness"). A step whose effect
 * already holds in the device's reported state is skipped, unless the device
 * is optimistic (never reported, or says so), as in DESIGN.md section 4.
 */
#include "agents/orchestrator/orchestrator.h"

#include "agents/context/privacy.h"
#include "agents/orchestrator/policy.h"
#include "agents/plan.h"
#include "hearth_config.h"
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/id.h"
#include "platform/json.h"
#include "platform/log.h"
#include "platform/strbuf.h"
#include "recipes/capability.h"
#include "recipes/matcher.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct hearth_orch {
	const hearth_recipe_book *book;
	const hearth_context *ctx;
	unsigned long seq;
	char policy_hash[65];
	cJSON *rules;          /* the hard rules in force (owned), or NULL */
	char transports[8][8]; /* what the runtime can drive */
	int ntransports;
	hearth_matcher *matcher; /* text intents: the book's sentences */
	struct hearth_orch_scoring scoring;
	struct hearth_orch_memory mem;
};

static bool
orch_room_known(void *ud, const char *room_key)
{
	return hearth_context_room_known(ud, room_key);
}

int
hearth_orch_new(const hearth_recipe_book *book, const hearth_context *ctx, hearth_orch **out)
{
	hearth_orch *o = hearth_calloc(1, sizeof(*o));

	*out = NULL;
	if (!o)
		return -ENOMEM;
	o->book = book;
	o->ctx = ctx;
	if (hearth_matcher_new(&o->matcher) ||
	    (book && hearth_matcher_add_book(o->matcher, book, NULL, NULL))) {
		hearth_orch_free(o);
		return -ENOMEM;
	}
	if (ctx)
		hearth_matcher_set_room_fn(o->matcher, orch_room_known, (void *)ctx);
	hearth_orch_allow_transport(o, "mqtt");
	o->scoring = (struct hearth_orch_scoring){.weights = {1.0, 1.0, 1.0, 1.0, 0.5},
	                                          .alternatives = 3};
	*out = o;
	return 0;
}

void
hearth_orch_free(hearth_orch *o)
{
	if (!o)
		return;
	cJSON_Delete(o->rules);
	hearth_matcher_free(o->matcher);
	hearth_free(o);
}

int
hearth_orch_set_rules(hearth_orch *o, const cJSON *rules)
{
	cJSON *copy = NULL;

	if (rules && !(copy = cJSON_Duplicate(rules, 1)))
		return -ENOMEM;
	cJSON_Delete(o->rules);
	o->rules = copy;
	return 0;
}

void
hearth_orch_allow_transport(hearth_orch *o, const char *transport)
{
	for (int i = 0; i < o->ntransports; i++)
		if (!strcmp(o->transports[i], transport))
			return;
	if (o->ntransports < 8)
		snprintf(o->transports[o->ntransports++], sizeof(o->transports[0]), "%s",
		         transport);
}

static bool
drivable(const hearth_orch *o, const char *transport)
{
	for (int i = 0; i < o->ntransports; i++)
		if (!strcmp(o->transports[i], transport))
			return true;
	return false;
}

void
hearth_orch_set_policy_hash(hearth_orch *o, const char *hash)
{
	snprintf(o->policy_hash, sizeof(o->policy_hash), "%s", hash ? hash : "");
}

void
hearth_orch_set_scoring(hearth_orch *o, const struct hearth_orch_scoring *sc)
{
	o->scoring = *sc;
	for (int d = 0; d < HEARTH_SCORE_N; d++)
		if (!(o->scoring.weights[d] >= 0)) /* also NaN */
			o->scoring.weights[d] = 0;
	if (o->scoring.alternatives < 1)
		o->scoring.alternatives = 1;
	if (o->scoring.alternatives > 8)
		o->scoring.alternatives = 8;
}

void
hearth_orch_set_memory(hearth_orch *o, const struct hearth_orch_memory *m)
{
	if (m)
		o->mem = *m;
	else
		memset(&o->mem, 0, sizeof(o->mem));
}

void
hearth_orch_set_book(hearth_orch *o, const hearth_recipe_book *book)
{
	o->book = book;
}

void
hearth_orch_refuse(hearth_msg *m, const char *code, const char *detail, const hearth_outbox *out)
{
	hearth_msg r = {.type = HEARTH_MSG_INTENT_REPLY};

	hearth_post_error(out, code, "intent", detail);
	if (!m->id[0])
		return;
	memcpy(r.id, m->id, sizeof(r.id));
	r.body = cJSON_CreateObject();
	if (!r.body)
		return;
	cJSON_AddStringToObject(r.body, "id", m->id);
	cJSON_AddStringToObject(r.body, "error", code);
	cJSON_AddStringToObject(r.body, "detail", detail);
	r.reply = m->reply;
	memset(&m->reply, 0, sizeof(m->reply));
	hearth_post(out, &r);
}

/* "on, brightness 30" */
static void
text_args(struct hearth_strbuf *t, const cJSON *args)
{
	const cJSON *a;
	bool first = true;

	cJSON_ArrayForEach(a, args)
	{
		const char *sep = first ? "" : ", ";

		first = false;
		if (cJSON_IsBool(a))
			hearth_strbuf_addf(t, "%s%s%s", sep, cJSON_IsTrue(a) ? "" : "not ",
			                   a->string);
		else if (cJSON_IsNumber(a))
			hearth_strbuf_addf(t, "%s%s %g", sep, a->string, a->valuedouble);
		else
			hearth_strbuf_addf(t, "%s%s", sep, a->string);
	}
}

static const char *
dev_label(const struct hearth_device *d)
{
	return d->name ? d->name : d->id;
}

/* ==== Binding ==== */

/* Does cond (a "holds" object or args) hold in state? Bounds: {"max":N}/{"min":N}. */
static bool
holds(const cJSON *cond, const cJSON *state)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, cond)
	{
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(state, c->string);

		if (!v)
			return false;
		if (cJSON_IsObject(c)) {
			const cJSON *mx = cJSON_GetObjectItemCaseSensitive(c, "max");
			const cJSON *mn = cJSON_GetObjectItemCaseSensitive(c, "min");

			if (!cJSON_IsNumber(v) || (mx && v->valuedouble > mx->valuedouble) ||
			    (mn && v->valuedouble < mn->valuedouble))
				return false;
		} else if (!hearth_json_value_equal(c, v, 0.5)) {
			return false;
		}
	}
	return true;
}

/* Copy of obj with only the properties the device has a capability for. */
static cJSON *
filter_props(const cJSON *obj, hearth_capset caps)
{
	cJSON *o = cJSON_CreateObject();
	const cJSON *a;

	cJSON_ArrayForEach(a, obj)
	{
		if (o && hearth_capset_has_property(caps, a->string))
			cJSON_AddItemToObject(o, a->string, cJSON_Duplicate(a, 1));
	}
	return o;
}

/*
 * Replace every "{slot}" string value in obj (args or holds, also inside a
 * {"max": ...} bound) by the slot's value. The recipe validator checked that
 * such slots exist and are numbers; -1 when the intent left one unresolved.
 */
static int
fill_slots(cJSON *obj, const cJSON *slots)
{
	cJSON *v;

	cJSON_ArrayForEach(v, obj)
	{
		size_t n;

		if (cJSON_IsObject(v) && fill_slots(v, slots))
			return -1;
		if (!cJSON_IsString(v) || (n = strlen(v->valuestring)) < 3 ||
		    v->valuestring[0] != '{' || v->valuestring[n - 1] != '}')
			continue;
		char name[HEARTH_ID_MAX + 1];
		const cJSON *val;

		snprintf(name, sizeof(name), "%.*s", (int)(n - 2), v->valuestring + 1);
		val = cJSON_GetObjectItemCaseSensitive(slots, name);
		if (!cJSON_IsNumber(val))
			return -1;
		cJSON_SetNumberValue(v, val->valuedouble);
		v->type = cJSON_Number;
		cJSON_free(v->valuestring);
		v->valuestring = NULL;
	}
	return 0;
}

/* The device's current values of cond's properties. */
static cJSON *
values_of(const cJSON *cond, const cJSON *state)
{
	cJSON *o = cJSON_CreateObject();
	const cJSON *c;

	cJSON_ArrayForEach(c, cond)
	{
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(state, c->string);

		if (o && v)
			cJSON_AddItemToObject(o, c->string, cJSON_Duplicate(v, 1));
	}
	return o;
}

static const char *
resolve_room(const struct hearth_recipe_step *rs, const cJSON *slots)
{
	size_t n;

	if (!rs->room)
		return NULL;
	n = strlen(rs->room);
	if (n > 2 && rs->room[0] == '{' && rs->room[n - 1] == '}') {
		char name[64];
		const cJSON *v;

		snprintf(name, sizeof(name), "%.*s", (int)(n - 2), rs->room + 1);
		v = cJSON_GetObjectItemCaseSensitive(slots, name);
		return cJSON_IsString(v) ? v->valuestring : NULL;
	}
	return rs->room;
}

/* Resolve slot values (intent's, else defaults) into a new object. */
static int
resolve_slots(const struct hearth_recipe *r, const cJSON *given, cJSON **out, char *why, size_t wl)
{
	cJSON *slots = cJSON_CreateObject();

	*out = NULL;
	if (!slots)
		return -ENOMEM;
	for (int i = 0; i < r->nslots; i++) {
		const struct hearth_recipe_slot *s = &r->slots[i];
		const cJSON *v = given ? cJSON_GetObjectItemCaseSensitive(given, s->name) : NULL;

		if (!v || cJSON_IsNull(v))
			v = s->def;
		if (!v) {
			if (s->required) {
				snprintf(why, wl, "%s needs slot \"%s\" (a %s)", r->id, s->name,
				         s->type);
				cJSON_Delete(slots);
				return HEARTH_E_INVALID;
			}
			continue;
		}
		if (!hearth_recipe_slot_value_ok(s->type, v)) {
			if (!strcmp(s->type, "room") || !strcmp(s->type, "string"))
				snprintf(why, wl,
				         "slot \"%s\" must be a %s name (a string of 1-64 "
				         "characters)",
				         s->name, s->type);
			else
				snprintf(why, wl, "slot \"%s\" must be a number", s->name);
			cJSON_Delete(slots);
			return HEARTH_E_INVALID;
		}
		cJSON_AddItemToObject(slots, s->name, cJSON_Duplicate(v, 1));
	}
	*out = slots;
	return 0;
}

/* Can the hub use d for a plan step now? */
static bool
usable(const hearth_orch *o, const struct hearth_device *d)
{
	return d->online != 0 && drivable(o, d->transport);
}

/*
 * Fill the plan's steps from the recipe; notes go into the rationale. pick[k]
 * is the device chosen for recipe step k when it is a "pick": "one" step
 * (NULL: none is usable, the step binds nothing).
 */
static int
bind_steps(hearth_orch *o, const struct hearth_recipe *r, struct hearth_plan *p,
           const char *const *pick, struct hearth_strbuf *why_text, char *why, size_t wl)
{
	const struct hearth_device *devs[CONFIG_HEARTH_MAX_PLAN_STEPS];
	int n = 0, offline = 0;

	for (int i = 0; i < r->nsteps; i++) {
		const struct hearth_recipe_step *rs = &r->steps[i];
		const char *room = resolve_room(rs, p->slots);
		int k = hearth_context_select(o->ctx, room, rs->cap, rs->kind, devs,
		                              CONFIG_HEARTH_MAX_PLAN_STEPS);
		for (int j = 0; j < k; j++) {
			const struct hearth_device *d;
			struct hearth_step *st;
			cJSON *cond;

			if (j >= CONFIG_HEARTH_MAX_PLAN_STEPS ||
			    n >= CONFIG_HEARTH_MAX_PLAN_STEPS) {
				snprintf(why, wl, "the plan would need more than %d steps",
				         CONFIG_HEARTH_MAX_PLAN_STEPS);
				return HEARTH_E_TOO_LARGE;
			}
			d = devs[j];
			if (rs->pick_one && usable(o, d) && (!pick[i] || strcmp(d->id, pick[i])))
				continue; /* another candidate plan uses it */
			if (d->online == 0) {
				hearth_strbuf_addf(why_text, "%s%s is offline and is left out. ",
				                   offline++ ? "" : "Note: ", dev_label(d));
				continue;
			}
			if (!drivable(o, d->transport)) {
				hearth_strbuf_addf(
				        why_text,
				        "%s%s speaks %s, which this hub cannot drive yet, and is "
				        "left out. ",
				        offline++ ? "" : "Note: ", dev_label(d), d->transport);
				continue;
			}
			st = &p->steps[n];
			snprintf(st->id, sizeof(st->id), "%s", rs->id);
			snprintf(st->device, sizeof(st->device), "%s", d->id);
			st->cap = rs->cap;
			st->rsteps = UINT64_C(1) << i; /* the validator allows 64 steps */
			st->timeout_ms = rs->timeout_ms;
			st->compensate = rs->compensate;
			st->optimistic = hearth_device_optimistic(d);
			/* Reading the device's state to decide what already holds is a
			 * read of its data class: the privacy guard has a say (and counts). */
			if (!st->optimistic &&
			    !hearth_context_may_read(o->ctx, HEARTH_CONSUMER_PLANNER,
			                             hearth_capability_at(rs->cap)->name))
				st->optimistic = true;
			st->args = filter_props(rs->args, d->caps);
			cond = filter_props(rs->holds ? rs->holds : rs->args, d->caps);
			if (st->args && cond &&
			    (fill_slots(st->args, p->slots) || fill_slots(cond, p->slots))) {
				cJSON_Delete(cond);
				snprintf(why, wl,
				         "%s: step %s needs a slot the intent did not give", r->id,
				         rs->id);
				return HEARTH_E_INVALID;
			}
			if (!st->args || !cond) {
				cJSON_Delete(cond);
				return -ENOMEM;
			}
			if (!st->optimistic && holds(cond, d->state)) {
				cJSON *now_vals = values_of(cond, d->state);
				struct hearth_strbuf note = {0};

				st->state = HEARTH_STEP_SKIPPED;
				hearth_strbuf_addf(&note, "already ");
				text_args(&note, now_vals);
				st->note = note.buf;
				cJSON_Delete(now_vals);
			}
			cJSON_Delete(cond);
			n++;
		}
	}
	p->nsteps = n;
	return 0;
}

/* ==== Rationale ==== */

static void
write_rationale(hearth_orch *o, const struct hearth_recipe *r, struct hearth_plan *p,
                struct hearth_strbuf *t, const char *notes)
{
	const char *room = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p->slots, "room"))
	                           ? cJSON_GetObjectItemCaseSensitive(p->slots, "room")->valuestring
	                           : NULL;
	int acting = 0, skipped = 0;

	hearth_strbuf_addf(t, "%s%s%s: ", r->title ? r->title : r->id, room ? " in " : "",
	                   room ? room : "");
	for (int i = 0; i < p->nsteps; i++) {
		const struct hearth_step *st = &p->steps[i];
		const struct hearth_device *d = hearth_context_device(o->ctx, st->device);

		if (st->state == HEARTH_STEP_SKIPPED)
			continue;
		hearth_strbuf_addf(t, "%s%s (%s) to ", acting++ ? "; set " : "set ",
		                   d ? dev_label(d) : st->device, st->id);
		text_args(t, st->args);
		if (st->optimistic)
			hearth_strbuf_addf(
			        t, " (it does not report state, so it is trusted when sent)");
	}
	if (!acting)
		hearth_strbuf_addf(t, "nothing to do");
	hearth_strbuf_addf(t, ". ");
	for (int i = 0; i < p->nsteps; i++) {
		const struct hearth_step *st = &p->steps[i];
		const struct hearth_device *d = hearth_context_device(o->ctx, st->device);

		if (st->state != HEARTH_STEP_SKIPPED)
			continue;
		hearth_strbuf_addf(t, "%s%s is left alone: %s", skipped++ ? "; " : "",
		                   d ? dev_label(d) : st->device,
		                   st->note ? st->note : "already holds");
	}
	if (skipped)
		hearth_strbuf_addf(t, ". ");
	if (!acting)
		hearth_strbuf_addf(t, "Every step already holds, so the plan is complete. ");
	if (notes && notes[0])
		hearth_strbuf_addf(t, "%s", notes);
	while (t->len && t->buf[t->len - 1] == ' ')
		t->buf[--t->len] = '\0';
}

/* ==== Hard constraints (policy.h) ==== */

/*
 * Apply the hard rules to the bound plan: forbidden steps go, capped values
 * are clamped, and the rationale notes say which rule did it. When the
 * recipe may ask for approvals (can_approve), an approval_lifts rule marks
 * the steps instead of dropping them. Returns 0 to go on (with the steps
 * that need an approval in *approvals), 1 when the rules leave no step (the
 * reason in why), or -ENOMEM.
 */
static int
apply_policy(hearth_orch *o, struct hearth_plan *p, bool can_approve, const hearth_now *now,
             struct hearth_strbuf *notes, int *approvals, char *why, size_t wl)
{
	struct hearth_policy_env env = {
	        .ctx = o->ctx, .local_minute = now->local_minute, .can_approve = can_approve};
	struct hearth_policy_result res;
	int rc;

	rc = hearth_policy_apply(o->rules, &env, p, &res);
	if (rc) {
		hearth_policy_result_clear(&res);
		return -ENOMEM;
	}
	*approvals = res.approvals;
	if (p->nsteps == 0) {
		snprintf(why, wl, "every step is forbidden by the hard rules: %s",
		         res.notes ? res.notes : "");
		hearth_policy_result_clear(&res);
		return 1;
	}
	if (res.notes)
		hearth_strbuf_addf(notes, "%s ", res.notes);
	hearth_policy_result_clear(&res);
	return 0;
}

/* ==== Critique and dependencies ==== */

static void
drop_step(struct hearth_plan *p, int i)
{
	struct hearth_step *st = &p->steps[i];

	cJSON_Delete(st->args);
	cJSON_Delete(st->prev);
	hearth_free(st->note);
	memmove(&p->steps[i], &p->steps[i + 1], (size_t)(p->nsteps - i - 1) * sizeof(*st));
	p->nsteps--;
	memset(&p->steps[p->nsteps], 0, sizeof(*st));
}

/* A finding into the plan's critique and, as one sentence, the rationale notes. */
static int
finding(struct hearth_plan *p, struct hearth_strbuf *notes, const char *kind, const char *label,
        const char *detail)
{
	cJSON *f = cJSON_CreateObject();

	if (!f || !cJSON_AddStringToObject(f, "kind", kind) ||
	    !cJSON_AddStringToObject(f, "detail", detail) ||
	    !cJSON_AddItemToArray(p->critique, f)) {
		cJSON_Delete(f);
		return -ENOMEM;
	}
	hearth_strbuf_addf(notes, "%s: %s. ", label, detail);
	return 0;
}

/* A short form of a property value: 30, on, off, "x". */
static void
value_str(const cJSON *v, char *buf, size_t len)
{
	if (cJSON_IsBool(v))
		snprintf(buf, len, "%s", cJSON_IsTrue(v) ? "true" : "false");
	else if (cJSON_IsNumber(v))
		snprintf(buf, len, "%g", v->valuedouble);
	else if (cJSON_IsString(v))
		snprintf(buf, len, "\"%.40s\"", v->valuestring);
	else
		snprintf(buf, len, "a %s", cJSON_IsObject(v) ? "object" : "value");
}

/*
 * Look the bound plan over: a step that repeats an earlier one on the same
 * device exactly is dropped (redundant; the kept one stands for both recipe
 * steps), two steps that set one property of a device to different values
 * are a conflict (the later one wins, as the device is serialized), and a
 * consent class the recipe declares that the planner may not use is missing
 * consent. Findings go into p->critique and the notes. 0 or -ENOMEM.
 */
static int
critique(hearth_orch *o, const struct hearth_recipe *r, struct hearth_plan *p,
         struct hearth_strbuf *notes)
{
	const hearth_privacy *g = o->ctx ? hearth_context_guard(o->ctx) : NULL;
	char buf[512], va[64], vb[64];

	p->critique = cJSON_CreateArray();
	if (!p->critique)
		return -ENOMEM;
	for (int j = 1; j < p->nsteps; j++) {
		for (int i = 0; i < j; i++) {
			struct hearth_step *a = &p->steps[i], *b = &p->steps[j];
			const struct hearth_device *d;

			if (strcmp(a->device, b->device) || !cJSON_Compare(a->args, b->args, 1))
				continue;
			d = hearth_context_device(o->ctx, b->device);
			snprintf(buf, sizeof(buf),
			         "step %s on %s repeats step %s exactly, so it is dropped", b->id,
			         d ? dev_label(d) : b->device, a->id);
			if (finding(p, notes, "redundant", "Redundant", buf))
				return -ENOMEM;
			a->rsteps |= b->rsteps;
			drop_step(p, j--);
			break;
		}
	}
	for (int j = 1; j < p->nsteps; j++) {
		for (int i = 0; i < j; i++) {
			const struct hearth_step *a = &p->steps[i], *b = &p->steps[j];
			const struct hearth_device *d;
			const cJSON *pa;

			if (strcmp(a->device, b->device))
				continue;
			d = hearth_context_device(o->ctx, b->device);
			cJSON_ArrayForEach(pa, a->args)
			{
				const cJSON *pb =
				        cJSON_GetObjectItemCaseSensitive(b->args, pa->string);

				if (!pb || cJSON_Compare(pa, pb, 1))
					continue;
				value_str(pa, va, sizeof(va));
				value_str(pb, vb, sizeof(vb));
				snprintf(buf, sizeof(buf),
				         "steps %s and %s both set %s on %s (%s, then %s); the "
				         "later "
				         "one wins",
				         a->id, b->id, pa->string, d ? dev_label(d) : b->device, va,
				         vb);
				if (finding(p, notes, "conflict", "Conflict", buf))
					return -ENOMEM;
			}
		}
	}
	for (int i = 0; o->mem.holder && i < p->nsteps; i++) {
		const struct hearth_step *st = &p->steps[i];
		const struct hearth_device *d;
		const char *holder;
		bool seen = false;

		for (int j = 0; j < i; j++)
			seen = seen || !strcmp(p->steps[j].device, st->device);
		if (seen || st->state == HEARTH_STEP_SKIPPED ||
		    !(holder = o->mem.holder(o->mem.ud, st->device)))
			continue;
		d = hearth_context_device(o->ctx, st->device);
		snprintf(buf, sizeof(buf),
		         "%s is in use by the running plan %s, so its steps wait until that "
		         "plan lets it go",
		         d ? dev_label(d) : st->device, holder);
		if (finding(p, notes, "busy", "Busy", buf))
			return -ENOMEM;
	}
	for (int k = 0; k < r->nconsents; k++) {
		int c = hearth_privacy_class_find(r->consents[k]);
		char scope[64];

		if (c < 0 || !g ||
		    hearth_privacy_permits(g, HEARTH_CONSUMER_PLANNER, (enum hearth_data_class)c))
			continue;
		hearth_privacy_scope(HEARTH_CONSUMER_PLANNER, (enum hearth_data_class)c, scope,
		                     sizeof(scope));
		snprintf(buf, sizeof(buf),
		         "%s needs consent for %s data, which the planner may not use (the "
		         "consent %s would allow it)",
		         r->id, r->consents[k], scope);
		if (finding(p, notes, "missing_consent", "Missing consent", buf))
			return -ENOMEM;
	}
	return 0;
}

/*
 * Each plan step waits for every earlier plan step bound from a recipe step
 * its recipe steps list in after. Steps the rules or the critique dropped are
 * not waited for. An edge that another path already implies (a -> c when
 * a -> b -> c) is removed, so the plan is the minimal DAG.
 */
static void
link_after(const struct hearth_recipe *r, struct hearth_plan *p)
{
	for (int i = 0; i < p->nsteps && i < 64; i++) {
		struct hearth_step *st = &p->steps[i];
		uint64_t wants = 0;

		st->after = 0;
		for (int k = 0; k < r->nsteps && k < 64; k++) {
			if (!(st->rsteps & (UINT64_C(1) << k)))
				continue;
			for (int a = 0; a < r->steps[k].nafter; a++)
				if (r->steps[k].after[a] >= 0 && r->steps[k].after[a] < 64)
					wants |= UINT64_C(1) << r->steps[k].after[a];
		}
		for (int j = 0; j < i; j++)
			if (p->steps[j].rsteps & wants)
				st->after |= UINT64_C(1) << j;
	}
	/* reach[i]: every step i waits for, directly or not (edges point back). */
	uint64_t reach[64];

	for (int i = 0; i < p->nsteps && i < 64; i++) {
		uint64_t implied = 0;

		for (int j = 0; j < i; j++)
			if (p->steps[i].after & (UINT64_C(1) << j))
				implied |= reach[j];
		reach[i] = p->steps[i].after | implied;
		p->steps[i].after &= ~implied;
	}
}

/* ==== Scoring ==== */

static const char *const dim_names[HEARTH_SCORE_N] = {"latency", "friction", "comfort", "privacy",
                                                      "energy"};

const char *
hearth_score_dim_name(enum hearth_score_dim d)
{
	return (unsigned)d < HEARTH_SCORE_N ? dim_names[d] : "?";
}

#define DEFAULT_STEP_MS    250.0 /* a step on a device with no statistics yet */
#define OPTIMISTIC_STEP_MS 20.0  /* confirmed when sent */
#define DEFAULT_TARGET_MS  1000.0
#define COMFORT_UNKNOWN    0.5
#define ENERGY_SCALE_W     100.0
#define CAND_MAX           12 /* candidate plans built for one intent */
#define RATIONALE_DESC_MAX 160

/* The classes whose use a person would call sensitive. */
static bool
sensitive_class(enum hearth_data_class c)
{
	return c == HEARTH_CLASS_PRESENCE || c == HEARTH_CLASS_AUDIO || c == HEARTH_CLASS_CAMERA ||
	       c == HEARTH_CLASS_LOCATION;
}

struct cand {
	const struct hearth_recipe *r;
	struct hearth_plan *p;
	struct hearth_strbuf notes;
	const char *pick[CONFIG_HEARTH_MAX_PLAN_STEPS]; /* per recipe step (pick one) */
	int variant_step;                               /* recipe step swapped, -1: base */
	bool ok;                                        /* a plan that may run */
	const char *code;                               /* when not ok: the refusal */
	char why[512];
	double u[HEARTH_SCORE_N];
	double total;
	double est_ms, watts;
	int approvals, sensitive;
};

/* Expected ms for step st to confirm on its device. */
static double
step_ms(const hearth_orch *o, const struct hearth_step *st)
{
	double lat = 0, rel = 0;

	if (st->state == HEARTH_STEP_SKIPPED)
		return 0;
	if (st->optimistic)
		return OPTIMISTIC_STEP_MS;
	if (!o->mem.device || !o->mem.device(o->mem.ud, st->device, &lat, &rel) || !(lat >= 0))
		return DEFAULT_STEP_MS;
	/* an unreliable device costs its retries: expect 1 / reliability sends */
	return lat / (rel > 0.25 ? rel : 0.25);
}

/* Watts st switches on (0 for off, or when nothing is known). */
static double
step_watts(const hearth_orch *o, const struct hearth_step *st)
{
	const struct hearth_device *d = hearth_context_device(o->ctx, st->device);
	const cJSON *on = cJSON_GetObjectItemCaseSensitive(st->args, "on");
	const cJSON *br = cJSON_GetObjectItemCaseSensitive(st->args, "brightness");
	double w;

	if (st->state == HEARTH_STEP_SKIPPED || !d || cJSON_IsFalse(on))
		return 0;
	if (!on && !br && !cJSON_GetObjectItemCaseSensitive(st->args, "setpoint"))
		return 0; /* a blind, a volume: no lasting draw */
	if (d->power_w > 0)
		w = d->power_w;
	else if (hearth_capset_has_property(d->caps, "setpoint"))
		w = 1000;
	else if (hearth_capset_has_property(d->caps, "brightness"))
		w = 10;
	else if (d->kind && (!strcmp(d->kind, "tv") || !strcmp(d->kind, "media")))
		w = 80;
	else
		w = 5;
	if (cJSON_IsNumber(br))
		w *= br->valuedouble / 100.0;
	return w;
}

static void
score(const hearth_orch *o, struct cand *c)
{
	const struct hearth_plan *p = c->p;
	double finish[CONFIG_HEARTH_MAX_PLAN_STEPS], target, wsum = 0, pref_sum = 0;
	bool classes[HEARTH_CLASS_COUNT] = {false};
	int npref = 0;

	c->est_ms = 0;
	c->watts = 0;
	c->sensitive = 0;
	for (int i = 0; i < p->nsteps; i++) {
		const struct hearth_step *st = &p->steps[i];
		double start = 0;

		for (int j = 0; j < i; j++)
			if ((i < 64 && (st->after & (UINT64_C(1) << j))) ||
			    !strcmp(p->steps[j].device, st->device))
				start = finish[j] > start ? finish[j] : start;
		finish[i] = start + step_ms(o, st);
		if (finish[i] > c->est_ms)
			c->est_ms = finish[i];
		c->watts += step_watts(o, st);
		if (st->state != HEARTH_STEP_SKIPPED) {
			classes[hearth_privacy_class_of(hearth_capability_at(st->cap)->name)] =
			        true;
			if (o->mem.preference) {
				double pr = o->mem.preference(o->mem.ud, c->r->id, st->device);

				if (pr >= 0) {
					pref_sum += pr > 1 ? 1 : pr;
					npref++;
				}
			}
		}
	}
	for (int k = 0; k < c->r->nconsents; k++) {
		int cl = hearth_privacy_class_find(c->r->consents[k]);

		if (cl >= 0)
			classes[cl] = true;
	}
	for (int cl = 0; cl < HEARTH_CLASS_COUNT; cl++)
		c->sensitive += classes[cl] && sensitive_class((enum hearth_data_class)cl);
	if (o->mem.preference) {
		double pr = o->mem.preference(o->mem.ud, c->r->id, NULL);

		if (pr >= 0) {
			pref_sum += pr > 1 ? 1 : pr;
			npref++;
		}
	}
	target = c->r->target_latency_ms > 0 ? c->r->target_latency_ms : DEFAULT_TARGET_MS;
	c->u[HEARTH_SCORE_LATENCY] = target / (target + c->est_ms);
	c->u[HEARTH_SCORE_FRICTION] = 1.0 / (1.0 + c->approvals);
	c->u[HEARTH_SCORE_COMFORT] = npref ? pref_sum / npref : COMFORT_UNKNOWN;
	c->u[HEARTH_SCORE_PRIVACY] = 1.0 / (1.0 + c->sensitive);
	c->u[HEARTH_SCORE_ENERGY] = ENERGY_SCALE_W / (ENERGY_SCALE_W + c->watts);
	c->total = 0;
	for (int d = 0; d < HEARTH_SCORE_N; d++) {
		c->total += o->scoring.weights[d] * c->u[d];
		wsum += o->scoring.weights[d];
	}
	c->total = wsum > 0 ? c->total / wsum : 0;
}

/* Rounded to 3 decimals, so the JSON reads well and compares exactly. */
static double
r3(double v)
{
	return round(v * 1000.0) / 1000.0;
}

/* {"total", "latency".., "estimate": {...}, "weights": {...}} */
static cJSON *
score_json(const hearth_orch *o, const struct cand *c)
{
	cJSON *s = cJSON_CreateObject(), *e, *w;

	if (!s)
		return NULL;
	cJSON_AddNumberToObject(s, "total", r3(c->total));
	for (int d = 0; d < HEARTH_SCORE_N; d++)
		cJSON_AddNumberToObject(s, dim_names[d], r3(c->u[d]));
	e = cJSON_AddObjectToObject(s, "estimate");
	if (e) {
		cJSON_AddNumberToObject(e, "latency_ms", round(c->est_ms));
		cJSON_AddNumberToObject(e, "approvals", c->approvals);
		cJSON_AddNumberToObject(e, "sensitive_classes", c->sensitive);
		cJSON_AddNumberToObject(e, "watts", round(c->watts * 10.0) / 10.0);
	}
	w = cJSON_AddObjectToObject(s, "weights");
	for (int d = 0; w && d < HEARTH_SCORE_N; d++)
		cJSON_AddNumberToObject(w, dim_names[d], o->scoring.weights[d]);
	return s;
}

/* The devices a candidate acts on or leaves alone, in plan order, once each. */
static cJSON *
cand_devices(const struct cand *c)
{
	cJSON *a = cJSON_CreateArray();

	for (int i = 0; a && c->p && i < c->p->nsteps; i++) {
		bool seen = false;

		for (int j = 0; j < i; j++)
			seen = seen || !strcmp(c->p->steps[j].device, c->p->steps[i].device);
		if (!seen)
			cJSON_AddItemToArray(a, cJSON_CreateString(c->p->steps[i].device));
	}
	return a;
}

/*
 * The alternatives of a plan: the ranked candidates (best first, at most
 * o->scoring.alternatives, the chosen one marked), then the ones that could
 * not run, with why.
 */
static cJSON *
alternatives_json(const hearth_orch *o, struct cand **ranked, int nranked, struct cand *c, int n)
{
	cJSON *a = cJSON_CreateArray();

	for (int i = 0; a && i < nranked && i < o->scoring.alternatives; i++) {
		cJSON *e = cJSON_CreateObject();

		cJSON_AddNumberToObject(e, "rank", i + 1);
		cJSON_AddBoolToObject(e, "chosen", i == 0);
		cJSON_AddStringToObject(e, "recipe", ranked[i]->r->id);
		cJSON_AddItemToObject(e, "devices", cand_devices(ranked[i]));
		cJSON_AddItemToObject(e, "score", score_json(o, ranked[i]));
		cJSON_AddItemToArray(a, e);
	}
	for (int i = 0; a && i < n; i++) {
		cJSON *e;

		if (c[i].ok)
			continue;
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "recipe", c[i].r->id);
		cJSON_AddItemToObject(e, "devices", cand_devices(&c[i]));
		cJSON_AddStringToObject(e, "excluded", c[i].code);
		cJSON_AddStringToObject(e, "detail", c[i].why);
		cJSON_AddItemToArray(a, e);
	}
	return a;
}

/* "Movie night", or "Reading light with Ceiling light" for a binding variant. */
static void
cand_label(const hearth_orch *o, const struct cand *c, const struct cand *other,
           struct hearth_strbuf *t)
{
	int named = 0;

	hearth_strbuf_addf(t, "%s", c->r->title ? c->r->title : c->r->id);
	if (other && other->r != c->r)
		return;
	for (int i = 0; c->p && i < c->p->nsteps; i++) {
		const struct hearth_step *st = &c->p->steps[i];
		const struct hearth_device *d;
		bool shared = false;

		for (int j = 0; other && other->p && j < other->p->nsteps; j++)
			shared = shared || !strcmp(other->p->steps[j].device, st->device);
		if (shared)
			continue;
		d = hearth_context_device(o->ctx, st->device);
		hearth_strbuf_addf(t, "%s%s", named++ ? " and " : " with ",
		                   d ? dev_label(d) : st->device);
	}
}

/* One sentence: why the winner beat the runner-up (its biggest weighted edge). */
static void
why_chosen(const hearth_orch *o, const struct cand *win, const struct cand *next,
           struct hearth_strbuf *t)
{
	int best = -1;
	double edge = 1e-9;

	for (int d = 0; d < HEARTH_SCORE_N; d++) {
		double e = o->scoring.weights[d] * (win->u[d] - next->u[d]);

		if (e > edge) {
			edge = e;
			best = d;
		}
	}
	hearth_strbuf_addf(t, "Chosen over ");
	cand_label(o, next, win, t);
	hearth_strbuf_addf(t, " (score %.2f against %.2f)", win->total, next->total);
	switch (best) {
	case HEARTH_SCORE_LATENCY:
		if (win->est_ms < 0.5)
			hearth_strbuf_addf(t,
			                   ": it is already done, where the other would take "
			                   "about %.0f ms",
			                   next->est_ms);
		else
			hearth_strbuf_addf(t,
			                   ": it should be done sooner (about %.0f ms against %.0f "
			                   "ms)",
			                   win->est_ms, next->est_ms);
		break;
	case HEARTH_SCORE_FRICTION:
		hearth_strbuf_addf(t, ": it asks for fewer approvals (%d against %d)",
		                   win->approvals, next->approvals);
		break;
	case HEARTH_SCORE_COMFORT:
		hearth_strbuf_addf(t, ": it fits what this home has preferred before");
		break;
	case HEARTH_SCORE_PRIVACY:
		hearth_strbuf_addf(t, ": it uses fewer sensitive kinds of data (%d against %d)",
		                   win->sensitive, next->sensitive);
		break;
	case HEARTH_SCORE_ENERGY:
		hearth_strbuf_addf(t, ": it draws less power (about %.0f W against %.0f W)",
		                   win->watts, next->watts);
		break;
	default:
		hearth_strbuf_addf(t, ": the scores are equal, so the first in the recipe book's "
		                      "order goes");
		break;
	}
	hearth_strbuf_addf(t, ". ");
}

/* ==== Risk and approval ==== */

#define HEAT_CAP_C 24.0 /* a heating setpoint above it is medium risk */

/* The risk of one acting step, and a few words saying why (for the rationale). */
static enum hearth_risk
step_risk(const hearth_orch *o, const struct hearth_step *st, char *why, size_t wl)
{
	const struct hearth_device *d = hearth_context_device(o->ctx, st->device);
	const char *label = d ? dev_label(d) : st->device;
	const cJSON *v;

	if (st->state == HEARTH_STEP_SKIPPED)
		return HEARTH_RISK_LOW;
	if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(st->args, "locked"))) {
		snprintf(why, wl, "it unlocks %s", label);
		return HEARTH_RISK_HIGH;
	}
	v = cJSON_GetObjectItemCaseSensitive(st->args, "position");
	if (cJSON_IsNumber(v) && v->valuedouble > 0 && d && d->kind &&
	    (!strcmp(d->kind, "garage") || !strcmp(d->kind, "gate"))) {
		snprintf(why, wl, "it opens %s", label);
		return HEARTH_RISK_HIGH;
	}
	v = cJSON_GetObjectItemCaseSensitive(st->args, "setpoint");
	if (cJSON_IsNumber(v) && v->valuedouble > HEAT_CAP_C) {
		snprintf(why, wl, "it heats %s to %g °C, above %g °C", label, v->valuedouble,
		         HEAT_CAP_C);
		return HEARTH_RISK_MEDIUM;
	}
	return HEARTH_RISK_LOW;
}

/*
 * Does the candidate need the owner's approval, and does a standing
 * pre-approval cover it? Sets p->risk, needs_approval, preapproved,
 * approval_scope, c->approvals (requests it will make: 0 or 1) and a
 * rationale sentence. Returns 0, or 1 when the candidate cannot run (c->code
 * set: its recipe never asks, or -ENOMEM with c->code NULL).
 */
static int
decide_approval(hearth_orch *o, struct cand *c, const hearth_now *now)
{
	struct hearth_policy_env env = {.ctx = o->ctx, .local_minute = now->local_minute};
	struct hearth_plan *p = c->p;
	const cJSON *room = cJSON_GetObjectItemCaseSensitive(p->slots, "room");
	char why[160] = "", by[HEARTH_ID_MAX + 1] = "";
	bool pre = false, acting = false;

	p->risk = HEARTH_RISK_LOW;
	for (int i = 0; i < p->nsteps; i++) {
		acting = acting || p->steps[i].state != HEARTH_STEP_SKIPPED;
		char w[160];
		const char *rule = NULL;
		enum hearth_risk rk = step_risk(o, &p->steps[i], w, sizeof(w));

		if (p->steps[i].state != HEARTH_STEP_SKIPPED &&
		    (rk = hearth_policy_risk(o->rules, &env, &p->steps[i], rk, &rule), rule)) {
			const struct hearth_device *d =
			        hearth_context_device(o->ctx, p->steps[i].device);

			snprintf(w, sizeof(w), "rule %s makes %s (%s) %s risk", rule,
			         d ? dev_label(d) : p->steps[i].device, p->steps[i].id,
			         hearth_risk_name(rk));
		}

		if (rk > p->risk) {
			p->risk = rk;
			memcpy(why, w, sizeof(why));
		}
	}
	if (c->approvals > 0 && p->risk < HEARTH_RISK_MEDIUM) {
		p->risk = HEARTH_RISK_MEDIUM;
		snprintf(why, sizeof(why), "a hard rule asks for it");
	}
	if (c->r->approval == HEARTH_APPROVAL_ALWAYS && !why[0])
		snprintf(why, sizeof(why), "its recipe always asks");
	/* a plan with nothing to do asks nobody */
	p->needs_approval =
	        acting && (c->r->approval == HEARTH_APPROVAL_ALWAYS || p->risk > HEARTH_RISK_LOW);
	c->approvals = 0;
	if (!p->needs_approval)
		return 0;
	if (c->r->approval == HEARTH_APPROVAL_NEVER) {
		c->code = "forbidden";
		snprintf(c->why, sizeof(c->why),
		         "%s would need the owner's approval (%s, risk %s), and its recipe never "
		         "asks for one",
		         c->r->id, why, hearth_risk_name(p->risk));
		return 1;
	}
	snprintf(p->approval_scope, sizeof(p->approval_scope), "recipe:%s%s%.64s", c->r->id,
	         cJSON_IsString(room) ? "/room:" : "",
	         cJSON_IsString(room) ? room->valuestring : "");
	if (o->mem.preapproved)
		pre = o->mem.preapproved(o->mem.ud, p->approval_scope, by, sizeof(by));
	/* High risk is never learned: only the owner's own standing grant covers it. */
	if (pre && p->risk == HEARTH_RISK_HIGH && strcmp(by, "owner"))
		pre = false;
	if (pre) {
		p->preapproved = true;
		hearth_strbuf_addf(
		        &c->notes,
		        "Pre-approved: it would need the owner's approval (%s, risk %s), "
		        "and the standing pre-approval of %s (set by %s) covers it. ",
		        why, hearth_risk_name(p->risk), p->approval_scope, by[0] ? by : "?");
	} else {
		c->approvals = 1;
		hearth_strbuf_addf(
		        &c->notes,
		        "Needs the owner's approval: %s (risk %s); nothing is done before "
		        "it. ",
		        why, hearth_risk_name(p->risk));
	}
	return c->notes.oom ? 1 : 0;
}

/* ==== Candidates ==== */

/* Findings for a candidate expected to miss its recipe's targets. */
static int
over_targets(struct cand *c)
{
	char buf[200];

	if (c->r->target_latency_ms > 0 && c->est_ms > c->r->target_latency_ms) {
		snprintf(buf, sizeof(buf),
		         "it should take about %.0f ms, over the recipe's target of %d ms",
		         c->est_ms, c->r->target_latency_ms);
		if (finding(c->p, &c->notes, "over_target", "Over target", buf))
			return -ENOMEM;
	}
	if (c->r->target_max_approvals >= 0 && c->approvals > c->r->target_max_approvals) {
		snprintf(buf, sizeof(buf),
		         "it asks for %d approval%s, over the recipe's target of %d", c->approvals,
		         c->approvals == 1 ? "" : "s", c->r->target_max_approvals);
		if (finding(c->p, &c->notes, "over_target", "Over target", buf))
			return -ENOMEM;
	}
	return 0;
}

/* Build c (c->r and c->pick set, c->p holding the slots): bind, rules,
 * critique, dependencies, score. 0 (c->ok says whether it may run), or
 * -ENOMEM. */
static int
build_cand(hearth_orch *o, struct cand *c, const hearth_now *now)
{
	int rc = bind_steps(o, c->r, c->p, c->pick, &c->notes, c->why, sizeof(c->why));

	if (rc == -ENOMEM || c->notes.oom)
		return -ENOMEM;
	if (rc) {
		c->code = rc == HEARTH_E_TOO_LARGE ? "too_large" : "bad_request";
		return 0;
	}
	if (c->p->nsteps == 0) {
		c->code = "no_devices";
		snprintf(c->why, sizeof(c->why), "%s: no device %s can carry out any step%s%s",
		         c->r->id, c->notes.len ? "that is online" : "here",
		         c->notes.len ? ". " : "", c->notes.buf ? c->notes.buf : "");
		return 0;
	}
	rc = apply_policy(o, c->p, c->r->approval != HEARTH_APPROVAL_NEVER, now, &c->notes,
	                  &c->approvals, c->why, sizeof(c->why));
	if (rc < 0)
		return rc;
	if (rc) {
		c->code = "forbidden";
		return 0;
	}
	if (decide_approval(o, c, now))
		return c->code ? 0 : -ENOMEM;
	if (critique(o, c->r, c->p, &c->notes))
		return -ENOMEM;
	link_after(c->r, c->p);
	c->ok = true;
	score(o, c);
	return over_targets(c);
}

/* A new candidate for r in c[*n], its plan holding a copy of slots. */
static struct cand *
new_cand(struct cand *c, int *n, const struct hearth_recipe *r, const cJSON *slots,
         const char *const *pick)
{
	struct cand *k;

	if (*n >= CAND_MAX)
		return NULL;
	k = &c[(*n)++];
	k->r = r;
	k->variant_step = -1;
	memcpy(k->pick, pick, sizeof(k->pick));
	k->p = hearth_plan_new(CONFIG_HEARTH_MAX_PLAN_STEPS);
	if (k->p)
		k->p->slots = cJSON_Duplicate(slots, 1);
	return k;
}

/*
 * The candidates of one recipe: the base binding (each "pick": "one" step on
 * its first usable device) and, for each such step, one variant per other
 * usable device. 0 or -ENOMEM.
 */
static int
recipe_cands(hearth_orch *o, const struct hearth_recipe *r, const cJSON *slots,
             const hearth_now *now, struct cand *c, int *n)
{
	const struct hearth_device *devs[CONFIG_HEARTH_MAX_PLAN_STEPS];
	const char *base[CONFIG_HEARTH_MAX_PLAN_STEPS] = {0};
	struct cand *k;
	int first = *n;

	for (int i = 0; i < r->nsteps && i < CONFIG_HEARTH_MAX_PLAN_STEPS; i++) {
		const struct hearth_recipe_step *rs = &r->steps[i];
		int m;

		if (!rs->pick_one)
			continue;
		m = hearth_context_select(o->ctx, resolve_room(rs, slots), rs->cap, rs->kind, devs,
		                          CONFIG_HEARTH_MAX_PLAN_STEPS);
		for (int j = 0; j < m && j < CONFIG_HEARTH_MAX_PLAN_STEPS && !base[i]; j++)
			if (usable(o, devs[j]))
				base[i] = devs[j]->id;
	}
	k = new_cand(c, n, r, slots, base);
	if (!k)
		return 0;
	if (!k->p || !k->p->slots || build_cand(o, k, now))
		return -ENOMEM;
	for (int i = 0; i < r->nsteps && i < CONFIG_HEARTH_MAX_PLAN_STEPS; i++) {
		const struct hearth_recipe_step *rs = &r->steps[i];
		int m;

		if (!rs->pick_one || !base[i])
			continue;
		m = hearth_context_select(o->ctx, resolve_room(rs, slots), rs->cap, rs->kind, devs,
		                          CONFIG_HEARTH_MAX_PLAN_STEPS);
		for (int j = 0; j < m && j < CONFIG_HEARTH_MAX_PLAN_STEPS; j++) {
			const char *pick[CONFIG_HEARTH_MAX_PLAN_STEPS];

			if (!usable(o, devs[j]) || devs[j]->id == base[i])
				continue;
			memcpy(pick, c[first].pick, sizeof(pick));
			pick[i] = devs[j]->id;
			k = new_cand(c, n, r, slots, pick);
			if (!k)
				return 0;
			k->variant_step = i;
			if (!k->p || !k->p->slots || build_cand(o, k, now))
				return -ENOMEM;
		}
	}
	return 0;
}

static bool
serves(const struct hearth_recipe *r, const char *intent)
{
	for (int j = 0; j < r->nintents; j++)
		if (!strcmp(r->intents[j], intent))
			return true;
	return false;
}

/* ==== Intents ==== */

static int
opt_id_field(const cJSON *b, const char *key, char *dst, size_t len, char *why, size_t wl)
{
	const char *s;
	int rc = hearth_json_get_str(b, key, &s);

	if (rc == -ENOENT)
		return 0;
	if (rc || strlen(s) == 0 || strlen(s) >= len) {
		snprintf(why, wl, "%s must be a string of 1-%zu characters", key, len - 1);
		return HEARTH_E_INVALID;
	}
	snprintf(dst, len, "%s", s);
	return 0;
}

static void
on_intent(hearth_orch *o, hearth_msg *m, const hearth_now *now, const hearth_outbox *out)
{
	const struct hearth_recipe *recipes[CAND_MAX];
	const char *intent = NULL, *text = NULL;
	struct hearth_plan *p = NULL;
	struct hearth_strbuf rationale = {0};
	struct hearth_match match;
	struct cand *c = NULL, *ranked[CAND_MAX], *win;
	char why[512], source[HEARTH_ID_MAX + 1] = "", user[HEARTH_ID_MAX + 1] = "";
	const cJSON *slots;
	bool preview = false;
	int rc, nr = 0, n = 0, nranked = 0;

	/* Shape: the runtime checked it is an object and took the id. */
	rc = hearth_json_get_str(m->body, "intent", &intent);
	if (rc && rc != -ENOENT) {
		hearth_orch_refuse(m, "bad_request", "intent must be a string", out);
		return;
	}
	rc = hearth_json_get_str(m->body, "text", &text);
	if (rc && rc != -ENOENT) {
		hearth_orch_refuse(m, "bad_request", "text must be a string", out);
		return;
	}
	if (!intent && !text) {
		hearth_orch_refuse(m, "bad_request", "an intent needs \"intent\" or \"text\"", out);
		return;
	}
	slots = cJSON_GetObjectItemCaseSensitive(m->body, "slots");
	if (slots && !cJSON_IsObject(slots) && !cJSON_IsNull(slots)) {
		hearth_orch_refuse(m, "bad_request", "slots must be an object", out);
		return;
	}
	if (!intent && hearth_matcher_match(o->matcher, text, &match) == 0) {
		/* text: the best sentence of the book; explicit slots override */
		const cJSON *given = cJSON_IsObject(slots) ? slots : NULL, *s;

		intent = match.intent;
		cJSON_ArrayForEach(s, given)
		{
			cJSON *dup = cJSON_Duplicate(s, 1);

			cJSON_DeleteItemFromObjectCaseSensitive(match.slots, s->string);
			if (dup)
				cJSON_AddItemToObject(match.slots, s->string, dup);
		}
		cJSON_DeleteItemFromObjectCaseSensitive(m->body, "slots");
		cJSON_AddItemToObject(m->body, "slots", match.slots); /* the body owns it */
		slots = match.slots;
	}
	if (!intent) {
		snprintf(why, sizeof(why),
		         "no recipe matches the text \"%.80s\"; send a structured \"intent\"",
		         text);
		hearth_orch_refuse(m, "no_match", why, out);
		return;
	}
	for (int i = 0; o->book && i < hearth_recipe_book_count(o->book) && nr < CAND_MAX; i++)
		if (serves(hearth_recipe_book_at(o->book, i), intent))
			recipes[nr++] = hearth_recipe_book_at(o->book, i);
	if (!nr) {
		snprintf(why, sizeof(why), "no recipe serves the intent \"%.64s\"", intent);
		hearth_orch_refuse(m, "no_match", why, out);
		return;
	}
	if (opt_id_field(m->body, "source", source, sizeof(source), why, sizeof(why)) ||
	    opt_id_field(m->body, "user", user, sizeof(user), why, sizeof(why))) {
		hearth_orch_refuse(m, "bad_request", why, out);
		return;
	}
	rc = hearth_json_get_bool(m->body, "preview", &preview);
	if (rc && rc != -ENOENT) {
		hearth_orch_refuse(m, "bad_request", "preview must be true or false", out);
		return;
	}
	c = hearth_calloc(CAND_MAX, sizeof(*c));
	if (!c) {
		hearth_orch_refuse(m, "internal", "out of memory", out);
		return;
	}
	why[0] = '\0';
	for (int k = 0; k < nr; k++) {
		const struct hearth_recipe *r = recipes[k];
		cJSON *sl = NULL;
		char swhy[256];

		rc = resolve_slots(r, cJSON_IsObject(slots) ? slots : NULL, &sl, swhy,
		                   sizeof(swhy));
		if (rc == -ENOMEM)
			goto oom;
		if (rc) { /* this recipe cannot serve these slots; another may */
			if (!why[0])
				snprintf(why, sizeof(why), "%s", swhy);
			continue;
		}
		for (int i = 0; i < r->nslots; i++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(sl, r->slots[i].name);

			if (!strcmp(r->slots[i].type, "room") && cJSON_IsString(v) &&
			    !hearth_context_room_known(o->ctx, v->valuestring)) {
				snprintf(why, sizeof(why), "no device is known in room \"%.64s\"",
				         v->valuestring);
				cJSON_Delete(sl);
				hearth_orch_refuse(m, "unknown_room", why, out);
				goto done;
			}
		}
		rc = recipe_cands(o, r, sl, now, c, &n);
		cJSON_Delete(sl);
		if (rc)
			goto oom;
	}
	if (n == 0) {
		hearth_orch_refuse(m, "bad_request", why, out);
		goto done;
	}
	/* Rank: best total first; a stable insertion keeps the book's order on ties. */
	for (int i = 0; i < n; i++) {
		int j = nranked++;

		if (!c[i].ok) {
			nranked--;
			continue;
		}
		while (j > 0 && ranked[j - 1]->total < c[i].total) {
			ranked[j] = ranked[j - 1];
			j--;
		}
		ranked[j] = &c[i];
	}
	if (nranked == 0) {
		hearth_orch_refuse(m, c[0].code, c[0].why, out);
		goto done;
	}
	win = ranked[0];
	p = win->p;
	if (nranked > 1)
		why_chosen(o, win, ranked[1], &win->notes);
	p->alternatives = alternatives_json(o, ranked, nranked, c, n);
	p->score = score_json(o, win);
	win->p = NULL;
	p->t_received = now->mono_ms;
	p->wall_received = now->wall_ms;
	snprintf(p->intent_id, sizeof(p->intent_id), "%s", m->id);
	snprintf(p->intent, sizeof(p->intent), "%s", intent);
	snprintf(p->recipe, sizeof(p->recipe), "%s", win->r->id);
	snprintf(p->recipe_version, sizeof(p->recipe_version), "%s", win->r->version);
	p->run_mode = (int)win->r->mode;
	p->run_max = win->r->max > 0 ? win->r->max : 1;
	memcpy(p->policy_hash, o->policy_hash, sizeof(p->policy_hash));
	snprintf(p->id, sizeof(p->id), "p-%llx-%lu", (unsigned long long)now->wall_ms, ++o->seq);
	memcpy(p->source, source, sizeof(p->source));
	memcpy(p->user, user, sizeof(p->user));
	p->preview = preview;
	write_rationale(o, win->r, p, &rationale, win->notes.buf);
	if (rationale.oom || win->notes.oom || !p->alternatives || !p->score)
		goto oom;
	p->rationale = rationale.buf;
	rationale.buf = NULL;
	if (p->needs_approval && !p->preapproved && !p->preview)
		p->state = HEARTH_PLAN_AWAITING_APPROVAL; /* the approval agent takes it */
	p->reply = m->reply;
	memset(&m->reply, 0, sizeof(m->reply));
	if (p->preview) {
		hearth_msg reply = {.type = HEARTH_MSG_INTENT_REPLY};

		p->state = HEARTH_PLAN_PREVIEWED;
		memcpy(reply.id, p->intent_id, sizeof(reply.id));
		reply.body = hearth_plan_reply_json(p);
		reply.reply = p->reply;
		memset(&p->reply, 0, sizeof(p->reply));
		hearth_post(out, &reply);
		goto done;
	}
	{
		hearth_msg pm = {.type = HEARTH_MSG_PLAN};

		memcpy(pm.id, p->id, sizeof(pm.id));
		pm.plan = p;
		p = NULL;
		hearth_post(out, &pm);
	}
	goto done;
oom:
	hearth_orch_refuse(m, "internal", "out of memory", out);
done:
	for (int i = 0; c && i < n; i++) {
		hearth_plan_free(c[i].p);
		hearth_strbuf_free(&c[i].notes);
	}
	hearth_free(c);
	hearth_free(rationale.buf);
	hearth_plan_free(p);
}

void
hearth_orch_handle(hearth_orch *o, hearth_msg *m, const hearth_now *now, const hearth_outbox *out)
{
	if (m->type == HEARTH_MSG_INTENT)
		on_intent(o, m, now, out);
}
