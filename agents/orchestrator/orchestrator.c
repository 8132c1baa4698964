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

/* Fill the plan's steps from the recipe; notes go into the rationale. */
static int
bind_steps(hearth_orch *o, const struct hearth_recipe *r, struct hearth_plan *p,
           struct hearth_strbuf *why_text, char *why, size_t wl)
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
 * are clamped, and the rationale notes say which rule did it. There is no
 * approval flow yet, so an approval_lifts rule is as hard as the others
 * (can_approve false). A plan the rules empty is refused ("forbidden").
 * Returns 0 to go on, or 1 when the intent was refused.
 */
static int
apply_policy(hearth_orch *o, hearth_msg *m, struct hearth_plan *p, const hearth_now *now,
             struct hearth_strbuf *notes, const hearth_outbox *out)
{
	struct hearth_policy_env env = {
	        .ctx = o->ctx, .local_minute = now->local_minute, .can_approve = false};
	struct hearth_policy_result res;
	char why[512];
	int rc;

	rc = hearth_policy_apply(o->rules, &env, p, &res);
	if (rc) {
		hearth_policy_result_clear(&res);
		hearth_orch_refuse(m, "internal", "out of memory", out);
		return 1;
	}
	if (p->nsteps == 0) {
		snprintf(why, sizeof(why), "every step is forbidden by the hard rules: %s",
		         res.notes ? res.notes : "");
		hearth_policy_result_clear(&res);
		hearth_orch_refuse(m, "forbidden", why, out);
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
 * not waited for. Transitive edges are kept (harmless to the resource agent).
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
	const struct hearth_recipe *r;
	const char *intent = NULL, *text = NULL;
	struct hearth_plan *p = NULL;
	struct hearth_strbuf rationale = {0}, notes = {0};
	struct hearth_match match;
	const cJSON *slots;
	char why[256];
	int rc;

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
	r = hearth_recipe_book_find(o->book, intent);
	if (!r) {
		snprintf(why, sizeof(why), "no recipe serves the intent \"%.64s\"", intent);
		hearth_orch_refuse(m, "no_match", why, out);
		return;
	}
	p = hearth_plan_new(CONFIG_HEARTH_MAX_PLAN_STEPS);
	if (!p) {
		hearth_orch_refuse(m, "internal", "out of memory", out);
		return;
	}
	p->t_received = now->mono_ms;
	p->wall_received = now->wall_ms;
	snprintf(p->intent_id, sizeof(p->intent_id), "%s", m->id);
	snprintf(p->intent, sizeof(p->intent), "%s", intent);
	snprintf(p->recipe, sizeof(p->recipe), "%s", r->id);
	snprintf(p->recipe_version, sizeof(p->recipe_version), "%s", r->version);
	p->run_mode = (int)r->mode;
	p->run_max = r->max > 0 ? r->max : 1;
	memcpy(p->policy_hash, o->policy_hash, sizeof(p->policy_hash));
	snprintf(p->id, sizeof(p->id), "p-%llx-%lu", (unsigned long long)now->wall_ms, ++o->seq);
	if ((rc = opt_id_field(m->body, "source", p->source, sizeof(p->source), why,
	                       sizeof(why))) ||
	    (rc = opt_id_field(m->body, "user", p->user, sizeof(p->user), why, sizeof(why)))) {
		hearth_orch_refuse(m, "bad_request", why, out);
		goto done;
	}
	rc = hearth_json_get_bool(m->body, "preview", &p->preview);
	if (rc && rc != -ENOENT) {
		hearth_orch_refuse(m, "bad_request", "preview must be true or false", out);
		goto done;
	}
	rc = resolve_slots(r, cJSON_IsObject(slots) ? slots : NULL, &p->slots, why, sizeof(why));
	if (rc) {
		hearth_orch_refuse(m, rc == -ENOMEM ? "internal" : "bad_request",
		                   rc == -ENOMEM ? "out of memory" : why, out);
		goto done;
	}
	for (int i = 0; i < r->nslots; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(p->slots, r->slots[i].name);

		if (!strcmp(r->slots[i].type, "room") && cJSON_IsString(v) &&
		    !hearth_context_room_known(o->ctx, v->valuestring)) {
			snprintf(why, sizeof(why), "no device is known in room \"%.64s\"",
			         v->valuestring);
			hearth_orch_refuse(m, "unknown_room", why, out);
			goto done;
		}
	}
	rc = bind_steps(o, r, p, &notes, why, sizeof(why));
	if (rc) {
		hearth_orch_refuse(m, rc == HEARTH_E_TOO_LARGE ? "too_large" : "internal",
		                   rc == -ENOMEM ? "out of memory" : why, out);
		goto done;
	}
	if (p->nsteps == 0) {
		snprintf(why, sizeof(why), "%s: no device %s can carry out any step%s%s", r->id,
		         notes.len ? "that is online" : "here", notes.len ? ". " : "",
		         notes.buf ? notes.buf : "");
		hearth_orch_refuse(m, "no_devices", why, out);
		goto done;
	}
	if (apply_policy(o, m, p, now, &notes, out))
		goto done;
	if (critique(o, r, p, &notes)) {
		hearth_orch_refuse(m, "internal", "out of memory", out);
		goto done;
	}
	link_after(r, p);
	write_rationale(o, r, p, &rationale, notes.buf);
	if (rationale.oom) {
		hearth_orch_refuse(m, "internal", "out of memory", out);
		goto done;
	}
	p->rationale = rationale.buf;
	rationale.buf = NULL;
	if (r->approval == HEARTH_APPROVAL_ALWAYS && !p->preview) {
		/* DESIGN 5: nothing of a plan that needs approval runs before a
		 * valid one. The phone approval flow is not built yet, so such a
		 * plan is refused (a preview still shows it). */
		snprintf(why, sizeof(why),
		         "%s needs the owner's approval, and this hub cannot ask for one yet: "
		         "nothing was done",
		         r->id);
		hearth_orch_refuse(m, "forbidden", why, out);
		goto done;
	}
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
done:
	hearth_free(rationale.buf);
	hearth_free(notes.buf);
	hearth_plan_free(p);
}

void
hearth_orch_handle(hearth_orch *o, hearth_msg *m, const hearth_now *now, const hearth_outbox *out)
{
	if (m->type == HEARTH_MSG_INTENT)
		on_intent(o, m, now, out);
}
