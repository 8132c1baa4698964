/*
 * policy.h - hard constraints applied to a bound plan (DESIGN.md section 5:
 * "hard constraints are never violated, whatever the score says").
 *
 * The rules are constraint memory's (memory/constraints.h gives the format:
 * when / forbid / cap / approval_lifts / reason). For every rule whose
 * "when" holds now, every step it forbids or caps is handled:
 *
 *   forbid  the step matches when its capability is the rule's, its device
 *           is the rule's (if the rule names one) and its args contain each
 *           of the rule's args with an equal value (numbers within 1e-9).
 *           The step is removed from the plan and the note says
 *           "<device> (<step>) is not done: <reason> (rule <id>)".
 *   cap     the step matches on capability (and device); when its args set
 *           the rule's property to a number above max or below min, the
 *           value is clamped to the bound: "<device> <property> 26 capped at
 *           24: <reason> (rule <id>)". A cap never drops a step.
 *
 * approval_lifts: when the caller says approvals can be asked for
 * (env->can_approve), a step such a rule would drop or clamp is kept
 * unchanged and marked as needing approval (result->needs_approval) with the
 * note "<device> (<step>) needs an approval: <reason> (rule <id>)". When
 * approvals cannot be asked for, the rule is as hard as any other, and the
 * note says an approval could lift it. When one step meets several rules,
 * a drop by a hard rule wins over an approval mark.
 *
 * Evaluating "when" fails closed. Conditions have three values: true, false
 * and unknown. Unknown is: a flag the context does not have, a device that
 * is unknown, offline or has not reported the property, an lt / gt on a
 * value that is not a number, a time window when the local time is unknown
 * (env->local_minute outside 0..1439), a malformed condition or one nested
 * deeper than HEARTH_CONSTRAINT_DEPTH_MAX. all / any / not combine them as
 * in Kleene logic (false and anything is false, true or anything is true,
 * not unknown is unknown), and a rule whose "when" is unknown is applied:
 * when in doubt, the restriction holds. (A flag that exists but has not been
 * computed yet reads false, as hearth_context_flag says.) A rule this module
 * cannot read at all (no forbid / cap, unknown capability) matches nothing.
 *
 * The module does no I/O and reads no clock: time is env->local_minute.
 */
#ifndef HEARTH_AGENTS_ORCHESTRATOR_POLICY_H
#define HEARTH_AGENTS_ORCHESTRATOR_POLICY_H

#include "agents/context/context.h"
#include "agents/plan.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

struct hearth_policy_env {
	const hearth_context *ctx; /* flags and device state; NULL: all unknown */
	int local_minute;          /* minutes since local midnight, or -1: unknown */
	bool can_approve;          /* approval_lifts marks steps instead of dropping */
};

struct hearth_policy_result {
	int dropped;          /* steps removed */
	int capped;           /* values clamped */
	int approvals;        /* steps kept that need an approval */
	bool *needs_approval; /* p->nsteps entries (after the drops), NULL when approvals is 0 */
	char *notes;          /* sentences for the rationale, NULL when no rule applied */
	int nrules_applied;   /* rules that changed or marked some step */
};

/*
 * Apply rules (an array of rules as constraint memory hands them out; NULL
 * or empty: nothing to do) to the steps of p. Returns 0, or -ENOMEM (the
 * plan may then be half done: refuse it). Free the result with
 * hearth_policy_result_clear, also after an error.
 */
int hearth_policy_apply(const cJSON *rules, const struct hearth_policy_env *env,
                        struct hearth_plan *p, struct hearth_policy_result *res);
void hearth_policy_result_clear(struct hearth_policy_result *res);

/*
 * The risk of step st under the "risk" rules in force (constraints.h): the
 * highest level of the rules whose "when" holds and whose selector matches
 * the step, with that rule's id in *rule_id; builtin (and *rule_id NULL)
 * when none does. A rule may lower a step's risk as well as raise it.
 */
enum hearth_risk hearth_policy_risk(const cJSON *rules, const struct hearth_policy_env *env,
                                    const struct hearth_step *st, enum hearth_risk builtin,
                                    const char **rule_id);

/* Does the rule's "when" hold (true or unknown) under env? Absent: always. */
bool hearth_policy_when(const cJSON *rule, const struct hearth_policy_env *env);

#endif
