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
 * A plan found in the journal at start (it was running when hearthd
 * stopped). Takes ownership of p. For now the plan is closed: it ends
 * "failed" with the reason "interrupted", which posts its event, its episode
 * and the removal of its journal entry.
 */
void hearth_resource_restore(hearth_resource *r, struct hearth_plan *p, const hearth_now *now,
                             const hearth_outbox *out);
/* Plans not yet in a terminal state. */
int hearth_resource_active(const hearth_resource *r);
/* The id of the running plan that has a step on device (valid until the
 * agent's next message), or NULL. */
const char *hearth_resource_holder(const hearth_resource *r, const char *device);

#endif
