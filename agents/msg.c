/*
 * msg.c - helpers for the agent messages declared in msg.h: freeing what a
 * message owns, copying reply addresses, and the error message every agent
 * posts when input is wrong.
 */
#include "agents/msg.h"

#include "agents/plan.h"
#include "platform/alloc.h"

#include <errno.h>
#include <string.h>

void
hearth_reply_clear(hearth_reply_to *r)
{
	hearth_free(r->topic);
	hearth_free(r->corr);
	memset(r, 0, sizeof(*r));
}

int
hearth_reply_copy(hearth_reply_to *dst, const hearth_reply_to *src)
{
	memset(dst, 0, sizeof(*dst));
	if (src->topic && !(dst->topic = hearth_strdup(src->topic)))
		return -ENOMEM;
	if (src->corr && src->corr_len > 0) {
		dst->corr = hearth_memdup(src->corr, (size_t)src->corr_len);
		if (!dst->corr) {
			hearth_reply_clear(dst);
			return -ENOMEM;
		}
		dst->corr_len = src->corr_len;
	}
	return 0;
}

void
hearth_msg_clear(hearth_msg *m)
{
	cJSON_Delete(m->body);
	m->body = NULL;
	hearth_plan_free(m->plan);
	m->plan = NULL;
	hearth_reply_clear(&m->reply);
}

void
hearth_post_error(const hearth_outbox *out, const char *code, const char *topic, const char *detail)
{
	hearth_msg m = {.type = HEARTH_MSG_ERROR};

	m.body = cJSON_CreateObject();
	if (!m.body)
		return;
	cJSON_AddStringToObject(m.body, "error", code);
	if (topic)
		cJSON_AddStringToObject(m.body, "topic", topic);
	if (detail)
		cJSON_AddStringToObject(m.body, "detail", detail);
	hearth_post(out, &m);
}

const char *
hearth_msg_type_name(enum hearth_msg_type type)
{
	static const char *const names[HEARTH_MSG_TYPE_COUNT] = {
	        [HEARTH_MSG_DEVICE_META] = "device.meta",
	        [HEARTH_MSG_DEVICE_STATE] = "device.state",
	        [HEARTH_MSG_DEVICE_AVAIL] = "device.availability",
	        [HEARTH_MSG_DEVICE_CHANGED] = "device.changed",
	        [HEARTH_MSG_INTENT] = "intent",
	        [HEARTH_MSG_PLAN] = "plan",
	        [HEARTH_MSG_INTENT_REPLY] = "intent.reply",
	        [HEARTH_MSG_PLAN_EVENT] = "plan.event",
	        [HEARTH_MSG_DEVICE_COMMAND] = "device.command",
	        [HEARTH_MSG_EPISODE] = "episode",
	        [HEARTH_MSG_ERROR] = "error",
	        [HEARTH_MSG_DEVICE_SAVE] = "device.save",
	        [HEARTH_MSG_JOURNAL] = "journal",
	        [HEARTH_MSG_FLAG_CHANGED] = "flag.changed",
	        [HEARTH_MSG_DRIFT] = "drift",
	        [HEARTH_MSG_APPROVAL_REQUEST] = "approval.request",
	        [HEARTH_MSG_APPROVAL_RESPONSE] = "approval.response",
	        [HEARTH_MSG_AUDIT] = "audit",
	        [HEARTH_MSG_CONSENT] = "consent",
	        [HEARTH_MSG_SEMANTIC] = "semantic",
	};

	if ((int)type <= 0 || type >= HEARTH_MSG_TYPE_COUNT || !names[type])
		return "unknown";
	return names[type];
}
