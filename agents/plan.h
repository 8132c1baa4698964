/*
 * plan.h - the plan: what the orchestrator builds and the resource agent
 * runs. A plan is a list of steps, each one device and one set of
 * properties; its JSON forms (reply, event, episode) are the wire protocol's
 * (DESIGN.md section 4).
 */
#ifndef HEARTH_AGENTS_PLAN_H
#define HEARTH_AGENTS_PLAN_H

#include "agents/msg.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

enum hearth_plan_state {
	HEARTH_PLAN_PREVIEWED,
	HEARTH_PLAN_AWAITING_APPROVAL,
	HEARTH_PLAN_QUEUED, /* waits for an earlier run of its recipe (run mode queued) */
	HEARTH_PLAN_RUNNING,
	HEARTH_PLAN_COMPENSATING,
	HEARTH_PLAN_COMPLETED,
	HEARTH_PLAN_COMPENSATED,
	HEARTH_PLAN_FAILED,
	HEARTH_PLAN_DENIED,
	HEARTH_PLAN_EXPIRED,
};

/* Risk classes (issue 7): low (lights, media), medium (heating above the
 * cap, a step a rule lets an approval lift), high (unlock, disarm, camera on,
 * open a garage or gate). */
enum hearth_risk {
	HEARTH_RISK_LOW,
	HEARTH_RISK_MEDIUM,
	HEARTH_RISK_HIGH,
};

const char *hearth_risk_name(enum hearth_risk r);

enum hearth_step_state {
	HEARTH_STEP_PENDING,
	HEARTH_STEP_DISPATCHED,
	HEARTH_STEP_CONFIRMED,
	HEARTH_STEP_SKIPPED,
	HEARTH_STEP_FAILED,
	HEARTH_STEP_REBOUND,
	HEARTH_STEP_COMPENSATED,
};

struct hearth_step {
	char id[HEARTH_ID_MAX + 1]; /* the recipe step it came from */
	char device[HEARTH_ID_MAX + 1];
	int cap;     /* capability index */
	cJSON *args; /* properties to set (owned) */
	cJSON *prev; /* the device's values before, for compensation (owned) */
	char *note;  /* why skipped / failed, for the rationale (owned) */
	enum hearth_step_state state;
	bool optimistic; /* confirmed on dispatch */
	bool compensate; /* undo when the plan cannot finish */
	bool undoing;    /* the dispatched command is the compensation */
	int attempts;
	int timeout_ms;
	int64_t deadline; /* mono ms: confirmation due, or retry due */
	bool retry_wait;  /* deadline is a retry backoff, not a timeout */
	/* The earlier plan steps this one waits for: bit i is p->steps[i]. It is
	 * dispatched once each is confirmed or skipped. JSON: "after" as
	 * ["stepid@device", ...] in the step forms, plan-step indexes in the
	 * journal. */
	uint64_t after;
	uint64_t rsteps; /* planning only: the recipe steps it stands for (bit k: step k) */
	int rebound_to;  /* state rebound: index of the step that replaced it; else -1 */
	/* Timeline: wall ms since the plan's intent arrived (wall_received), -1
	 * when it did not happen. sent is the latest command (first or re-send). */
	int64_t ms_dispatched, ms_sent, ms_confirmed, ms_failed, ms_rebound, ms_compensated;
};

struct hearth_plan {
	char id[HEARTH_ID_MAX + 1];
	char intent_id[HEARTH_ID_MAX + 1];
	char intent[HEARTH_ID_MAX + 1];
	char recipe[HEARTH_ID_MAX + 1];
	char recipe_version[24];
	char policy_hash[65]; /* SHA-256 hex of the constraint set it was planned under */
	char source[HEARTH_ID_MAX + 1];
	char user[HEARTH_ID_MAX + 1];
	cJSON *slots; /* as understood (owned) */
	bool preview;
	enum hearth_plan_state state;
	struct hearth_step *steps;
	int nsteps;
	char *rationale;     /* owned */
	cJSON *critique;     /* [{"kind","detail"}] findings of the planner (owned), or NULL */
	cJSON *alternatives; /* the candidates weighed, best first (owned), or NULL */
	cJSON *score;        /* the chosen candidate's score breakdown (owned), or NULL */
	int run_mode;        /* the recipe's run mode (enum hearth_recipe_mode) */
	int run_max;         /* and its max (concurrent or queued runs), >= 1 */
	/* Approvals (agents/approval). */
	enum hearth_risk risk;    /* the highest risk of its acting steps */
	bool needs_approval;      /* the plan may not run before a valid approval */
	bool preapproved;         /* a standing pre-approval covered it */
	bool replied;             /* the intent's reply went out already (when it began to wait) */
	char approval_scope[160]; /* consent scope of its approvals: "recipe:<id>[/room:<r>]" */
	char nonce[33];           /* 128-bit hex, single use, while awaiting approval */
	int64_t approval_expires; /* wall ms: no answer by then -> expired */
	char approver[HEARTH_ID_MAX + 1]; /* who approved or denied */
	char *reason;                     /* why it ended as it did, when not completed (owned) */
	hearth_reply_to reply;            /* where the intent's answer goes (owned) */
	int64_t t_received;               /* mono ms the intent arrived */
	int64_t t_first_command;          /* mono ms of the first command, 0 if none */
	int64_t wall_received;            /* wall ms the intent arrived */
	bool resuming; /* taken from the journal, not yet resumed (resource agent) */
};

/* A plan of nsteps zeroed steps (rebound_to and the timeline at -1). */
struct hearth_plan *hearth_plan_new(int nsteps);
/* Reset a step's timeline and rebound_to to "never". */
void hearth_step_init(struct hearth_step *st);
void hearth_plan_free(struct hearth_plan *p);

const char *hearth_plan_state_name(enum hearth_plan_state s);
const char *hearth_step_state_name(enum hearth_step_state s);
bool hearth_plan_state_terminal(enum hearth_plan_state s);

/* JSON forms; each returns a new tree (the caller owns it) or NULL on ENOMEM. */
cJSON *hearth_plan_steps_json(const struct hearth_plan *p);
/* The intent reply: {"id","intent","slots","plan_id","state","rationale","steps",
 * "critique","alternatives","score"}. */
cJSON *hearth_plan_reply_json(const struct hearth_plan *p);
/* A plan event: {"plan_id","intent_id","intent","state","steps","ts"[,"reason"]}. */
cJSON *hearth_plan_event_json(const struct hearth_plan *p, int64_t wall_ms);
/* The episode record written to memory when the plan ends. */
cJSON *hearth_plan_episode_json(const struct hearth_plan *p, const hearth_now *now);
/* The journal form: everything needed to take the plan up again after a
 * restart (steps with their captured values, attempts, notes). Monotonic
 * times are not kept: they mean nothing in another process. */
cJSON *hearth_plan_journal_json(const struct hearth_plan *p);
/* A plan from its journal form, or NULL (bad form or out of memory) with a
 * reason in why. Deadlines are left at 0: the caller sets them. */
struct hearth_plan *hearth_plan_from_journal(const cJSON *j, char *why, size_t why_len);

/*
 * Posting a plan's messages (for the agents that hold plans: resource,
 * approval). journal: its journal form, or a NULL body once it ended (the
 * entry goes in the same commit as the episode). event: PLAN_EVENT. reply:
 * the intent's INTENT_REPLY, sent once (p->replied; the reply address moves
 * with it). episode: EPISODE. Out of memory: the message is not posted.
 */
void hearth_plan_post_journal(const struct hearth_plan *p, bool ended, const hearth_outbox *out);
void hearth_plan_post_event(const struct hearth_plan *p, const hearth_now *now,
                            const hearth_outbox *out);
void hearth_plan_post_reply(struct hearth_plan *p, const hearth_outbox *out);
void hearth_plan_post_episode(const struct hearth_plan *p, const hearth_now *now,
                              const hearth_outbox *out);

#endif
