/*
 * coapd.h - the hub's CoAP side (DESIGN.md section 4, CoAP): the endpoint
 * (POST /intent, GET /status, GET /health) and the binding of CoAP devices
 * (commands as PUT to the device's URI, state by GET with Observe). It runs
 * in the hub's loop on platform/coap.h; the hub gives it hooks for what only
 * the hub can do (take an intent, say its status and health).
 *
 * Without CONFIG_HEARTH_COAP, hearth_coapd_new says CoAP is not built in and
 * the other functions below do nothing.
 */
#ifndef HEARTH_RUNTIME_COAPD_H
#define HEARTH_RUNTIME_COAPD_H

#include "agents/context/context.h"
#include "agents/msg.h"
#include "hearth_config.h"
#include "runtime/config.h"
#include "runtime/loop.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct hearth_coapd hearth_coapd;

/* A reply address that names a CoAP request starts with this. */
#define HEARTH_COAPD_REPLY_PREFIX "coap:"

struct hearth_coapd_hooks {
	/* An intent that came by CoAP: body (taken) as on <p>/intent; its reply
	 * goes to reply_topic (a hearth_reply_to topic). Returns 0, or a
	 * negative error with the reason in why (the hub has reported it on
	 * <p>/error). */
	int (*intent)(void *ud, cJSON *body, const char *reply_topic, char *why, size_t why_len);
	/* What the control socket answers to "status" / "health" (the caller
	 * frees it), or NULL with the reason in err. */
	cJSON *(*status)(void *ud);
	cJSON *(*health)(void *ud, char *err, size_t err_len);
	void *ud;
};

#if CONFIG_HEARTH_COAP

/* Listen on cfg->coap_listen and watch the socket in loop. out (borrowed)
 * receives DEVICE_STATE / DEVICE_AVAIL of CoAP devices and the errors of bad
 * CoAP input. Returns 0, or a negative error with a reason in why. */
int hearth_coapd_new(const struct hearth_config *cfg, hearth_loop *loop, const hearth_outbox *out,
                     const struct hearth_coapd_hooks *hooks, hearth_coapd **d, char *why,
                     size_t why_len);
void hearth_coapd_free(hearth_coapd *d);

/* An INTENT_REPLY whose reply topic starts with HEARTH_COAPD_REPLY_PREFIX:
 * answer the waiting CoAP request with body. Returns true when answered;
 * false when the topic names no waiting request (then it is an MQTT topic). */
bool hearth_coapd_reply(hearth_coapd *d, const char *reply_topic, const cJSON *body);
/* A DEVICE_COMMAND for dev (transport "coap"): PUT the command to its URI. */
void hearth_coapd_command(hearth_coapd *d, const struct hearth_device *dev, const cJSON *body);
/* dev was announced (or restored): observe it when it is a CoAP device, stop
 * observing it when it no longer is. dev may be NULL. */
void hearth_coapd_device(hearth_coapd *d, const struct hearth_device *dev);

#else

static inline int
hearth_coapd_new(const struct hearth_config *cfg, hearth_loop *loop, const hearth_outbox *out,
                 const struct hearth_coapd_hooks *hooks, hearth_coapd **d, char *why,
                 size_t why_len)
{
	*d = NULL;
	return -ENOTSUP;
}

static inline void
hearth_coapd_free(hearth_coapd *d)
{
}

static inline bool
hearth_coapd_reply(hearth_coapd *d, const char *reply_topic, const cJSON *body)
{
	return false;
}

static inline void
hearth_coapd_command(hearth_coapd *d, const struct hearth_device *dev, const cJSON *body)
{
}

static inline void
hearth_coapd_device(hearth_coapd *d, const struct hearth_device *dev)
{
}

#endif

#endif
