/*
 * resource.c - running plans (see resource.h).
 *
 * A step's life: pending -> dispatched -> confirmed (or -> failed after its
 * retries). A plan completes when no step is pending or dispatched and none
 * failed. When a step fails the plan compensates: every step that changed a
 * device (and may be undone) gets a command back to the captured values; a
 * step is compensated when the device reports them. The plan ends
 * compensated, or failed when some device could not be put back.
 *
 * Plans live in an array of pointers; the loops over it are short because
 * plans finish in seconds and a home runs a handful at a time.
 */
#include "agents/resource/resource.h"

#include "agents/plan.h"
#include "platform/alloc.h"
#include "platform/json.h"
#include "platform/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CONFIRM_EPS 0.5 /* numbers confirm within half a unit (brightness 30 vs 30.2) */

struct hearth_resource {
	struct hearth_resource_opts opts;
	const hearth_context *ctx;
	struct hearth_plan **plans;
	int n, cap;
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

/* ==== Output ==== */

/* The plan's journal entry: its current form, or NULL once it ended. */
static void
post_journal(const struct hearth_plan *p, bool ended, const hearth_outbox *out)
{
	hearth_msg m = {.type = HEARTH_MSG_JOURNAL};

	memcpy(m.id, p->id, sizeof(m.id));
	if (!ended && !(m.body = hearth_plan_journal_json(p)))
		return;
	hearth_post(out, &m);
}

/* Every change of a plan is journaled and published. */
static void
post_event(const struct hearth_plan *p, const hearth_now *now, const hearth_outbox *out)
{
	hearth_msg m = {.type = HEARTH_MSG_PLAN_EVENT};

	if (!hearth_plan_state_terminal(p->state))
		post_journal(p, false, out);
	memcpy(m.id, p->id, sizeof(m.id));
	m.body = hearth_plan_event_json(p, now->wall_ms);
	if (m.body)
		hearth_post(out, &m);
}

static void
post_reply(struct hearth_plan *p, const hearth_outbox *out)
{
	hearth_msg m = {.type = HEARTH_MSG_INTENT_REPLY};

	memcpy(m.id, p->intent_id, sizeof(m.id));
	m.body = hearth_plan_reply_json(p);
	m.reply = p->reply; /* the reply is sent once: the address moves with it */
	memset(&p->reply, 0, sizeof(p->reply));
	if (m.body)
		hearth_post(out, &m);
	else
		hearth_reply_clear(&m.reply);
}

static void
send_command(struct hearth_plan *p, struct hearth_step *st, const cJSON *values,
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
	hearth_post(out, &m);
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
dispatch(hearth_resource *r, struct hearth_plan *p, struct hearth_step *st, const hearth_now *now,
         const hearth_outbox *out)
{
	const struct hearth_device *d = hearth_context_device(r->ctx, st->device);

	if (!st->undoing && !st->prev && d) {
		/* Capture what the device shows before its first command. */
		const cJSON *a;

		st->prev = cJSON_CreateObject();
		cJSON_ArrayForEach(a, st->args)
		{
			const cJSON *v =
			        d->state ? cJSON_GetObjectItemCaseSensitive(d->state, a->string)
			                 : NULL;

			if (st->prev && v)
				cJSON_AddItemToObject(st->prev, a->string, cJSON_Duplicate(v, 1));
		}
	}
	st->attempts++;
	st->retry_wait = false;
	st->deadline = now->mono_ms + st->timeout_ms;
	if (!st->undoing)
		st->state = HEARTH_STEP_DISPATCHED;
	send_command(p, st, target_values(st), now, out);
	if (st->optimistic || reported(d, target_values(st))) {
		st->state = st->undoing ? HEARTH_STEP_COMPENSATED : HEARTH_STEP_CONFIRMED;
		st->undoing = false;
	}
}

/* The pending steps that can never run, because a step they wait for failed
 * or can never run itself (bit i: step i). Steps wait for earlier steps only. */
static uint64_t
doomed_steps(const struct hearth_plan *p)
{
	uint64_t doomed = 0, failed = 0;

	for (int i = 0; i < p->nsteps && i < 64; i++) {
		const struct hearth_step *st = &p->steps[i];

		if (st->state == HEARTH_STEP_FAILED)
			failed |= UINT64_C(1) << i;
		else if (st->state == HEARTH_STEP_PENDING && (st->after & (failed | doomed)))
			doomed |= UINT64_C(1) << i;
	}
	return doomed;
}

static bool
bit(uint64_t mask, int i)
{
	return i < 64 && (mask & (UINT64_C(1) << i));
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
 * confirmed or skipped? */
static bool
deps_wait(const struct hearth_plan *p, int i)
{
	for (int k = 0; k < p->nsteps && k < 64; k++)
		if ((p->steps[i].after & (UINT64_C(1) << k)) &&
		    p->steps[k].state != HEARTH_STEP_CONFIRMED &&
		    p->steps[k].state != HEARTH_STEP_SKIPPED)
			return true;
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

static void
set_reason(struct hearth_plan *p, const char *text)
{
	if (!p->reason) /* the first cause is the one that matters */
		p->reason = hearth_strdup(text);
}

static void
finish(hearth_resource *r, struct hearth_plan *p, enum hearth_plan_state state,
       const hearth_now *now, const hearth_outbox *out)
{
	hearth_msg ep = {.type = HEARTH_MSG_EPISODE};
	p->state = state;
	LOG_INFO("resource", "plan %s (%s) %s", p->id, p->intent, hearth_plan_state_name(state));
	post_event(p, now, out);
	post_journal(p, true, out); /* gone in the same commit as the episode */
	memcpy(ep.id, p->id, sizeof(ep.id));
	ep.body = hearth_plan_episode_json(p, now);
	if (ep.body)
		hearth_post(out, &ep);
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
			hearth_free(st->note);
			st->note = hearth_strdup("not run: the plan could not finish");
			continue;
		}
		if (st->state == HEARTH_STEP_DISPATCHED) {
			/* Sent but unconfirmed when the plan stopped: it may have landed. */
			st->state = HEARTH_STEP_FAILED;
			hearth_free(st->note);
			st->note = hearth_strdup("stopped unconfirmed: the plan could not finish");
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
			if (st->state == HEARTH_STEP_CONFIRMED) {
				hearth_free(st->note);
				st->note = hearth_strdup(
				        "left changed: its state before was never reported");
			}
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

/* Move p forward: dispatch what is ready, notice the end. Returns true when
 * p reached a terminal state. */
static bool
advance(hearth_resource *r, struct hearth_plan *p, const hearth_now *now, const hearth_outbox *out)
{
	bool open = false, failed = false, left = false;
	uint64_t doomed = doomed_steps(p);

	for (int i = 0; i < p->nsteps; i++) {
		struct hearth_step *st = &p->steps[i];

		if (p->state == HEARTH_PLAN_RUNNING && st->state == HEARTH_STEP_PENDING &&
		    !device_busy(p, i, doomed) && !deps_wait(p, i))
			dispatch(r, p, st, now, out);
		else if (p->state == HEARTH_PLAN_COMPENSATING && st->undoing && st->attempts == 0 &&
		         !undo_waits(p, i))
			dispatch(r, p, st, now, out);
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
		return advance(r, p, now, out);
	}
	/* Compensating and nothing open: did every undo land? */
	if (left)
		say_left(p);
	finish(r, p, left ? HEARTH_PLAN_FAILED : HEARTH_PLAN_COMPENSATED, now, out);
	return true;
}

static void
remove_plan(hearth_resource *r, int i)
{
	hearth_plan_free(r->plans[i]);
	r->plans[i] = r->plans[--r->n];
}

/* ==== Messages ==== */

static void
on_plan(hearth_resource *r, hearth_msg *m, const hearth_now *now, const hearth_outbox *out)
{
	struct hearth_plan *p = m->plan;

	m->plan = NULL;
	if (r->n >= r->opts.max_plans) {
		hearth_msg refuse = {.type = HEARTH_MSG_INTENT_REPLY};
		char detail[96];

		snprintf(detail, sizeof(detail),
		         "%d plans are running, the most this hub runs at once", r->n);
		hearth_post_error(out, "busy", "intent", detail);
		memcpy(refuse.id, p->intent_id, sizeof(refuse.id));
		refuse.body = cJSON_CreateObject();
		cJSON_AddStringToObject(refuse.body, "id", p->intent_id);
		cJSON_AddStringToObject(refuse.body, "error", "busy");
		cJSON_AddStringToObject(refuse.body, "detail", detail);
		refuse.reply = p->reply;
		memset(&p->reply, 0, sizeof(p->reply));
		hearth_post(out, &refuse);
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
	p->state = HEARTH_PLAN_RUNNING;
	r->plans[r->n++] = p;
	/* Commands first (they are what the home feels), then the reply. */
	bool done = advance(r, p, now, out);

	if (!done)
		post_event(p, now, out);
	post_reply(p, out);
	if (done)
		remove_plan(r, r->n - 1);
}

static void
on_device_changed(hearth_resource *r, hearth_msg *m, const hearth_now *now,
                  const hearth_outbox *out)
{
	const struct hearth_device *d = hearth_context_device(r->ctx, m->id);

	for (int i = 0; i < r->n;) {
		struct hearth_plan *p = r->plans[i];
		bool changed = false;

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
				hearth_free(st->note);
				st->note = hearth_strdup(note);
				set_reason(p, note);
				if (!st->undoing)
					st->state = HEARTH_STEP_FAILED;
				st->undoing = false;
				changed = true;
			} else if (reported(d, target_values(st))) {
				st->state = st->undoing ? HEARTH_STEP_COMPENSATED
				                        : HEARTH_STEP_CONFIRMED;
				st->undoing = false;
				changed = true;
			}
		}
		if (changed && advance(r, p, now, out)) {
			remove_plan(r, i);
			continue;
		}
		if (changed)
			post_event(p, now, out);
		i++;
	}
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

int64_t
hearth_resource_next_deadline(const hearth_resource *r)
{
	int64_t next = INT64_MAX;

	for (int i = 0; i < r->n; i++) {
		const struct hearth_plan *p = r->plans[i];

		for (int j = 0; j < p->nsteps; j++) {
			const struct hearth_step *st = &p->steps[j];

			if ((st->state == HEARTH_STEP_DISPATCHED ||
			     (st->undoing && st->attempts)) &&
			    st->deadline < next)
				next = st->deadline;
		}
	}
	return next;
}

void
hearth_resource_tick(hearth_resource *r, const hearth_now *now, const hearth_outbox *out)
{
	for (int i = 0; i < r->n;) {
		struct hearth_plan *p = r->plans[i];
		bool changed = false;

		for (int j = 0; j < p->nsteps; j++) {
			struct hearth_step *st = &p->steps[j];

			if (!(st->state == HEARTH_STEP_DISPATCHED ||
			      (st->undoing && st->attempts)) ||
			    st->deadline > now->mono_ms)
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
			char note[224];

			snprintf(note, sizeof(note), "%s did not confirm step %s after %d attempts",
			         st->device, st->id, st->attempts);
			hearth_free(st->note);
			st->note = hearth_strdup(note);
			set_reason(p, note);
			if (!st->undoing)
				st->state = HEARTH_STEP_FAILED;
			st->undoing = false;
		}
		if (changed && advance(r, p, now, out)) {
			remove_plan(r, i);
			continue;
		}
		if (changed)
			post_event(p, now, out);
		i++;
	}
}

void
hearth_resource_restore(hearth_resource *r, struct hearth_plan *p, const hearth_now *now,
                        const hearth_outbox *out)
{
	/* Taking a plan up again (re-checking dispatched steps against the
	 * devices, compensating past the deadline) is the resource agent's
	 * restart semantics, still to come. Until then an interrupted plan is
	 * closed, so it reaches a terminal state and an episode. */
	for (int i = 0; i < p->nsteps; i++) {
		struct hearth_step *st = &p->steps[i];

		if (st->state == HEARTH_STEP_PENDING || st->state == HEARTH_STEP_DISPATCHED) {
			st->state = HEARTH_STEP_FAILED;
			if (!st->note)
				st->note = hearth_strdup("interrupted: hearthd stopped");
		}
		st->undoing = false;
	}
	hearth_free(p->reason);
	p->reason = hearth_strdup("interrupted: hearthd stopped while the plan ran");
	p->t_received = now->mono_ms;
	finish(r, p, HEARTH_PLAN_FAILED, now, out);
	hearth_plan_free(p);
}
