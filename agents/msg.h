/*
 * msg.h - the messages agents exchange. The one header that declares them.
 *
 * Agents are state machines: the runtime hands each one a message and the
 * time, the agent updates its state and posts messages to an outbox. Agents
 * never do I/O: the runtime turns DEVICE_COMMAND, PLAN_EVENT, INTENT_REPLY and
 * ERROR into MQTT (or CoAP) traffic and EPISODE into a store write, and turns
 * inbound traffic into DEVICE_*, INTENT messages.
 *
 * Ownership: a posted message owns its body, its plan and its reply address;
 * the bus frees them after delivery (hearth_msg_clear). A handler that wants
 * to keep something takes it (sets the field to NULL in its copy).
 */
#ifndef HEARTH_AGENTS_MSG_H
#define HEARTH_AGENTS_MSG_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#define HEARTH_ID_MAX 64 /* protocol ids: [A-Za-z0-9_.-], 1..64 */

struct hearth_plan;

enum hearth_msg_type {
	/* transport -> context. id: device id. body: the meta / state object. */
	HEARTH_MSG_DEVICE_META = 1,
	HEARTH_MSG_DEVICE_STATE,
	/* transport -> context. id: device id. flag: online? */
	HEARTH_MSG_DEVICE_AVAIL,
	/* context -> resource: a device's state or availability changed.
	 * id: device id. body: the properties that changed (may be empty).
	 * flag: online now? */
	HEARTH_MSG_DEVICE_CHANGED,
	/* transport -> orchestrator. id: intent id. body: the intent object
	 * (validated: "intent" or "text" string, "slots" object if present).
	 * reply: where the answer goes. */
	HEARTH_MSG_INTENT,
	/* orchestrator -> resource: run this plan. plan: owned by the message. */
	HEARTH_MSG_PLAN,
	/* orchestrator / resource -> transport. id: intent id. body: the reply. */
	HEARTH_MSG_INTENT_REPLY,
	/* resource -> transport. id: plan id. body: the event (plan state, steps). */
	HEARTH_MSG_PLAN_EVENT,
	/* resource -> transport. id: device id. body: the set payload. */
	HEARTH_MSG_DEVICE_COMMAND,
	/* resource -> memory. id: plan id. body: the episode record. */
	HEARTH_MSG_EPISODE,
	/* any -> transport. body: {"error","topic","detail"}; ts is added on the wire. */
	HEARTH_MSG_ERROR,
	/* context -> memory: persist this device record. id: device id. body: record. */
	HEARTH_MSG_DEVICE_SAVE,
	/* resource -> memory: the plan's journal entry. id: plan id. body: its
	 * journal form (hearth_plan_journal_json), or NULL when the plan ended. */
	HEARTH_MSG_JOURNAL,
	/* context -> anyone: a derived flag changed. body: {"flag": name, "value": bool}. */
	HEARTH_MSG_FLAG_CHANGED,
	/* context -> runtime: the drift sentinel started or cleared a drift on a
	 * feature. body: the event (drift.h hearth_drift_event_json). */
	HEARTH_MSG_DRIFT,
	/* approval -> transport: ask the phone. id: plan id. body: the request
	 * {"plan_id","summary","rationale","risk","nonce","expires_at"}. */
	HEARTH_MSG_APPROVAL_REQUEST,
	/* transport -> approval: the phone's answer. id: the plan id of the
	 * topic. body: the response object (checked to be an object). */
	HEARTH_MSG_APPROVAL_RESPONSE,
	/* agent -> memory: append an audit record. id: the subject. body:
	 * {"event": kind, ...fields}. */
	HEARTH_MSG_AUDIT,
	/* agent -> memory: set a consent scope's standing pre-approval. id:
	 * unused. body: {"scope","standing":bool,"by"}. */
	HEARTH_MSG_CONSENT,
	/* agent -> memory: put a generic semantic record. id: unused. body:
	 * {"kind","name","value"} (value null: remove it). */
	HEARTH_MSG_SEMANTIC,
	HEARTH_MSG_TYPE_COUNT
};

/* Where a reply goes: the MQTT v5 response topic and correlation data, or
 * nothing (then <prefix>/intent/<id>/result). Both fields owned. */
typedef struct hearth_reply_to {
	char *topic;
	void *corr;
	int corr_len;
} hearth_reply_to;

typedef struct hearth_msg {
	enum hearth_msg_type type;
	char id[HEARTH_ID_MAX + 1];
	bool flag;
	cJSON *body;
	struct hearth_plan *plan;
	hearth_reply_to reply;
} hearth_msg;

/* The time an agent is handed: monotonic for deadlines, wall for `ts` fields. */
typedef struct hearth_now {
	int64_t mono_ms;
	int64_t wall_ms;
	int local_minute; /* minutes since local midnight, 0..1439 (time windows) */
	int weekday;      /* local weekday, 0 = Sunday */
} hearth_now;

/*
 * An outbox: agents post here. post() takes ownership of everything the
 * message owns (the struct itself is copied).
 */
typedef struct hearth_outbox {
	void (*post)(void *ud, hearth_msg *msg);
	void *ud;
} hearth_outbox;

static inline void
hearth_post(const hearth_outbox *out, hearth_msg *msg)
{
	out->post(out->ud, msg);
}

/* Free what msg owns and zero those fields. */
void hearth_msg_clear(hearth_msg *msg);
/* Post an ERROR message {"error":code,"topic":topic,"detail":detail}. */
void hearth_post_error(const hearth_outbox *out, const char *code, const char *topic,
                       const char *detail);
/* Deep-copy / free a reply address. */
int hearth_reply_copy(hearth_reply_to *dst, const hearth_reply_to *src);
void hearth_reply_clear(hearth_reply_to *r);
const char *hearth_msg_type_name(enum hearth_msg_type type);

#endif
