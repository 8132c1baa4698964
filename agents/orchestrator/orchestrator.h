/*
 * orchestrator.h - the orchestration agent: an INTENT in, a plan out.
 *
 * It checks the intent, finds the recipes that serve it, resolves the slots,
 * expands each recipe step to the devices of the home that match it (read
 * from the context agent's registry), drops what already holds, applies the
 * hard rules, critiques, scores the candidate plans (every serving recipe,
 * and every device a "pick": "one" step could use), keeps the best and
 * writes the rationale. A plan that needs the owner's approval (its recipe
 * says "always", a step is medium or high risk, or a hard rule lets an
 * approval lift it) and that no standing pre-approval covers goes out as a
 * PLAN in state awaiting_approval, for the approval agent (approval.h).
 * Risk: unlocking a lock and opening a garage or gate are high; a heating
 * setpoint above 24 °C is medium; everything else is low. A preview is answered at once (INTENT_REPLY); otherwise the
 * plan goes to the resource agent (PLAN). Refusals answer with an error
 * reply and an ERROR message.
 */
#ifndef HEARTH_AGENTS_ORCHESTRATOR_H
#define HEARTH_AGENTS_ORCHESTRATOR_H

#include "agents/context/context.h"
#include "agents/msg.h"
#include "recipes/recipe.h"

typedef struct hearth_orch hearth_orch;

/*
 * Scoring (DESIGN.md 1.3): every candidate plan gets a utility from 0 (worst)
 * to 1 (best) on each dimension, and its total is the weighted mean. The
 * candidate with the highest total is chosen; ties go to the earlier one
 * (the recipe book's order, then the first device). See docs/architecture.md.
 */
enum hearth_score_dim {
	HEARTH_SCORE_LATENCY,  /* target / (target + estimated ms to finish) */
	HEARTH_SCORE_FRICTION, /* 1 / (1 + approvals it will ask for) */
	HEARTH_SCORE_COMFORT,  /* learned preference for its recipe and devices; 0.5 unknown */
	HEARTH_SCORE_PRIVACY,  /* 1 / (1 + sensitive data classes it uses) */
	HEARTH_SCORE_ENERGY,   /* 100 / (100 + watts it switches on) */
	HEARTH_SCORE_N
};

/* "latency", "friction", ... */
const char *hearth_score_dim_name(enum hearth_score_dim d);

struct hearth_orch_scoring {
	double weights[HEARTH_SCORE_N]; /* each >= 0 */
	int alternatives;               /* candidates shown in a plan, 1..8 */
};

/*
 * What the planner reads from memory, through the runtime (the agent does no
 * I/O). Any function may be NULL.
 */
struct hearth_orch_memory {
	/* The device's learned latency (ms) and reliability (0..1); false when
	 * nothing is learned yet. */
	bool (*device)(void *ud, const char *device, double *latency_ms, double *reliability);
	/* How much the home prefers recipe (device NULL) or device for recipe,
	 * 0..1; negative when nothing is learned. */
	double (*preference)(void *ud, const char *recipe, const char *device);
	/* The running plan that holds device (its id, valid until the next
	 * message), or NULL. */
	const char *(*holder)(void *ud, const char *device);
	/* Does a standing pre-approval cover the consent scope ("recipe:<id>"
	 * or "recipe:<id>/room:<room>")? Who set it goes into by ("owner" when
	 * granted with hearthctl consent grant). */
	bool (*preapproved)(void *ud, const char *scope, char *by, size_t by_len);
	void *ud;
};

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
/* The weights and the number of alternatives (defaults: weights 1, 1, 1, 1,
 * 0.5 and 3 alternatives). */
void hearth_orch_set_scoring(hearth_orch *o, const struct hearth_orch_scoring *s);
/* Where learned statistics come from (copied; NULL: nothing learned). */
void hearth_orch_set_memory(hearth_orch *o, const struct hearth_orch_memory *m);
/* Swap the recipe book (after a reload); the old one is the caller's. */
void hearth_orch_set_book(hearth_orch *o, const hearth_recipe_book *book);
void hearth_orch_handle(hearth_orch *o, hearth_msg *m, const hearth_now *now,
                        const hearth_outbox *out);

/* Post an error reply {"id","error","detail"} to the intent's reply address
 * (which is moved out of m) and the same on the error topic. */
void hearth_orch_refuse(hearth_msg *m, const char *code, const char *detail,
                        const hearth_outbox *out);

#endif
