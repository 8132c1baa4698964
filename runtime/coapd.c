/*
 * coapd.c - the hub's CoAP side (see coapd.h). It owns the CoAP context (one
 * UDP socket for the endpoint and the device sessions), its place in the
 * loop (the descriptor and one timer for libcoap's next deadline) and the
 * table of CoAP devices it observes. It never touches the store or an agent:
 * what it learns goes to the bus as messages, what the hub must do goes
 * through the hooks.
 *
 * POST /intent is answered with a separate response (RFC 7252 5.2.2): the
 * handler defers the exchange, hands the intent to the hub with the reply
 * address "coap:<handle>", and the client gets an empty ACK. The reply is
 * made later in the loop turn and said only after the store commit (the
 * hub's `later` bus), exactly like the MQTT result topic; route_out then
 * gives it to hearth_coapd_reply(), which completes the exchange (2.04 and
 * the same JSON). Draining the bus and committing inside the CoAP handler
 * would answer piggybacked, but it would run the hub's turn re-entrantly
 * from inside libcoap and break the one-turn order (commands, commit,
 * replies); the separate response keeps that order and costs one datagram.
 *
 * CoAP devices: a command is a PUT of the command's properties (plan_id,
 * intent_id and step are left out: a PUT replaces the resource's
 * representation, which is the device's state); state comes from a GET with
 * Observe, each representation becoming DEVICE_STATE. A device that answers
 * is online; one that does not answer a PUT or the observation (after
 * libcoap's retransmissions) goes offline. An observation that is refused
 * (4.04 before the first PUT creates the resource, or no Observe support)
 * is tried again after a successful PUT and every OBSERVE_RETRY_MS. A failed
 * PUT is only logged: the step's confirmation timeout decides.
 */
#include "runtime/coapd.h"

#include "platform/alloc.h"
#include "platform/clock.h"
#include "platform/coap.h"
#include "platform/err.h"
#include "platform/json.h"
#include "platform/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFER_TIMEOUT_MS 30000
#define COAP_REPLY_FIT   1024 /* bytes: one block (SZX 6), see coap_reply_text() */
#define OBSERVE_RETRY_MS 30000

struct cdev {
	char id[HEARTH_ID_MAX + 1];
	char *uri;
	int online; /* 1, 0, -1 unknown */
	bool observing;
};

struct hearth_coapd {
	const struct hearth_config *cfg;
	hearth_loop *loop;
	hearth_outbox out;
	struct hearth_coapd_hooks hooks;
	hearth_coap *coap;
	int fd;
	int timer;
	int retry_timer;
	struct cdev *devs;
	int ndevs, cap;
};

static void rearm(hearth_coapd *d);

/* ==== Devices ==== */

static struct cdev *
find_dev(hearth_coapd *d, const char *id)
{
	for (int i = 0; i < d->ndevs; i++)
		if (!strcmp(d->devs[i].id, id))
			return &d->devs[i];
	return NULL;
}

static void
drop_dev(hearth_coapd *d, struct cdev *cd)
{
	hearth_coap_unobserve(d->coap, cd->id);
	hearth_free(cd->uri);
	*cd = d->devs[--d->ndevs];
}

static void
set_online(hearth_coapd *d, struct cdev *cd, bool online)
{
	hearth_msg m = {.type = HEARTH_MSG_DEVICE_AVAIL, .flag = online};

	if (cd->online == (int)online)
		return;
	cd->online = online;
	snprintf(m.id, sizeof(m.id), "%s", cd->id);
	hearth_post(&d->out, &m);
}

static void
observe(hearth_coapd *d, struct cdev *cd)
{
	char why[160];
	int rc = hearth_coap_observe(d->coap, cd->uri, cd->id, why, sizeof(why));

	cd->observing = rc == 0;
	if (rc)
		LOG_WARN("coapd", "cannot observe %s at %s: %s", cd->id, cd->uri, why);
	rearm(d);
}

void
hearth_coapd_device(hearth_coapd *d, const struct hearth_device *dev)
{
	struct cdev *cd;

	if (!d || !dev)
		return;
	cd = find_dev(d, dev->id);
	if (strcmp(dev->transport, "coap") || !dev->uri) {
		if (cd)
			drop_dev(d, cd);
		return;
	}
	if (cd && cd->uri && !strcmp(cd->uri, dev->uri))
		return; /* announced again, same URI: the observation stands */
	if (!cd) {
		if (d->ndevs == d->cap) {
			int cap = d->cap ? d->cap * 2 : 8;
			struct cdev *n = hearth_realloc(d->devs, (size_t)cap * sizeof(*n));

			if (!n)
				return;
			d->devs = n;
			d->cap = cap;
		}
		cd = &d->devs[d->ndevs++];
		memset(cd, 0, sizeof(*cd));
		snprintf(cd->id, sizeof(cd->id), "%s", dev->id);
		cd->online = -1;
	}
	hearth_free(cd->uri);
	if (!(cd->uri = hearth_strdup(dev->uri))) {
		drop_dev(d, cd);
		return;
	}
	LOG_INFO("coapd", "CoAP device %s at %s: observing", cd->id, cd->uri);
	observe(d, cd);
}

void
hearth_coapd_command(hearth_coapd *d, const struct hearth_device *dev, const cJSON *body)
{
	static const char *const trace[] = {"plan_id", "intent_id", "step"};
	cJSON *args;
	char *text;
	char why[160];
	int rc;

	if (!d || !dev->uri)
		return;
	args = cJSON_Duplicate(body, 1);
	for (size_t i = 0; args && i < sizeof(trace) / sizeof(trace[0]); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(args, trace[i]);
	text = args ? hearth_json_print(args) : NULL;
	cJSON_Delete(args);
	if (!text) {
		LOG_ERR("coapd", "command for %s not sent: out of memory", dev->id);
		return;
	}
	rc = hearth_coap_put(d->coap, dev->uri, HEARTH_COAP_FORMAT_JSON, text, strlen(text),
	                     dev->id, why, sizeof(why));
	if (rc)
		LOG_WARN("coapd", "command for %s not sent: %s", dev->id, why);
	else
		LOG_DEBUG("coapd", "PUT %s %s", dev->uri, text);
	hearth_free(text);
	rearm(d);
}

static void
on_put(void *ud, const char *tag, int code, const void *payload, size_t len)
{
	hearth_coapd *d = ud;
	struct cdev *cd = find_dev(d, tag);

	if (code < 0) {
		LOG_WARN("coapd", "PUT to %s: %s", tag, hearth_strerror(code));
		if (cd)
			set_online(d, cd, false);
		return;
	}
	if (code / 100 != 2)
		LOG_WARN("coapd", "PUT to %s: %d.%02d %.*s", tag, code / 100, code % 100,
		         (int)(len < 80 ? len : 80), payload ? (const char *)payload : "");
	else
		LOG_DEBUG("coapd", "PUT to %s: %d.%02d", tag, code / 100, code % 100);
	if (!cd)
		return;
	set_online(d, cd, true);
	if (code / 100 == 2 && !cd->observing)
		observe(d, cd); /* the PUT may have made the resource */
}

static void
on_notify(void *ud, const char *tag, int code, const void *payload, size_t len, bool observing)
{
	hearth_coapd *d = ud;
	struct cdev *cd = find_dev(d, tag);
	hearth_msg m = {.type = HEARTH_MSG_DEVICE_STATE};
	char why[128];

	if (!cd)
		return;
	cd->observing = observing;
	if (code < 0) {
		LOG_WARN("coapd", "%s at %s does not answer (%s)", cd->id, cd->uri,
		         hearth_strerror(code));
		set_online(d, cd, false);
		return;
	}
	set_online(d, cd, true);
	if (code != 205) {
		LOG_DEBUG("coapd", "observe %s: %d.%02d; trying again later", cd->uri, code / 100,
		          code % 100);
		return;
	}
	if (!observing)
		LOG_DEBUG("coapd", "%s does not keep an observation; polling it", cd->uri);
	if (len == 0)
		return;
	if (hearth_json_parse(payload, len, &m.body, why, sizeof(why)) || !cJSON_IsObject(m.body)) {
		char detail[200];

		snprintf(detail, sizeof(detail),
		         "CoAP device %s sent a state that is not a JSON object", cd->id);
		hearth_post_error(&d->out, "bad_json", NULL, detail);
		cJSON_Delete(m.body);
		return;
	}
	snprintf(m.id, sizeof(m.id), "%s", cd->id);
	hearth_post(&d->out, &m);
}

static void
on_retry(void *ud)
{
	hearth_coapd *d = ud;

	d->retry_timer =
	        hearth_loop_timer(d->loop, hearth_mono_ms() + OBSERVE_RETRY_MS, on_retry, d);
	for (int i = 0; i < d->ndevs; i++)
		if (!d->devs[i].observing || !hearth_coap_observing(d->coap, d->devs[i].id))
			observe(d, &d->devs[i]);
}

/* ==== Endpoint ==== */

static void
respond_error(hearth_coapd *d, hearth_coap_exchange *ex, const struct hearth_coap_request *rq,
              int code, const char *error, const char *detail)
{
	char line[300];
	cJSON *o = cJSON_CreateObject();
	char *text;

	snprintf(line, sizeof(line), "CoAP %s /%s from %s: %s",
	         rq->method == HEARTH_COAP_GET    ? "GET"
	         : rq->method == HEARTH_COAP_POST ? "POST"
	         : rq->method == HEARTH_COAP_PUT  ? "PUT"
	                                          : "DELETE",
	         rq->path, rq->peer, detail);
	hearth_post_error(&d->out, error, NULL, line);
	cJSON_AddStringToObject(o, "error", error);
	cJSON_AddStringToObject(o, "detail", detail);
	text = o ? hearth_json_print(o) : NULL;
	cJSON_Delete(o);
	hearth_coap_respond(ex, code, HEARTH_COAP_FORMAT_JSON, text, text ? strlen(text) : 0);
	hearth_free(text);
}

static void
respond_json(hearth_coap_exchange *ex, int code, cJSON *o)
{
	char *text = o ? hearth_json_print(o) : NULL;

	if (text)
		hearth_coap_respond(ex, code, HEARTH_COAP_FORMAT_JSON, text, strlen(text));
	else
		hearth_coap_respond(ex, 500, HEARTH_COAP_FORMAT_TEXT, "out of memory", 13);
	hearth_free(text);
	cJSON_Delete(o);
}

static void
on_intent(void *ud, const struct hearth_coap_request *rq, hearth_coap_exchange *ex)
{
	hearth_coapd *d = ud;
	char why[160], topic[40];
	uint64_t handle;
	cJSON *body;
	int rc;

	if (rq->method != HEARTH_COAP_POST) {
		respond_error(d, ex, rq, 405, "bad_request", "POST an intent to /intent");
		return;
	}
	if (rq->format != HEARTH_COAP_FORMAT_NONE && rq->format != HEARTH_COAP_FORMAT_JSON &&
	    rq->format != HEARTH_COAP_FORMAT_TEXT) {
		respond_error(d, ex, rq, 415, "bad_request",
		              "an intent is JSON (Content-Format 50, application/json)");
		return;
	}
	if (rq->len > (size_t)d->cfg->max_payload) {
		snprintf(why, sizeof(why), "payload of %zu bytes; the limit is %d", rq->len,
		         d->cfg->max_payload);
		respond_error(d, ex, rq, 413, "too_large", why);
		return;
	}
	if (rq->len == 0) {
		respond_error(d, ex, rq, 400, "bad_request", "empty intent");
		return;
	}
	rc = hearth_json_parse(rq->payload, rq->len, &body, why, sizeof(why));
	if (rc) {
		respond_error(d, ex, rq, rc == HEARTH_E_BAD_JSON ? 400 : 500,
		              rc == HEARTH_E_BAD_JSON ? "bad_json" : "internal",
		              rc == HEARTH_E_BAD_JSON ? why : "out of memory");
		return;
	}
	if (!cJSON_IsObject(body)) {
		cJSON_Delete(body);
		respond_error(d, ex, rq, 400, "bad_request", "an intent is a JSON object");
		return;
	}
	handle = hearth_coap_defer(ex, DEFER_TIMEOUT_MS);
	if (!handle) {
		cJSON_Delete(body);
		hearth_coap_respond(ex, 503, HEARTH_COAP_FORMAT_TEXT, "busy", 4);
		return;
	}
	snprintf(topic, sizeof(topic), "%s%016" PRIx64, HEARTH_COAPD_REPLY_PREFIX, handle);
	rc = d->hooks.intent(d->hooks.ud, body, topic, why, sizeof(why));
	if (rc) {
		cJSON *o = cJSON_CreateObject();
		char *text;

		cJSON_AddStringToObject(o, "error", rc == -ENOMEM ? "internal" : "bad_request");
		cJSON_AddStringToObject(o, "detail", why);
		text = o ? hearth_json_print(o) : NULL;
		cJSON_Delete(o);
		hearth_coap_answer(d->coap, handle, rc == -ENOMEM ? 500 : 400,
		                   HEARTH_COAP_FORMAT_JSON, text, text ? strlen(text) : 0);
		hearth_free(text);
	}
}

static void
on_status(void *ud, const struct hearth_coap_request *rq, hearth_coap_exchange *ex)
{
	hearth_coapd *d = ud;
	char err[160] = "";
	cJSON *o;

	if (rq->method != HEARTH_COAP_GET) {
		respond_error(d, ex, rq, 405, "bad_request", "only GET");
		return;
	}
	o = !strcmp(rq->path, "status") ? d->hooks.status(d->hooks.ud)
	                                : d->hooks.health(d->hooks.ud, err, sizeof(err));
	if (!o && err[0]) {
		hearth_coap_respond(ex, 500, HEARTH_COAP_FORMAT_TEXT, err, strlen(err));
		return;
	}
	respond_json(ex, 205, o);
}

/*
 * The reply's text, fitted into one CoAP block: a separate response that
 * needs Block2 is not reassembled by libcoap 4.3 clients ("large body
 * receive internal issue"), and a constrained device has little use for the
 * planner's workings. The fields that explain rather than report go first,
 * in this order, and "trimmed" lists them; the full reply is what MQTT
 * clients get and what the episode keeps.
 */
static char *
coap_reply_text(const cJSON *body)
{
	static const char *const drop[] = {"alternatives", "critique", "score", "rationale"};
	char *text = hearth_json_print(body);
	cJSON *copy, *trimmed;

	if (!text || strlen(text) <= COAP_REPLY_FIT)
		return text;
	copy = cJSON_Duplicate(body, 1);
	trimmed = cJSON_CreateArray();
	if (!copy || !trimmed || !cJSON_AddItemToObject(copy, "trimmed", trimmed)) {
		cJSON_Delete(copy);
		cJSON_Delete(trimmed);
		return text;
	}
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
		if (!cJSON_GetObjectItemCaseSensitive(copy, drop[i]))
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(copy, drop[i]);
		cJSON_AddItemToArray(trimmed, cJSON_CreateString(drop[i]));
		hearth_free(text);
		text = hearth_json_print(copy);
		if (!text || strlen(text) <= COAP_REPLY_FIT)
			break;
	}
	cJSON_Delete(copy);
	return text;
}

bool
hearth_coapd_reply(hearth_coapd *d, const char *reply_topic, const cJSON *body)
{
	size_t n = strlen(HEARTH_COAPD_REPLY_PREFIX);
	unsigned long long handle;
	char *end, *text;
	int rc;

	if (!d || strncmp(reply_topic, HEARTH_COAPD_REPLY_PREFIX, n))
		return false;
	handle = strtoull(reply_topic + n, &end, 16);
	if (*end || end == reply_topic + n || !handle)
		return false;
	text = coap_reply_text(body);
	if (!text)
		return false;
	rc = hearth_coap_answer(d->coap, handle, 204, HEARTH_COAP_FORMAT_JSON, text, strlen(text));
	hearth_free(text);
	if (rc)
		return false;
	rearm(d);
	return true;
}

/* ==== Loop ==== */

static void
on_timer(void *ud)
{
	hearth_coapd *d = ud;

	d->timer = 0;
	if (hearth_coap_process(d->coap))
		LOG_DEBUG("coapd", "CoAP processing failed");
	rearm(d);
}

static void
on_io(void *ud, int fd, uint32_t events)
{
	hearth_coapd *d = ud;

	if (hearth_coap_process(d->coap))
		LOG_DEBUG("coapd", "CoAP processing failed");
	rearm(d);
}

/* One timer at libcoap's next deadline (retransmissions, separate responses). */
static void
rearm(hearth_coapd *d)
{
	int ms = hearth_coap_next_ms(d->coap);

	if (d->timer > 0)
		hearth_loop_timer_cancel(d->loop, d->timer);
	d->timer = 0;
	if (ms >= 0)
		d->timer = hearth_loop_timer(d->loop, hearth_mono_ms() + ms, on_timer, d);
}

int
hearth_coapd_new(const struct hearth_config *cfg, hearth_loop *loop, const hearth_outbox *out,
                 const struct hearth_coapd_hooks *hooks, hearth_coapd **dp, char *why, size_t wl)
{
	struct hearth_coap_cb cb = {0};
	hearth_coapd *d;
	int rc;

	*dp = NULL;
	d = hearth_calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = cfg;
	d->loop = loop;
	d->out = *out;
	d->hooks = *hooks;
	d->fd = -1;
	cb.on_put = on_put;
	cb.on_notify = on_notify;
	cb.ud = d;
	if ((rc = hearth_coap_new(&cb, &d->coap))) {
		snprintf(why, wl, "cannot start CoAP: %s", hearth_strerror(rc));
		goto fail;
	}
	if ((rc = hearth_coap_listen(d->coap, cfg->coap_listen, why, wl)))
		goto fail;
	if ((rc = hearth_coap_resource(d->coap, "intent", on_intent, d)) ||
	    (rc = hearth_coap_resource(d->coap, "status", on_status, d)) ||
	    (rc = hearth_coap_resource(d->coap, "health", on_status, d))) {
		snprintf(why, wl, "cannot start CoAP: %s", hearth_strerror(rc));
		goto fail;
	}
	d->fd = hearth_coap_fd(d->coap);
	if ((rc = hearth_loop_watch(loop, d->fd, EPOLLIN, on_io, d))) {
		d->fd = -1;
		snprintf(why, wl, "cannot watch the CoAP socket: %s", hearth_strerror(rc));
		goto fail;
	}
	d->retry_timer = hearth_loop_timer(loop, hearth_mono_ms() + OBSERVE_RETRY_MS, on_retry, d);
	LOG_INFO("coapd", "CoAP endpoint on UDP %s", cfg->coap_listen);
	*dp = d;
	return 0;
fail:
	hearth_coapd_free(d);
	return rc;
}

void
hearth_coapd_free(hearth_coapd *d)
{
	if (!d)
		return;
	if (d->fd >= 0)
		hearth_loop_unwatch(d->loop, d->fd);
	if (d->timer > 0)
		hearth_loop_timer_cancel(d->loop, d->timer);
	if (d->retry_timer > 0)
		hearth_loop_timer_cancel(d->loop, d->retry_timer);
	for (int i = 0; i < d->ndevs; i++)
		hearth_free(d->devs[i].uri);
	hearth_free(d->devs);
	hearth_coap_free(d->coap);
	hearth_free(d);
}
