/*
 * orchestrator.h - the orchestration agent: an INTENT in, a plan out.
 *
 * It checks the intent, finds the recipe that serves it, resolves the slots,
 * expands each recipe step to the devices of the home that match it (read
 * from the context agent's registry), drops what already holds, and writes
 * the rationale. A preview is answered at once (INTENT_REPLY); otherwise the
 * plan goes to the resource agent (PLAN). Refusals answer with an error
 * reply and an ERROR message.
 */
#ifndef HEARTH_AGENTS_ORCHESTRATOR_H
#define HEARTH_AGENTS_ORCHESTRATOR_H

#include "agents/context/context.h"
#include "agents/msg.h"
#include "recipes/recipe.h"

typedef struct hearth_orch hearth_orch;

/* book and ctx are borrowed and must outlive the agent. */
int hearth_orch_new(const hearth_recipe_book *book, const hearth_context *ctx, hearth_orch **out);
void hearth_orch_free(hearth_orch *o);
/* The policy hash (SHA-256 hex of the hard rules in force) that every plan
 * from now on records; "" when none is known. */
void hearth_orch_set_policy_hash(hearth_orch *o, const char *hash);
/* The hard rules in force (constraint memory's array; NULL: none), copied:
 * every plan from now on is checked against them (policy.h) after binding.
 * 0 or -ENOMEM (the old rules stay). */
int hearth_orch_set_rules(hearth_orch *o, const cJSON *rules);
/* The runtime can drive devices of this transport ("mqtt" always; "coap",
 * "z2m", "ha" when their bindings run). Devices of other transports are left
 * out of plans, and the rationale says so. At most 8. */
void hearth_orch_allow_transport(hearth_orch *o, const char *transport);
/* Swap the recipe book (after a reload); the old one is the caller's. */
void hearth_orch_set_book(hearth_orch *o, const hearth_recipe_book *book);
void hearth_orch_handle(hearth_orch *o, hearth_msg *m, const hearth_now *now,
                        const hearth_outbox *out);

/* Post an error reply {"id","error","detail"} to the intent's reply address
 * (which is moved out of m) and the same on the error topic. */
void hearth_orch_refuse(hearth_msg *m, const char *code, const char *detail,
                        const hearth_outbox *out);

#endif
