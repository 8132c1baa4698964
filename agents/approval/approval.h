/*
 * approval.h - the approval agent: plans that need the owner's approval wait
 * here (DESIGN.md sections 1.5, 4 "Approvals", 5).
 *
 * In: a PLAN whose state is HEARTH_PLAN_AWAITING_APPROVAL (the orchestrator
 * decided it needs one; p->risk, p->approval_scope set). The agent draws a
 * single-use 128-bit nonce (hooks.random), sets p->nonce and
 * p->approval_expires (now + opts.expiry_ms), and posts, in this order:
 * APPROVAL_REQUEST {"plan_id","summary","rationale","risk","nonce",
 * "expires_at"}, JOURNAL (the plan, with its nonce), PLAN_EVENT (state
 * awaiting_approval), INTENT_REPLY (the plan's reply, state
 * awaiting_approval; p->replied set), AUDIT {"event":"approval.requested",
 * "plan_id","recipe","risk"} and a friction count (SEMANTIC, below). Nothing
 * of the plan is dispatched. A PLAN in another state, or one whose approver
 * is set (one this agent approved, on its way to the resource agent), is
 * not taken. When no nonce can be drawn (hooks.random fails) the plan ends
 * "failed" at once: ERROR "internal", PLAN_EVENT, EPISODE, JOURNAL (NULL),
 * INTENT_REPLY.
 *
 * In: APPROVAL_RESPONSE (id: the plan id of the topic; body the response
 * {"decision":"approve"|"deny","approver","nonce","ts","mac"}). Checked in
 * this order, the first failure wins; each failure posts an ERROR with its
 * code and an AUDIT {"event":"approval.rejected","plan_id","approver"
 * (when a valid id),"reason": code} and changes nothing:
 *   bad_request   not the shape above (missing or mistyped field, decision
 *                 not approve/deny, approver not an id, nonce not 32
 *                 lowercase hex digits, mac not 64 lowercase hex digits,
 *                 ts not a whole number)
 *   unknown_plan  no plan with that id awaits approval
 *   unknown_approver  hooks.key does not know the approver
 *   bad_mac       mac != HMAC-SHA256(key, plan_id "|" decision "|" nonce "|"
 *                 ts) as lowercase hex (compared in constant time)
 *   bad_nonce     the nonce is not this plan's (replayed or foreign)
 *   expired       now (wall) is past the plan's expires_at
 *   stale         ts is more than opts.ts_window_ms away from now (wall)
 * A valid "approve": p->approver set and the nonce cleared, JOURNAL (the
 * plan without its nonce: the used nonce leaves the store in the same commit),
 * AUDIT {"event":"approval.granted","plan_id","recipe","approver","risk"},
 * the approval counted (below), a tap (friction), and the plan posted as
 * PLAN (state running is set by the resource agent; a replay finds no plan:
 * unknown_plan). A valid "deny": the plan ends "denied" (reason "denied by
 * <approver>"): PLAN_EVENT, EPISODE, JOURNAL (NULL), AUDIT
 * {"event":"approval.denied",...}, then the denial counted and a tap.
 *
 * Expiry: tick() ends every plan past its expires_at as "expired" (reason
 * "no answer within N s"): PLAN_EVENT, EPISODE, JOURNAL (NULL), AUDIT
 * {"event":"approval.expired",...}.
 *
 * Learned pre-approval: the agent counts approvals per scope in semantic
 * memory, kind "approvals", name = p->approval_scope, value {"approved":n,
 * "denied":n} (read through hooks.counts, written as SEMANTIC). When a
 * scope of a low or medium risk plan reaches opts.preapprove_after approvals
 * with no denial, it posts CONSENT {"scope","standing":true,"by":approver}
 * and AUDIT {"event":"enhancement.preapproval","scope","approvals":n,
 * "by"}: later plans of that scope are pre-approved by the orchestrator.
 * High risk is never learned. A denial counts too (and blocks learning until
 * the counts are reset: `hearthctl consent revoke` removes them). A plan
 * without an approval_scope is not counted.
 *
 * Friction: SEMANTIC kind "friction", name "<year>-W<week>" (ISO week of
 * now.wall_ms, UTC), value {"requests":n,"taps":n,"preapproved":n}: a request
 * counts when it is posted, a tap for every valid response. The week's
 * record is read once through hooks.friction; the agent then counts on from
 * what it posted last (the store commits it only at the end of the turn). The
 * orchestrator's pre-approved runs are counted by hearth_approval_count_
 * preapproved() (the runtime calls it when such a plan is accepted).
 *
 * Restart: restore() takes a plan from the journal that was awaiting
 * approval: it waits again with the same nonce and expiry (or expires at
 * the next tick when that passed, or when it has no nonce). One that was
 * approved (approver set) but never reached the resource agent ends
 * "failed" at once: its approval was spent.
 */
#ifndef HEARTH_AGENTS_APPROVAL_H
#define HEARTH_AGENTS_APPROVAL_H

#include "agents/msg.h"

#include <stddef.h>
#include <stdint.h>

struct hearth_plan;

struct hearth_approval_opts {
	int expiry_ms;        /* how long a request waits (default 120000) */
	int ts_window_ms;     /* accepted |now - ts| of a response (default 300000) */
	int preapprove_after; /* K approvals with no denial (default 3; 0: never learn) */
};

struct hearth_approval_hooks {
	/* The approver's 32-byte key; 0, or non-zero when unknown. */
	int (*key)(void *ud, const char *approver, uint8_t key[32]);
	/* n random bytes into buf; 0 or non-zero on failure. */
	int (*random)(void *ud, void *buf, size_t n);
	/* The committed counts of a scope (0, 0 when none). */
	void (*counts)(void *ud, const char *scope, int *approved, int *denied);
	/* The committed friction record of a week (zeros when none). */
	void (*friction)(void *ud, const char *week, int *requests, int *taps, int *preapproved);
	void *ud;
};

typedef struct hearth_approval hearth_approval;

/* opts and hooks are copied (expiry_ms or ts_window_ms <= 0: the default).
 * key and random are required, counts and friction optional (zeros).
 * Returns 0, -EINVAL or -ENOMEM. */
int hearth_approval_new(const struct hearth_approval_opts *opts,
                        const struct hearth_approval_hooks *hooks, hearth_approval **out);
void hearth_approval_free(hearth_approval *a);
/* PLAN (awaiting approval) and APPROVAL_RESPONSE; other types are ignored. */
void hearth_approval_handle(hearth_approval *a, hearth_msg *m, const hearth_now *now,
                            const hearth_outbox *out);
/* Earliest mono ms at which tick() has work (an expiry), or INT64_MAX. */
int64_t hearth_approval_next_deadline(const hearth_approval *a);
void hearth_approval_tick(hearth_approval *a, const hearth_now *now, const hearth_outbox *out);
/* A plan from the journal in state awaiting_approval; takes ownership. */
void hearth_approval_restore(hearth_approval *a, struct hearth_plan *p, const hearth_now *now,
                             const hearth_outbox *out);
/* Plans waiting. */
int hearth_approval_pending(const hearth_approval *a);
/* Count one pre-approved run in this week's friction record. */
void hearth_approval_count_preapproved(hearth_approval *a, const hearth_now *now,
                                       const hearth_outbox *out);

#endif
