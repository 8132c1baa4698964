/*
 * plan.c - plan lifetime and the plan's JSON forms. The forms are the wire
 * protocol: keep field names as DESIGN.md section 4 gives them.
 */
#include "agents/plan.h"

#include "platform/alloc.h"
#include "recipes/capability.h"

#include <string.h>

struct hearth_plan *
hearth_plan_new(int nsteps)
{
	struct hearth_plan *p = hearth_calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (nsteps > 0) {
		p->steps = hearth_calloc((size_t)nsteps, sizeof(*p->steps));
		if (!p->steps) {
			hearth_free(p);
			return NULL;
		}
	}
	p->nsteps = nsteps;
	return p;
}

void
hearth_plan_free(struct hearth_plan *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nsteps; i++) {
		cJSON_Delete(p->steps[i].args);
		cJSON_Delete(p->steps[i].prev);
		hearth_free(p->steps[i].note);
	}
	hearth_free(p->steps);
	cJSON_Delete(p->slots);
	hearth_free(p->rationale);
	hearth_free(p->reason);
	hearth_reply_clear(&p->reply);
	hearth_free(p);
}

const char *
hearth_plan_state_name(enum hearth_plan_state s)
{
	static const char *const names[] = {
	        "previewed", "awaiting_approval", "running", "compensating",
	        "completed", "compensated",       "failed",  "denied",
	        "expired",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

const char *
hearth_step_state_name(enum hearth_step_state s)
{
	static const char *const names[] = {
	        "pending", "dispatched", "confirmed", "skipped", "failed", "rebound", "compensated",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

bool
hearth_plan_state_terminal(enum hearth_plan_state s)
{
	return s >= HEARTH_PLAN_COMPLETED;
}

cJSON *
hearth_plan_steps_json(const struct hearth_plan *p)
{
	cJSON *arr = cJSON_CreateArray();

	for (int i = 0; arr && i < p->nsteps; i++) {
		const struct hearth_step *st = &p->steps[i];
		cJSON *o = cJSON_CreateObject();

		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			return NULL;
		}
		cJSON_AddStringToObject(o, "id", st->id);
		cJSON_AddStringToObject(o, "device", st->device);
		cJSON_AddStringToObject(o, "capability", hearth_capability_at(st->cap)->name);
		cJSON_AddItemToObject(o, "args", cJSON_Duplicate(st->args, 1));
		cJSON_AddStringToObject(o, "state", hearth_step_state_name(st->state));
		if (st->note)
			cJSON_AddStringToObject(o, "note", st->note);
	}
	return arr;
}

cJSON *
hearth_plan_reply_json(const struct hearth_plan *p)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "id", p->intent_id);
	cJSON_AddStringToObject(o, "intent", p->intent);
	cJSON_AddItemToObject(o, "slots",
	                      p->slots ? cJSON_Duplicate(p->slots, 1) : cJSON_CreateObject());
	cJSON_AddStringToObject(o, "recipe", p->recipe);
	cJSON_AddStringToObject(o, "plan_id", p->id);
	cJSON_AddStringToObject(o, "state", hearth_plan_state_name(p->state));
	cJSON_AddStringToObject(o, "rationale", p->rationale ? p->rationale : "");
	cJSON_AddItemToObject(o, "steps", hearth_plan_steps_json(p));
	cJSON_AddItemToObject(o, "alternatives", cJSON_CreateArray());
	cJSON_AddItemToObject(o, "score", cJSON_CreateObject());
	return o;
}

cJSON *
hearth_plan_event_json(const struct hearth_plan *p, int64_t wall_ms)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "plan_id", p->id);
	cJSON_AddStringToObject(o, "intent_id", p->intent_id);
	cJSON_AddStringToObject(o, "intent", p->intent);
	cJSON_AddStringToObject(o, "state", hearth_plan_state_name(p->state));
	if (p->reason)
		cJSON_AddStringToObject(o, "reason", p->reason);
	cJSON_AddItemToObject(o, "steps", hearth_plan_steps_json(p));
	cJSON_AddNumberToObject(o, "ts", (double)wall_ms);
	return o;
}

cJSON *
hearth_plan_episode_json(const struct hearth_plan *p, const hearth_now *now)
{
	cJSON *o = cJSON_CreateObject(), *lat;

	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "v", 1);
	cJSON_AddStringToObject(o, "id", p->id);
	cJSON_AddStringToObject(o, "intent_id", p->intent_id);
	cJSON_AddStringToObject(o, "intent", p->intent);
	cJSON_AddStringToObject(o, "recipe", p->recipe);
	cJSON_AddStringToObject(o, "recipe_version", p->recipe_version);
	cJSON_AddItemToObject(o, "slots",
	                      p->slots ? cJSON_Duplicate(p->slots, 1) : cJSON_CreateObject());
	if (p->source[0])
		cJSON_AddStringToObject(o, "source", p->source);
	if (p->user[0])
		cJSON_AddStringToObject(o, "user", p->user);
	cJSON_AddStringToObject(o, "outcome", hearth_plan_state_name(p->state));
	if (p->reason)
		cJSON_AddStringToObject(o, "reason", p->reason);
	cJSON_AddNumberToObject(o, "ts", (double)p->wall_received);
	cJSON_AddNumberToObject(o, "ended_at", (double)now->wall_ms);
	lat = cJSON_AddObjectToObject(o, "latency_ms");
	if (lat) {
		if (p->t_first_command)
			cJSON_AddNumberToObject(lat, "first_command",
			                        (double)(p->t_first_command - p->t_received));
		cJSON_AddNumberToObject(lat, "total", (double)(now->mono_ms - p->t_received));
	}
	cJSON_AddItemToObject(o, "steps", hearth_plan_steps_json(p));
	cJSON_AddStringToObject(o, "rationale", p->rationale ? p->rationale : "");
	return o;
}
