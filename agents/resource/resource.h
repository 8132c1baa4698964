/*
 * resource.h - the resource-allocation agent: it runs plans.
 *
 * It takes a PLAN from the orchestrator, captures each device's values
 * before its first command, dispatches steps in order (steps on one device
 * one after another, other steps in parallel) as DEVICE_COMMAND messages,
 * confirms each step when the device's state reports the commanded values
 * (DEVICE_CHANGED), retries a step that does not confirm in time, and when a
 * plan cannot finish restores the captured values (compensation). Every
 * change is a PLAN_EVENT; the end of a plan is an EPISODE.
 *
 * A plan reserves the devices of its steps until it ends: a step whose
 * device an earlier plan holds waits (its note says for what). A second run
 * of a recipe in the same room follows the recipe's run mode: single
 * refuses it ("already_running"), restart replaces the running one (its
 * devices the new plan drives are handed over, the rest compensated),
 * queued keeps it waiting (state "queued", up to max runs in all, then
 * "queue_full"), parallel runs it alongside (up to max, then
 * "already_running"). A step that is not confirmed (retries exhausted) or
 * whose device goes offline is rebound to an equivalent device when there
 * is one (same room, same capability and properties, online, not held).
 *
 * Time: the agent has no timers. The runtime asks next_deadline() and calls
 * tick() when it passes.
 */
#ifndef HEARTH_AGENTS_RESOURCE_H
#define HEARTH_AGENTS_RESOURCE_H

#include "agents/context/context.h"
#include "agents/msg.h"

#include <stdint.h>

struct hearth_plan;

struct hearth_resource_opts {
	int retries;    /* re-sends of an unconfirmed step (DESIGN: 2) */
	int backoff_ms; /* wait before the first re-send; doubles each time */
	int max_plans;  /* plans running at once */
};

typedef struct hearth_resource hearth_resource;

/* ctx is borrowed and must outlive the agent. */
int hearth_resource_new(const struct hearth_resource_opts *opts, const hearth_context *ctx,
                        hearth_resource **out);
void hearth_resource_free(hearth_resource *r);
void hearth_resource_handle(hearth_resource *r, hearth_msg *m, const hearth_now *now,
                            const hearth_outbox *out);
/* Earliest mono ms at which tick() has work, or INT64_MAX. */
int64_t hearth_resource_next_deadline(const hearth_resource *r);
void hearth_resource_tick(hearth_resource *r, const hearth_now *now, const hearth_outbox *out);
/*
 * A plan found in the journal at start (it was running, compensating or
 * queued when hearthd stopped). Takes ownership of p. The plan is held,
 * untouched (no timeouts, no confirmations), until hearth_resource_resume:
 * the runtime calls that once the devices' current state has arrived.
 * Meanwhile it keeps its devices and its place before newer plans.
 */
void hearth_resource_restore(hearth_resource *r, struct hearth_plan *p, const hearth_now *now,
                             const hearth_outbox *out);
/*
 * Take the restored plans up again. Confirmed and skipped steps stay as they
 * are (never re-sent); a dispatched step is confirmed if its device now
 * reports the commanded values, fails (or is rebound) if its device is
 * offline, and is re-sent with its full timeout otherwise; an interrupted
 * compensation goes on the same way. A running plan past its deadline
 * (hearth_resource_deadline_ms) is compensated instead.
 */
void hearth_resource_resume(hearth_resource *r, const hearth_now *now, const hearth_outbox *out);
/* Restored plans still waiting for hearth_resource_resume. */
int hearth_resource_resuming(const hearth_resource *r);
/* Wall ms after which a restored running plan is not taken up again but
 * compensated: the intent's arrival plus, for every step, its timeout times
 * (retries + 1). */
int64_t hearth_resource_deadline_ms(const hearth_resource *r, const struct hearth_plan *p);
/* Plans not yet in a terminal state. */
int hearth_resource_active(const hearth_resource *r);
/* The id of the running plan that has a step on device (valid until the
 * agent's next message), or NULL. */
const char *hearth_resource_holder(const hearth_resource *r, const char *device);

#endif
