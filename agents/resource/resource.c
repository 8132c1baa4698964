/*
 * resource.c - running plans (see resource.h).
 *
 * A step's life: pending -> dispatched -> confirmed (or -> failed after its
 * retries, or -> rebound when an equivalent device takes it over). A plan
 * completes when no step is pending or dispatched and none failed. When a
 * step fails the plan compensates: every step that changed a device (and may
 * be undone) gets a command back to the captured values; a step is
 * compensated when the device reports them. The plan ends compensated, or
 * failed when some device could not be put back.
 *
 * Reservations: a plan holds the devices of its steps until it ends. Plans
 * live in an array of pointers in the order they were accepted (restored
 * plans first, by the time their intent arrived); a step waits while an
 * earlier plan holds its device, so plans never wait for each other in a
 * circle. Runs of one recipe (for one room) follow the recipe's run mode.
 * The loops over the array are short because plans finish in seconds and a
 * home runs a handful at a time.
 */
#include "agents/resource/resource.h"

#include "agents/plan.h"
#include "platform/alloc.h"
#include "platform/json.h"
#include "platform/log.h"
#include "recipes/capability.h"
#include "recipes/recipe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CONFIRM_EPS 0.5 /* numbers confirm within half a unit (brightness 30 vs 30.2) */
#define MAX_STEPS   64  /* the after / doomed bitmasks */

struct hearth_resource {
	struct hearth_resource_opts opts;
	const hearth_context *ctx;
	struct hearth_plan **plans; /* in acceptance order */
	int n, cap;
	unsigned long changes; /* commands sent and notes set: a plan event is due */
};

int
hearth_resource_new(const struct hearth_resource_opts *opts, const hearth_context *ctx,
                    hearth_resource **out)
{
	hearth_resource *r = hearth_calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->opts = *opts;
	if (r->opts.max_plans <= 0)
		r->opts.max_plans = 1;
	r->ctx = ctx;
	*out = r;
	return 0;
}

void
hearth_resource_free(hearth_resource *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->n; i++)
		hearth_plan_free(r->plans[i]);
	hearth_free(r->plans);
	hearth_free(r);
}

int
hearth_resource_active(const hearth_resource *r)
{
	return r->n;
}

const char *
hearth_resource_holder(const hearth_resource *r, const char *device)
{
	for (int i = 0; i < r->n; i++) {
		const struct hearth_plan *p = r->plans[i];

		if (hearth_plan_state_terminal(p->state))
			continue;
		for (int k = 0; k < p->nsteps; k++)
			if (!strcmp(p->steps[k].device, device))
				return p->id;
	}
	return NULL;
}

int
hearth_resource_resuming(const hearth_resource *r)
{
	int k = 0;

	for (int i = 0; i < r->n; i++)
		k += r->plans[i]->resuming;
	return k;
}

/* ==== Output ==== */

static void
post_journal(const struct hearth_plan *p, bool ended, const hearth_outbox *out)
{
	hearth_plan_post_journal(p, ended, out);
}

/* Every change of a plan is journaled and published. */
static void
post_event(const struct hearth_plan *p, const hearth_now *now, const hearth_outbox *out)
{
	if (!hearth_plan_state_terminal(p->state))
		hearth_plan_post_journal(p, false, out);
	hearth_plan_post_event(p, now, out);
}

/* The intent's reply; none for a plan answered when it began to wait for an
 * approval (p->replied). */
static void
post_reply(struct hearth_plan *p, const hearth_outbox *out)
{
	hearth_plan_post_reply(p, out);
}

/* Refuse p: the intent's reply and <p>/error carry code and detail. */
static void
refuse(struct hearth_plan *p, const char *code, const char *detail, const hearth_outbox *out)
{
	hearth_msg m = {.type = HEARTH_MSG_INTENT_REPLY};

	hearth_post_error(out, code, "intent", detail);
	memcpy(m.id, p->intent_id, sizeof(m.id));
	m.body = cJSON_CreateObject();
	cJSON_AddStringToObject(m.body, "id", p->intent_id);
	cJSON_AddStringToObject(m.body, "intent", p->intent);
	cJSON_AddStringToObject(m.body, "error", code);
	cJSON_AddStringToObject(m.body, "detail", detail);
	m.reply = p->reply;
	memset(&p->reply, 0, sizeof(p->reply));
	hearth_post(out, &m);
	hearth_plan_free(p);
}

/* Wall ms since p's intent arrived: the offsets of the step timelines. */
static int64_t
since(const struct hearth_plan *p, const hearth_now *now)
{
	int64_t d = now->wall_ms - p->wall_received;

	return d > 0 ? d : 0;
}

static void
send_command(hearth_resource *r, struct hearth_plan *p, struct hearth_step *st, const cJSON *values,
             const hearth_now *now, const hearth_outbox *out)
{
	hearth_msg m = {.type = HEARTH_MSG_DEVICE_COMMAND};

	memcpy(m.id, st->device, sizeof(m.id));
	m.body = cJSON_Duplicate(values, 1);
	if (!m.body)
		return; /* the step times out and is retried */
	cJSON_AddStringToObject(m.body, "plan_id", p->id);
	cJSON_AddStringToObject(m.body, "intent_id", p->intent_id);
	cJSON_AddStringToObject(m.body, "step", st->id);
	if (st->undoing)
		cJSON_AddTrueToObject(m.body, "compensation");
	hearth_post(out, &m);
	r->changes++;
	if (!p->t_first_command)
		p->t_first_command = now->mono_ms;
}

/* ==== Step logic ==== */

static bool
reported(const struct hearth_device *d, const cJSON *values)
{
	const cJSON *v;

	if (!d || !d->state)
		return false;
	cJSON_ArrayForEach(v, values)
	{
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(d->state, v->string);

		if (!s || !hearth_json_value_equal(v, s, CONFIRM_EPS))
			return false;
	}
	return true;
}

/* Values the command of st sets now: its args, or the captured ones when undoing. */
static const cJSON *
target_values(const struct hearth_step *st)
{
	return st->undoing ? st->prev : st->args;
}

static void
set_note(struct hearth_step *st, const char *text)
{
	hearth_free(st->note);
	st->note = hearth_strdup(text);
}

/* st reached a new state: record when, in its timeline. */
static void
mark(struct hearth_plan *p, struct hearth_step *st, enum hearth_step_state s, const hearth_now *now)
{
	int64_t t = since(p, now);

	st->state = s;
	switch (s) {
	case HEARTH_STEP_CONFIRMED:
		st->ms_confirmed = t;
		break;
	case HEARTH_STEP_FAILED:
		st->ms_failed = t;
		break;
	case HEARTH_STEP_REBOUND:
		st->ms_rebound = t;
		break;
	case HEARTH_STEP_COMPENSATED:
		st->ms_compensated = t;
		break;
	default:
		break;
	}
}

/* The device reports what st commanded: it is confirmed (or compensated). */
static void
landed(struct hearth_plan *p, struct hearth_step *st, const hearth_now *now)
{
	mark(p, st, st->undoing ? HEARTH_STEP_COMPENSATED : HEARTH_STEP_CONFIRMED, now);
	st->undoing = false;
}

static void
dispatch(hearth_resource *r, struct hearth_plan *p, struct hearth_step *st, const hearth_now *now,
         const hearth_outbox *out)
{
	const struct hearth_device *d = hearth_context_device(r->ctx, st->device);

	if (!st->undoing && d && d->state) {
		/* Capture what the device shows before its first command (values
		 * handed over by a replaced plan are kept). */
		const cJSON *a;

		if (!st->prev)
			st->prev = cJSON_CreateObject();
		cJSON_ArrayForEach(a, st->args)
		{
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(d->state, a->string);

			if (st->prev && v && !cJSON_HasObjectItem(st->prev, a->string))
				cJSON_AddItemToObject(st->prev, a->string, cJSON_Duplicate(v, 1));
		}
	}
	st->attempts++;
	st->retry_wait = false;
	st->deadline = now->mono_ms + st->timeout_ms;
	st->ms_sent = since(p, now);
	if (!st->undoing) {
		st->state = HEARTH_STEP_DISPATCHED;
		if (st->ms_dispatched < 0)
			st->ms_dispatched = st->ms_sent;
	}
	hearth_free(st->note); /* a "waiting for" note is over */
	st->note = NULL;
	send_command(r, p, st, target_values(st), now, out);
	if (st->optimistic || (d && d->online != 0 && reported(d, target_values(st))))
		landed(p, st, now);
}

/* The step that finally stands for step k: k itself, or the end of its
 * chain of rebindings. */
static int
final_step(const struct hearth_plan *p, int k)
{
	for (int hops = 0; hops < p->nsteps && p->steps[k].state == HEARTH_STEP_REBOUND &&
	                   p->steps[k].rebound_to > k && p->steps[k].rebound_to < p->nsteps;
	     hops++)
		k = p->steps[k].rebound_to;
	return k;
}

static bool
bit(uint64_t mask, int i)
{
	return i < MAX_STEPS && (mask & (UINT64_C(1) << i));
}

/* The pending steps that can never run, because a step they wait for failed
 * (itself or through its replacement) or can never run itself (bit i: step
 * i). Steps wait for earlier steps only. */
static uint64_t
doomed_steps(const struct hearth_plan *p)
{
	uint64_t doomed = 0, failed = 0;

	for (int i = 0; i < p->nsteps && i < MAX_STEPS; i++)
		if (p->steps[final_step(p, i)].state == HEARTH_STEP_FAILED)
			failed |= UINT64_C(1) << i;
	for (int i = 0; i < p->nsteps && i < MAX_STEPS; i++) {
		const struct hearth_step *st = &p->steps[i];

		if (st->state == HEARTH_STEP_PENDING && (st->after & (failed | doomed)))
			doomed |= UINT64_C(1) << i;
	}
	return doomed;
}

/* Is an earlier step of p on the same device still open (doomed ones will
 * never run and do not count)? */
static bool
device_busy(const struct hearth_plan *p, int upto, uint64_t doomed)
{
	const struct hearth_step *st = &p->steps[upto];

	for (int i = 0; i < upto; i++)
		if (!strcmp(p->steps[i].device, st->device) && !bit(doomed, i) &&
		    (p->steps[i].state == HEARTH_STEP_PENDING ||
		     p->steps[i].state == HEARTH_STEP_DISPATCHED || p->steps[i].undoing))
			return true;
	return false;
}

/* Does step i wait for a step it depends on (after) that is not yet
 * confirmed or skipped (itself or through its replacement)? */
static bool
deps_wait(const struct hearth_plan *p, int i)
{
	for (int k = 0; k < p->nsteps && k < MAX_STEPS; k++) {
		const struct hearth_step *dep = &p->steps[final_step(p, k)];

		if ((p->steps[i].after & (UINT64_C(1) << k)) &&
		    dep->state != HEARTH_STEP_CONFIRMED && dep->state != HEARTH_STEP_SKIPPED)
			return true;
	}
	return false;
}

/* While compensating, undo a device's steps last first: each captured the
 * values just before its own command. Does a later undo on the device wait? */
static bool
undo_waits(const struct hearth_plan *p, int i)
{
	for (int j = i + 1; j < p->nsteps; j++)
		if (!strcmp(p->steps[j].device, p->steps[i].device) && p->steps[j].undoing)
			return true;
	return false;
}

static bool
step_open(const struct hearth_step *st)
{
	return st->state == HEARTH_STEP_PENDING || st->state == HEARTH_STEP_DISPATCHED ||
	       st->undoing;
}

/* Does st hold its device: open, or done and still to be undone if the plan
 * cannot finish? */
static bool
step_holds(const struct hearth_step *st)
{
	return step_open(st) ||
	       ((st->state == HEARTH_STEP_CONFIRMED || st->state == HEARTH_STEP_FAILED) &&
	        st->compensate);
}

/* A plan that may hold devices: accepted, not queued, not ended. */
static bool
plan_live(const struct hearth_plan *p)
{
	return p->state == HEARTH_PLAN_RUNNING || p->state == HEARTH_PLAN_COMPENSATING;
}

static bool
plan_has_device(const struct hearth_plan *p, const char *dev, bool holding)
{
	for (int i = 0; i < p->nsteps; i++)
		if (!strcmp(p->steps[i].device, dev) && (!holding || step_holds(&p->steps[i])))
			return true;
	return false;
}

/* The plan before index upto (or any other than skip when upto is r->n)
 * that holds dev, or NULL. */
static const struct hearth_plan *
holder(const hearth_resource *r, int upto, const struct hearth_plan *skip, const char *dev)
{
	for (int i = 0; i < upto && i < r->n; i++)
		if (r->plans[i] != skip && plan_live(r->plans[i]) &&
		    plan_has_device(r->plans[i], dev, true))
			return r->plans[i];
	return NULL;
}

static void
set_reason(struct hearth_plan *p, const char *text)
{
	if (!p->reason) /* the first cause is the one that matters */
		p->reason = hearth_strdup(text);
}

/* Add a sentence to the plan's rationale. */
static void
add_rationale(struct hearth_plan *p, const char *sentence)
{
	size_t a = p->rationale ? strlen(p->rationale) : 0, b = strlen(sentence);
	char *t = hearth_malloc(a + b + 2);

	if (!t)
		return;
	if (a) {
		memcpy(t, p->rationale, a);
		t[a++] = ' ';
	}
	memcpy(t + a, sentence, b + 1);
	hearth_free(p->rationale);
	p->rationale = t;
}

static void
finish(hearth_resource *r, struct hearth_plan *p, enum hearth_plan_state state,
       const hearth_now *now, const hearth_outbox *out)
{
	p->state = state;
	LOG_INFO("resource", "plan %s (%s) %s", p->id, p->intent, hearth_plan_state_name(state));
	post_event(p, now, out);
	post_journal(p, true, out); /* gone in the same commit as the episode */
	hearth_plan_post_episode(p, now, out);
}

/* Start compensating p: undo what changed. */
static void
compensate(hearth_resource *r, struct hearth_plan *p, const hearth_now *now,
           const hearth_outbox *out)
{
	p->state = HEARTH_PLAN_COMPENSATING;
	for (int i = 0; i < p->nsteps; i++) {
		struct hearth_step *st = &p->steps[i];
		const struct hearth_device *d;
		if (st->state == HEARTH_STEP_PENDING) {
			st->state = HEARTH_STEP_SKIPPED;
			set_note(st, "not run: the plan could not finish");
			continue;
		}
		if (st->state == HEARTH_STEP_DISPATCHED) {
			/* Sent but unconfirmed when the plan stopped: it may have landed. */
			mark(p, st, HEARTH_STEP_FAILED, now);
			set_note(st, "stopped unconfirmed: the plan could not finish");
		}
		if (st->state != HEARTH_STEP_CONFIRMED && st->state != HEARTH_STEP_FAILED)
			continue;
		if (!st->compensate)
			continue;
		d = hearth_context_device(r->ctx, st->device);
		if (d && d->online == 0) {
			/* Nothing can be known or done about a device that is gone. */
			if (!st->note &&
			    (st->state == HEARTH_STEP_CONFIRMED || (st->prev && st->prev->child)))
				st->note = hearth_strdup("offline: could not be put back");
			continue;
		}
		if (st->state == HEARTH_STEP_FAILED && st->prev && reported(d, st->prev)) {
			cJSON_Delete(st->prev); /* it never moved: nothing to undo */
			st->prev = NULL;
			continue;
		}
		if (!st->prev || !st->prev->child) {
			if (st->state == HEARTH_STEP_CONFIRMED)
				set_note(st, "left changed: its state before was never reported");
			continue;
		}
		st->undoing = true;
		st->attempts = 0;
	}
}

/* After compensation: does st leave its device changed? A confirmed step
 * did change it; a failed one may have, if something was captured to undo. */
static bool
still_changed(const struct hearth_step *st)
{
	if (!st->compensate)
		return false;
	if (st->state == HEARTH_STEP_CONFIRMED)
		return true;
	return st->state == HEARTH_STEP_FAILED && st->prev && st->prev->child;
}

/* The plan ends failed: say which devices were left changed, then the cause. */
static void
say_left(struct hearth_plan *p)
{
	char buf[512];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "could not put back:");
	for (int i = 0; i < p->nsteps && n < sizeof(buf); i++) {
		bool named = false;

		for (int j = 0; j < i; j++)
			named = named || (still_changed(&p->steps[j]) &&
			                  !strcmp(p->steps[j].device, p->steps[i].device));
		if (still_changed(&p->steps[i]) && !named)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s", p->steps[i].device);
	}
	if (n < sizeof(buf) && p->reason)
		snprintf(buf + n, sizeof(buf) - n, " (after: %s)", p->reason);
	hearth_free(p->reason);
	p->reason = hearth_strdup(buf);
}

static void step_lost(hearth_resource *r, int idx, int i, const char *what, const char *note,
                      const hearth_now *now);

/* Move plan idx forward: dispatch what is ready (and what no earlier plan
 * holds), notice the end. Returns true when it reached a terminal state. */
static bool
advance(hearth_resource *r, int idx, const hearth_now *now, const hearth_outbox *out)
{
	struct hearth_plan *p = r->plans[idx];
	bool open = false, failed = false, left = false;
	uint64_t doomed;

	if (p->resuming || p->state == HEARTH_PLAN_QUEUED)
		return false;
	doomed = doomed_steps(p);
	for (int i = 0; i < p->nsteps; i++) {
		struct hearth_step *st = &p->steps[i];

		if (p->state == HEARTH_PLAN_RUNNING && st->state == HEARTH_STEP_PENDING &&
		    !device_busy(p, i, doomed) && !deps_wait(p, i)) {
			const struct hearth_plan *h = holder(r, idx, NULL, st->device);
			const struct hearth_device *d = hearth_context_device(r->ctx, st->device);

			if (!h && d && d->online == 0) {
				/* Feasibility: a command to a device known offline cannot
				 * land (it went away while the step waited its turn). */
				char note[192];

				snprintf(note, sizeof(note), "%s is offline: step %s not sent",
				         st->device, st->id);
				step_lost(r, idx, i, "is offline", note, now);
				p = r->plans[idx];
				r->changes++;
			} else if (!h) {
				dispatch(r, p, st, now, out);
			} else if (!st->note) {
				char note[192];

				snprintf(note, sizeof(note), "waiting for %s, in use by plan %s",
				         st->device, h->id);
				set_note(st, note);
				r->changes++;
			}
		} else if (p->state == HEARTH_PLAN_COMPENSATING && st->undoing &&
		           st->attempts == 0 && !undo_waits(p, i)) {
			dispatch(r, p, st, now, out);
		}
	}
	for (int i = 0; i < p->nsteps; i++) {
		const struct hearth_step *st = &p->steps[i];

		/* a step whose dependency failed will never run: not open */
		open = open ||
		       (step_open(st) && !(p->state == HEARTH_PLAN_RUNNING && bit(doomed, i)));
		failed = failed || st->state == HEARTH_STEP_FAILED;
		left = left || still_changed(st);
	}
	if (open)
		return false;
	if (p->state == HEARTH_PLAN_RUNNING && !failed) {
		finish(r, p, HEARTH_PLAN_COMPLETED, now, out);
		return true;
	}
	if (p->state == HEARTH_PLAN_RUNNING) {
		compensate(r, p, now, out);
		return advance(r, idx, now, out);
	}
	/* Compensating and nothing open: did every undo land? */
	if (left)
		say_left(p);
	finish(r, p, left ? HEARTH_PLAN_FAILED : HEARTH_PLAN_COMPENSATED, now, out);
	return true;
}

/* Forget plan i, keeping the others in their order. */
static void
remove_plan(hearth_resource *r, int i)
{
	hearth_plan_free(r->plans[i]);
	memmove(&r->plans[i], &r->plans[i + 1], (size_t)(r->n - i - 1) * sizeof(*r->plans));
	r->n--;
}

/* ==== Rebinding ==== */

/*
 * Step i of plan idx failed (no answer) or its device went offline: bind it
 * to an equivalent device, if one exists: same room, the step's capability
 * and every property it sets, online, not held by another plan, and not
 * already doing this step in this plan. The old step becomes rebound, a new
 * step on the other device joins the plan. Returns true when it did.
 */
static bool
rebind(hearth_resource *r, int idx, int i, const char *what, const hearth_now *now)
{
	struct hearth_plan *p = r->plans[idx];
	const struct hearth_device *old = hearth_context_device(r->ctx, p->steps[i].device);
	const struct hearth_device *devs[MAX_STEPS], *pick = NULL;
	struct hearth_step *steps, *st, *ns;
	char text[256];
	int k;

	if (p->state != HEARTH_PLAN_RUNNING || p->steps[i].undoing || p->nsteps >= MAX_STEPS ||
	    !old || !old->room)
		return false;
	k = hearth_context_select(r->ctx, old->room, p->steps[i].cap, NULL, devs, MAX_STEPS);
	for (int c = 0; c < k && c < MAX_STEPS && !pick; c++) {
		const struct hearth_device *d = devs[c];
		const cJSON *a;
		bool ok = d != old && d->has_meta && d->online == 1 && !holder(r, r->n, p, d->id);

		cJSON_ArrayForEach(a, p->steps[i].args) ok =
		        ok && hearth_capset_has_property(d->caps, a->string);
		for (int j = 0; ok && j < p->nsteps; j++)
			ok = strcmp(p->steps[j].device, d->id) ||
			     strcmp(p->steps[j].id, p->steps[i].id);
		if (ok)
			pick = d;
	}
	if (!pick)
		return false;
	steps = hearth_realloc(p->steps, (size_t)(p->nsteps + 1) * sizeof(*steps));
	if (!steps)
		return false;
	p->steps = steps;
	st = &p->steps[i];
	ns = &p->steps[p->nsteps];
	memset(ns, 0, sizeof(*ns));
	hearth_step_init(ns);
	ns->args = cJSON_Duplicate(st->args, 1);
	if (!ns->args)
		return false;
	memcpy(ns->id, st->id, sizeof(ns->id));
	snprintf(ns->device, sizeof(ns->device), "%s", pick->id);
	ns->cap = st->cap;
	ns->compensate = st->compensate;
	ns->optimistic = hearth_device_optimistic(pick);
	ns->timeout_ms = st->timeout_ms;
	ns->after = st->after;
	ns->state = HEARTH_STEP_PENDING;
	st->rebound_to = p->nsteps++;
	st->retry_wait = false;
	mark(p, st, HEARTH_STEP_REBOUND, now);
	snprintf(text, sizeof(text), "%s %s; %s was used instead.", st->device, what, pick->id);
	set_note(st, text);
	add_rationale(p, text);
	LOG_INFO("resource", "plan %s step %s: %s", p->id, st->id, text);
	return true;
}

/* Step i of plan idx will not be confirmed (what: "did not answer", "went
 * offline"): rebind it, or it fails with note. */
static void
step_lost(hearth_resource *r, int idx, int i, const char *what, const char *note,
          const hearth_now *now)
{
	struct hearth_plan *p = r->plans[idx];

	if (!p->steps[i].undoing && rebind(r, idx, i, what, now))
		return;
	p = r->plans[idx];
	set_note(&p->steps[i], note);
	set_reason(p, note);
	if (!p->steps[i].undoing)
		mark(p, &p->steps[i], HEARTH_STEP_FAILED, now);
	p->steps[i].undoing = false;
}

/* ==== Runs of a recipe ==== */

/* The room a plan runs in (its "room" slot), normalized, or "". */
static void
run_room(const struct hearth_plan *p, char *out, size_t len)
{
	const char *room = NULL;

	out[0] = '\0';
	if (!hearth_json_get_str(p->slots, "room", &room) && room)
		hearth_room_key(room, out, len);
}

/* Two plans are runs of the same thing: one recipe, one room. */
static bool
same_run(const struct hearth_plan *a, const struct hearth_plan *b)
{
	char ra[HEARTH_ID_MAX + 1], rb[HEARTH_ID_MAX + 1];

	if (strcmp(a->recipe, b->recipe))
		return false;
	run_room(a, ra, sizeof(ra));
	run_room(b, rb, sizeof(rb));
	return !strcmp(ra, rb);
}

/*
 * Plan q is replaced by np (run mode restart): its devices that np also
 * drives are handed over (not undone, their captured values go to np's
 * steps so np puts back what was there before q), the rest is compensated.
 */
static void
replace(hearth_resource *r, struct hearth_plan *q, struct hearth_plan *np, const hearth_now *now,
        const hearth_outbox *out)
{
	char text[192];

	for (int i = 0; i < q->nsteps; i++) {
		struct hearth_step *st = &q->steps[i];

		if (!plan_has_device(np, st->device, false) || st->state == HEARTH_STEP_SKIPPED ||
		    st->state == HEARTH_STEP_REBOUND || st->state == HEARTH_STEP_COMPENSATED)
			continue;
		for (int j = 0; st->prev && j < np->nsteps; j++) {
			struct hearth_step *ns = &np->steps[j];

			if (!strcmp(ns->device, st->device) && !ns->prev &&
			    ns->state == HEARTH_STEP_PENDING)
				ns->prev = cJSON_Duplicate(st->prev, 1);
		}
		snprintf(text, sizeof(text), "handed over to plan %s", np->id);
		if (st->state == HEARTH_STEP_PENDING || st->state == HEARTH_STEP_DISPATCHED)
			st->state = HEARTH_STEP_SKIPPED;
		st->compensate = false;
		st->undoing = false;
		set_note(st, text);
	}
	snprintf(text, sizeof(text), "replaced by plan %s (run mode restart)", np->id);
	hearth_free(q->reason);
	q->reason = hearth_strdup(text);
	compensate(r, q, now, out);
	snprintf(text, sizeof(text), "It replaces plan %s, which was still running.", q->id);
	add_rationale(np, text);
}

/* Does plan i of the array wait in a queue that can move now? */
static bool
queue_moves(const hearth_resource *r, int i)
{
	const struct hearth_plan *p = r->plans[i];

	if (p->state != HEARTH_PLAN_QUEUED || p->resuming)
		return false;
	for (int j = 0; j < r->n; j++)
		if (j != i && same_run(r->plans[j], p) &&
		    (plan_live(r->plans[j]) || (j < i && r->plans[j]->state == HEARTH_PLAN_QUEUED)))
			return false;
	return true;
}

/*
 * After anything changed: start queued runs whose turn came, move every
 * plan forward (a device another plan released may be free now), post an
 * event for each plan that sent something, forget ended plans. Plans that
 * changed before the call are in dirty (posted for, too).
 */
static void
sweep(hearth_resource *r, struct hearth_plan *const *dirty, int ndirty, const hearth_now *now,
      const hearth_outbox *out)
{
	bool again = true;

	for (int round = 0; again && round < 16; round++) {
		again = false;
		for (int i = 0; i < r->n; i++) {
			struct hearth_plan *p = r->plans[i];
			unsigned long before = r->changes;
			bool was_dirty = false;

			for (int k = 0; k < ndirty; k++)
				was_dirty = was_dirty || dirty[k] == p;
			if (queue_moves(r, i)) {
				p->state = HEARTH_PLAN_RUNNING;
				LOG_INFO("resource", "plan %s (%s): its turn came", p->id,
				         p->intent);
				r->changes++;
			}
			if (advance(r, i, now, out)) {
				remove_plan(r, i--);
				again = true; /* its devices are free */
				continue;
			}
			if (r->changes != before || (was_dirty && round == 0))
				post_event(p, now, out);
		}
		ndirty = 0;
	}
}

/* ==== Messages ==== */

static void
on_plan(hearth_resource *r, hearth_msg *m, const hearth_now *now, const hearth_outbox *out)
{
	struct hearth_plan *p = m->plan, *dirty[MAX_STEPS];
	int running = 0, queued = 0, ndirty = 0;
	const struct hearth_plan *first = NULL;
	char detail[256];

	m->plan = NULL;
	if (r->n >= r->opts.max_plans) {
		snprintf(detail, sizeof(detail),
		         "%d plans are running, the most this hub runs at once", r->n);
		refuse(p, "busy", detail, out);
		return;
	}
	for (int i = 0; i < r->n; i++) {
		if (!same_run(r->plans[i], p))
			continue;
		first = first ? first : r->plans[i];
		running += plan_live(r->plans[i]);
		queued += r->plans[i]->state == HEARTH_PLAN_QUEUED;
	}
	p->state = HEARTH_PLAN_RUNNING;
	switch (p->run_mode) {
	case HEARTH_MODE_RESTART:
		break;
	case HEARTH_MODE_QUEUED:
		if (running + queued >= (p->run_max > 0 ? p->run_max : 1)) {
			snprintf(
			        detail, sizeof(detail),
			        "%s has %d run(s) going or waiting, the most its run mode (queued, "
			        "max %d) allows",
			        p->recipe, running + queued, p->run_max);
			refuse(p, "queue_full", detail, out);
			return;
		}
		if (running + queued)
			p->state = HEARTH_PLAN_QUEUED;
		break;
	case HEARTH_MODE_PARALLEL:
		if (running + queued >= (p->run_max > 0 ? p->run_max : 1)) {
			snprintf(detail, sizeof(detail),
			         "%s is already running %d time(s), the most its run mode "
			         "(parallel, "
			         "max %d) allows",
			         p->recipe, running + queued, p->run_max);
			refuse(p, "already_running", detail, out);
			return;
		}
		break;
	default: /* single */
		if (first) {
			snprintf(detail, sizeof(detail),
			         "%s is already running (plan %s); its run mode is single",
			         p->recipe, first->id);
			refuse(p, "already_running", detail, out);
			return;
		}
		break;
	}
	if (r->n == r->cap) {
		int ncap = r->cap ? r->cap * 2 : 16;
		struct hearth_plan **np = hearth_realloc(r->plans, (size_t)ncap * sizeof(*np));

		if (!np) {
			refuse(p, "internal", "out of memory", out);
			return;
		}
		r->plans = np;
		r->cap = ncap;
	}
	if (p->run_mode == HEARTH_MODE_RESTART) {
		for (int i = 0; i < r->n && ndirty < MAX_STEPS; i++) {
			struct hearth_plan *q = r->plans[i];

			if (same_run(q, p) && q->state == HEARTH_PLAN_RUNNING) {
				LOG_INFO("resource", "plan %s (%s) replaced by %s", q->id,
				         q->intent, p->id);
				replace(r, q, p, now, out);
				dirty[ndirty++] = q;
			}
		}
	}
	r->plans[r->n++] = p;
	/* Commands first (they are what the home feels), then the reply. */
	if (advance(r, r->n - 1, now, out)) {
		post_reply(p, out);
		remove_plan(r, r->n - 1);
	} else {
		post_event(p, now, out);
		post_reply(p, out);
	}
	sweep(r, dirty, ndirty, now, out);
}

static void
on_device_changed(hearth_resource *r, hearth_msg *m, const hearth_now *now,
                  const hearth_outbox *out)
{
	const struct hearth_device *d = hearth_context_device(r->ctx, m->id);
	struct hearth_plan *dirty[MAX_STEPS];
	int ndirty = 0;

	for (int i = 0; i < r->n; i++) {
		struct hearth_plan *p = r->plans[i];
		bool changed = false;

		if (p->resuming || !plan_live(p))
			continue;
		for (int j = 0; j < p->nsteps; j++) {
			struct hearth_step *st = &p->steps[j];

			if (strcmp(st->device, m->id) || !step_open(st) ||
			    st->state == HEARTH_STEP_PENDING || (st->undoing && !st->attempts))
				continue;
			if (!m->flag) {
				/* Gone offline while we wait on it: no point retrying. */
				char note[192];

				snprintf(note, sizeof(note), "%s went offline during step %s",
				         m->id, st->id);
				step_lost(r, i, j, "went offline", note, now);
				p = r->plans[i];
				changed = true;
			} else if (reported(d, target_values(st))) {
				landed(p, st, now);
				changed = true;
			}
		}
		if (changed && ndirty < MAX_STEPS)
			dirty[ndirty++] = p;
	}
	if (ndirty)
		sweep(r, dirty, ndirty, now, out);
}

void
hearth_resource_handle(hearth_resource *r, hearth_msg *m, const hearth_now *now,
                       const hearth_outbox *out)
{
	switch (m->type) {
	case HEARTH_MSG_PLAN:
		if (m->plan)
			on_plan(r, m, now, out);
		break;
	case HEARTH_MSG_DEVICE_CHANGED:
		on_device_changed(r, m, now, out);
		break;
	default:
		break;
	}
}

/* ==== Time ==== */

static bool
step_timed(const struct hearth_step *st)
{
	return st->state == HEARTH_STEP_DISPATCHED || (st->undoing && st->attempts);
}

int64_t
hearth_resource_next_deadline(const hearth_resource *r)
{
	int64_t next = INT64_MAX;

	for (int i = 0; i < r->n; i++) {
		const struct hearth_plan *p = r->plans[i];

		if (p->resuming)
			continue;
		for (int j = 0; j < p->nsteps; j++) {
			const struct hearth_step *st = &p->steps[j];

			if (step_timed(st) && st->deadline < next)
				next = st->deadline;
		}
	}
	return next;
}

void
hearth_resource_tick(hearth_resource *r, const hearth_now *now, const hearth_outbox *out)
{
	struct hearth_plan *dirty[MAX_STEPS];
	int ndirty = 0;

	for (int i = 0; i < r->n; i++) {
		struct hearth_plan *p = r->plans[i];
		bool changed = false;

		if (p->resuming)
			continue;
		for (int j = 0; j < p->nsteps; j++) {
			struct hearth_step *st = &p->steps[j];
			char note[224];

			if (!step_timed(st) || st->deadline > now->mono_ms)
				continue;
			changed = true;
			if (st->retry_wait) {
				dispatch(r, p, st, now, out); /* the re-send */
				continue;
			}
			if (st->attempts <= r->opts.retries) {
				st->retry_wait = true;
				st->deadline = now->mono_ms +
				               ((int64_t)r->opts.backoff_ms << (st->attempts - 1));
				LOG_DEBUG("resource",
				          "plan %s step %s on %s: no confirmation, retry %d", p->id,
				          st->id, st->device, st->attempts);
				continue;
			}
			snprintf(note, sizeof(note), "%s did not confirm step %s after %d attempts",
			         st->device, st->id, st->attempts);
			step_lost(r, i, j, "did not answer", note, now);
			p = r->plans[i];
		}
		if (changed && ndirty < MAX_STEPS)
			dirty[ndirty++] = p;
	}
	if (ndirty)
		sweep(r, dirty, ndirty, now, out);
}

/* ==== Restart ==== */

void
hearth_resource_restore(hearth_resource *r, struct hearth_plan *p, const hearth_now *now,
                        const hearth_outbox *out)
{
	int at = 0;
	int64_t first = -1;

	if (p->state != HEARTH_PLAN_RUNNING && p->state != HEARTH_PLAN_COMPENSATING &&
	    p->state != HEARTH_PLAN_QUEUED) {
		/* Nothing else is journaled; close it rather than guess. */
		hearth_free(p->reason);
		p->reason = hearth_strdup("interrupted: found in an unexpected state");
		p->t_received = now->mono_ms;
		finish(r, p, HEARTH_PLAN_FAILED, now, out);
		hearth_plan_free(p);
		return;
	}
	if (r->n == r->cap) {
		int ncap = r->cap ? r->cap * 2 : 16;
		struct hearth_plan **np = hearth_realloc(r->plans, (size_t)ncap * sizeof(*np));

		if (!np) {
			hearth_plan_free(p);
			return;
		}
		r->plans = np;
		r->cap = ncap;
	}
	/* Latencies keep counting from the intent's arrival. */
	p->t_received = now->mono_ms - since(p, now);
	for (int i = 0; i < p->nsteps; i++)
		if (p->steps[i].ms_dispatched >= 0 &&
		    (first < 0 || p->steps[i].ms_dispatched < first))
			first = p->steps[i].ms_dispatched;
	p->t_first_command = first >= 0 ? p->t_received + first : 0;
	p->resuming = true;
	/* Restored plans come first, in the order their intents arrived. */
	while (at < r->n && r->plans[at]->resuming &&
	       r->plans[at]->wall_received <= p->wall_received)
		at++;
	memmove(&r->plans[at + 1], &r->plans[at], (size_t)(r->n - at) * sizeof(*r->plans));
	r->plans[at] = p;
	r->n++;
}

int64_t
hearth_resource_deadline_ms(const hearth_resource *r, const struct hearth_plan *p)
{
	int64_t budget = 0;

	for (int i = 0; i < p->nsteps; i++)
		budget += (int64_t)p->steps[i].timeout_ms * (r->opts.retries + 1);
	return p->wall_received + budget;
}

/* Take plan idx up again, from what the devices show now. */
static void
resume_one(hearth_resource *r, int idx, const hearth_now *now, const hearth_outbox *out)
{
	struct hearth_plan *p = r->plans[idx];

	p->resuming = false;
	if (p->state == HEARTH_PLAN_RUNNING && now->wall_ms > hearth_resource_deadline_ms(r, p)) {
		LOG_WARN("resource", "plan %s (%s) is past its deadline: compensating", p->id,
		         p->intent);
		set_reason(p, "past its deadline when hearthd restarted");
		compensate(r, p, now, out);
		return;
	}
	for (int j = 0; j < p->nsteps; j++) {
		struct hearth_step *st = &p->steps[j];
		const struct hearth_device *d = hearth_context_device(r->ctx, st->device);
		char note[224];

		if (!(st->state == HEARTH_STEP_DISPATCHED || (st->undoing && st->attempts)))
			continue;
		if (d && d->online == 1 && reported(d, target_values(st))) {
			landed(p, st, now); /* it landed before the restart */
		} else if (d && d->online == 0) {
			snprintf(note, sizeof(note), "%s is offline after the restart (step %s)",
			         st->device, st->id);
			step_lost(r, idx, j, "went offline", note, now);
			p = r->plans[idx];
		} else {
			dispatch(r, p, st, now, out); /* with its full timeout again */
		}
	}
}

void
hearth_resource_resume(hearth_resource *r, const hearth_now *now, const hearth_outbox *out)
{
	struct hearth_plan *dirty[MAX_STEPS];
	int ndirty = 0;

	for (int i = 0; i < r->n; i++) {
		if (!r->plans[i]->resuming)
			continue;
		LOG_INFO("resource", "plan %s (%s): resumed", r->plans[i]->id, r->plans[i]->intent);
		resume_one(r, i, now, out);
		if (ndirty < MAX_STEPS)
			dirty[ndirty++] = r->plans[i];
	}
	sweep(r, dirty, ndirty, now, out);
}
