/*
 * hub.c - the runtime of hearthd (see hub.h).
 *
 * One loop turn: MQTT packets (and control requests, signals, timers) are
 * read and turned into agent messages on the bus; the turn hook drains the
 * bus, routing each message to its agent or to the wire; then queued MQTT
 * packets are written at once (commands first: they are what the home
 * feels) and the store commits the turn's writes in one transaction (group
 * commit). Bad input is answered on <p>/error and changes nothing.
 */
#include "runtime/hub.h"

#include "agents/approval/approval.h"
#include "agents/context/context.h"
#include "agents/orchestrator/orchestrator.h"
#include "agents/plan.h"
#include "agents/resource/resource.h"
#include "hearth_config.h"
#include "memory/audit.h"
#include "memory/backup.h"
#include "memory/secrets.h"
#include "memory/consents.h"
#include "memory/constraints.h"
#include "memory/episodic.h"
#include "memory/journal.h"
#include "memory/secrets.h"
#include "memory/semantic.h"
#include "memory/store.h"
#include "platform/alloc.h"
#include "platform/clock.h"
#include "platform/crypto.h"
#include "platform/err.h"
#include "platform/id.h"
#include "platform/json.h"
#include "platform/log.h"
#include "platform/mqtt.h"
#include "recipes/recipe.h"
#include "runtime/bus.h"
#include "runtime/coapd.h"
#include "runtime/ecosystem.h"
#include "runtime/ctl.h"
#include "runtime/loop.h"
#include "runtime/ratelimit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECONNECT_MIN_MS 250
#define RECONNECT_MAX_MS 30000
#define TOPIC_MAX        256

struct hearth_hub {
	const struct hearth_config *cfg;
	hearth_loop *loop;
	hearth_bus *bus;
	hearth_outbox out;
	hearth_bus *later; /* replies and plan events, published after the commit */
	hearth_outbox later_out;
	hearth_store *store;
	hearth_mqtt *mqtt;
	hearth_ctl *ctl;
	hearth_coapd *coapd; /* NULL when CoAP is off */
	hearth_eco *eco;     /* Zigbee2MQTT and Home Assistant discovery bindings */
	hearth_recipe_book *book;
	hearth_ratelimit *intent_rl;   /* per intent source */
	hearth_ratelimit *approval_rl; /* per approver */
	hearth_context *ctx;
	hearth_orch *orch;
	hearth_resource *res;
	hearth_approval *appr; /* plans waiting for the owner's approval */
	int appr_timer;
	int64_t appr_due;
	char prefix[96]; /* hearth/<home> */
	size_t prefix_len;
	char status_topic[112];
	int lock_fd;
	int sig_fd;
	int mqtt_fd;          /* watched socket, -1 when none */
	uint32_t mqtt_events; /* what the loop watches it for */
	bool connected;
	bool connack; /* the broker answered this connection attempt */
	bool stopping;
	int reconnect_ms; /* current backoff */
	int reconnect_timer;
	int misc_timer;
	int res_timer;
	int64_t res_due;
	int resume_timer; /* restored plans resume when it fires (0: none) */
	int maint_timer;
	int64_t last_maintenance; /* wall ms */
	char policy_hash[65];
	int64_t started_mono;
	unsigned long intent_seq;
	unsigned long n_intents, n_errors, n_commands, n_rate_limited;
};

static hearth_now
now_of(void)
{
	hearth_now now = {.mono_ms = hearth_mono_ms(), .wall_ms = hearth_wall_ms()};
	time_t t = (time_t)(now.wall_ms / 1000);
	struct tm tm;

	/* Agents read no clock: they get local time for flags' time windows. */
	if (localtime_r(&t, &tm)) {
		now.local_minute = tm.tm_hour * 60 + tm.tm_min;
		now.weekday = tm.tm_wday;
	}
	return now;
}

/* ==== Outbound ==== */

static void
publish_json(hearth_hub *h, const char *topic, cJSON *body, bool retain, const void *corr,
             int corr_len)
{
	char *text = hearth_json_print(body);
	int rc;

	if (!text)
		return;
	rc = hearth_mqtt_publish(h->mqtt, topic, text, (int)strlen(text), 1, retain, corr,
	                         corr_len);
	if (rc)
		LOG_DEBUG("hub", "publish %s: %s", topic, hearth_strerror(rc));
	hearth_free(text);
}

/* The <p>/status payload (also the last will). */
static void
status_json(char *buf, size_t len, const char *state)
{
	snprintf(buf, len, "{\"state\":\"%s\",\"version\":\"%s\",\"ts\":%lld}", state,
	         HEARTH_VERSION, (long long)hearth_wall_ms());
}

static void
publish_status(hearth_hub *h, const char *state)
{
	char buf[160];
	int rc;

	status_json(buf, sizeof(buf), state);
	rc = hearth_mqtt_publish(h->mqtt, h->status_topic, buf, (int)strlen(buf), 1, true, NULL, 0);
	if (rc)
		LOG_DEBUG("hub", "publish %s: %s", h->status_topic, hearth_strerror(rc));
}

/* Record kind/subject/detail in the audit chain (joins the turn's commit). */
static void
audit(hearth_hub *h, const char *kind, const char *subject, cJSON *detail)
{
	char *text = detail ? hearth_json_print(detail) : NULL;
	int rc = hearth_audit_append(h->store, hearth_wall_ms(), kind, subject, text);

	if (rc)
		LOG_ERR("hub", "audit %s %s not recorded: %s", kind, subject, hearth_strerror(rc));
	hearth_free(text);
	cJSON_Delete(detail);
}

/* A response topic from outside must be a plain topic: no wildcards. */
static bool
topic_ok(const char *t)
{
	size_t n = strlen(t);

	return n > 0 && n < TOPIC_MAX && !strpbrk(t, "+#");
}

/* The end of every plan goes into the audit chain, with the policy it ran under. */
static void
audit_plan_end(hearth_hub *h, const hearth_msg *m)
{
	static const char *const keep[] = {"intent_id", "intent",      "recipe", "outcome",
	                                   "reason",    "policy_hash", "user",   "source"};
	cJSON *d = cJSON_CreateObject();
	const char *outcome = "ended";
	char kind[48];

	hearth_json_get_str(m->body, "outcome", &outcome);
	for (size_t i = 0; d && i < sizeof(keep) / sizeof(keep[0]); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(m->body, keep[i]);

		if (v)
			cJSON_AddItemToObject(d, keep[i], cJSON_Duplicate(v, 1));
	}
	snprintf(kind, sizeof(kind), "plan.%s", outcome);
	audit(h, kind, m->id, d);
}

/* A command for a CoAP device goes out as a CoAP PUT (coapd). */
static bool
send_coap_command(hearth_hub *h, const struct hearth_device *d, const hearth_msg *m)
{
	if (!d || strcmp(d->transport, "coap") || !h->coapd)
		return false;
	hearth_coapd_command(h->coapd, d, m->body);
	h->n_commands++;
	return true;
}

/*
 * A command for a Zigbee2MQTT or Home Assistant device: its binding says
 * which messages carry it (a light may need two topics); they go out at
 * QoS 1, not retained. false when d is no binding's.
 */
static bool
send_eco_command(hearth_hub *h, const struct hearth_device *d, const hearth_msg *m)
{
	struct hearth_pubs pubs = {0};
	char why[256];
	int rc;

	if (!d || (strcmp(d->transport, "z2m") && strcmp(d->transport, "ha")) ||
	    !hearth_eco_runs(h->eco, d->transport))
		return false;
	rc = hearth_eco_command(h->eco, d, m->body, &pubs, why, sizeof(why));
	if (rc) {
		hearth_post_error(&h->out, rc == -ENOMEM ? "internal" : "bad_command", NULL, why);
		return true;
	}
	for (int i = 0; i < pubs.n; i++) {
		rc = hearth_mqtt_publish(h->mqtt, pubs.p[i].topic, pubs.p[i].payload, pubs.p[i].len,
		                         1, false, NULL, 0);
		if (rc)
			LOG_DEBUG("hub", "publish %s: %s", pubs.p[i].topic, hearth_strerror(rc));
	}
	hearth_pubs_clear(&pubs);
	h->n_commands++;
	return true;
}

/* The bindings learned a state topic (or the hub reconnected): subscribe. */
static void
eco_subscribe(void *ud, const char *pattern)
{
	hearth_hub *h = ud;
	int rc;

	if (!h->connected)
		return; /* on_connect subscribes everything */
	rc = hearth_mqtt_subscribe(h->mqtt, pattern, 1);
	if (rc)
		LOG_WARN("hub", "cannot subscribe %s: %s", pattern, hearth_strerror(rc));
}

/* The Zigbee2MQTT and Home Assistant bindings the configuration enables. */
static int
start_eco(hearth_hub *h, char *why, size_t wl)
{
	int rc = hearth_eco_new(h->cfg, &h->out, eco_subscribe, h, &h->eco, why, wl);

	if (rc)
		return rc;
	if (hearth_eco_runs(h->eco, "z2m"))
		hearth_orch_allow_transport(h->orch, "z2m");
	if (hearth_eco_runs(h->eco, "ha"))
		hearth_orch_allow_transport(h->orch, "ha");
	return 0;
}

static void on_drift(hearth_hub *h, hearth_msg *m);

/*
 * Device reliability and latency (semantic memory) from an ended plan's
 * steps: a confirmed command is a success with its latency (last send to
 * confirmation), a failed or rebound one a failure. Optimistic and skipped
 * steps say nothing about the device.
 */
static void
learn_devices(hearth_hub *h, const cJSON *episode)
{
	const cJSON *st;

	cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(episode, "steps"))
	{
		const cJSON *tl = cJSON_GetObjectItemCaseSensitive(st, "timeline");
		const char *dev = NULL;
		double sent = -1, conf = -1, failed = -1, rebound = -1;

		if (hearth_json_get_str(st, "device", &dev))
			continue;
		hearth_json_get_num(tl, "sent", &sent);
		hearth_json_get_num(tl, "confirmed", &conf);
		hearth_json_get_num(tl, "failed", &failed);
		hearth_json_get_num(tl, "rebound", &rebound);
		if (conf >= 0 && sent >= 0 && conf > sent)
			hearth_semantic_device_sample(h->store, dev, conf - sent, true);
		else if ((failed >= 0 || rebound >= 0) && sent >= 0)
			hearth_semantic_device_sample(h->store, dev, -1, false);
	}
}

/*
 * The recipe's success posterior and its habit (semantic memory) from an
 * ended plan: completed is a success, compensated or failed a failure; a
 * plan denied or expired says nothing about the recipe. The habit counts
 * the local hour the intent arrived.
 */
static void
learn_recipe(hearth_hub *h, const cJSON *episode)
{
	const char *recipe = NULL, *outcome = NULL;
	double ts = 0;
	struct tm tm;
	time_t t;

	if (hearth_json_get_str(episode, "recipe", &recipe) ||
	    hearth_json_get_str(episode, "outcome", &outcome))
		return;
	if (!strcmp(outcome, "completed") || !strcmp(outcome, "compensated") ||
	    !strcmp(outcome, "failed"))
		hearth_semantic_recipe_outcome(h->store, recipe, !strcmp(outcome, "completed"));
	hearth_json_get_num(episode, "ts", &ts);
	t = (time_t)(ts / 1000);
	if (ts > 0 && localtime_r(&t, &tm))
		hearth_semantic_habit(h->store, recipe, tm.tm_hour);
}

static void
route_out(hearth_hub *h, hearth_msg *m)
{
	char topic[TOPIC_MAX];
	hearth_now now;

	switch (m->type) {
	case HEARTH_MSG_DEVICE_COMMAND: {
		const struct hearth_device *d = hearth_context_device(h->ctx, m->id);

		if (send_coap_command(h, d, m) || send_eco_command(h, d, m))
			return;
		if (d && strcmp(d->transport, "mqtt")) {
			char detail[160];

			snprintf(detail, sizeof(detail),
			         "%s uses transport %s, which this build cannot send to yet", m->id,
			         d->transport);
			hearth_post_error(&h->out, "unsupported_transport", NULL, detail);
			return;
		}
		snprintf(topic, sizeof(topic), "%s/device/%s/set", h->prefix, m->id);
		publish_json(h, topic, m->body, false, NULL, 0);
		h->n_commands++;
		return;
	}
	case HEARTH_MSG_PLAN_EVENT:
		snprintf(topic, sizeof(topic), "%s/plan/%s", h->prefix, m->id);
		publish_json(h, topic, m->body, false, NULL, 0);
		return;
	case HEARTH_MSG_INTENT_REPLY:
		if (m->reply.topic && hearth_coapd_reply(h->coapd, m->reply.topic, m->body))
			return;
		if (m->reply.topic && topic_ok(m->reply.topic)) {
			publish_json(h, m->reply.topic, m->body, false, m->reply.corr,
			             m->reply.corr_len);
			return;
		}
		snprintf(topic, sizeof(topic), "%s/intent/%s/result", h->prefix, m->id);
		publish_json(h, topic, m->body, false, m->reply.corr, m->reply.corr_len);
		return;
	case HEARTH_MSG_ERROR: {
		const char *t = NULL;

		h->n_errors++;
		hearth_json_get_str(m->body, "topic", &t);
		if (t && strncmp(t, h->prefix, h->prefix_len) &&
		    !hearth_eco_owns_topic(h->eco, t)) { /* ecosystem topics stay absolute */
			/* Agents name topics relative to the prefix. */
			snprintf(topic, sizeof(topic), "%s/%s", h->prefix, t);
			cJSON_ReplaceItemInObjectCaseSensitive(m->body, "topic",
			                                       cJSON_CreateString(topic));
		}
		cJSON_AddNumberToObject(m->body, "ts", (double)hearth_wall_ms());
		if (hearth_log_level() >= HEARTH_LOG_DEBUG) {
			char *text = hearth_json_print(m->body);

			LOG_DEBUG("hub", "error: %s", text ? text : "?");
			hearth_free(text);
		}
		snprintf(topic, sizeof(topic), "%s/error", h->prefix);
		publish_json(h, topic, m->body, false, NULL, 0);
		return;
	}
	case HEARTH_MSG_EPISODE: {
		char *text = hearth_json_print(m->body);
		double ts = 0;
		int rc;

		now = now_of();
		hearth_json_get_num(m->body, "ended_at", &ts);
		rc = text ? hearth_store_episode_add(h->store, ts > 0 ? (int64_t)ts : now.wall_ms,
		                                     text, strlen(text))
		          : -ENOMEM;
		if (rc)
			LOG_ERR("hub", "episode %s not stored: %s", m->id, hearth_strerror(rc));
		hearth_free(text);
		learn_devices(h, m->body);
		learn_recipe(h, m->body);
		audit_plan_end(h, m);
		return;
	}
	case HEARTH_MSG_JOURNAL: {
		char *text = m->body ? hearth_json_print(m->body) : NULL;
		int rc = m->body ? (text ? hearth_journal_put(h->store, m->id, text, strlen(text))
		                         : -ENOMEM)
		                 : hearth_journal_del(h->store, m->id);

		if (rc)
			LOG_ERR("hub", "journal %s not written: %s", m->id, hearth_strerror(rc));
		hearth_free(text);
		return;
	}
	case HEARTH_MSG_APPROVAL_REQUEST:
		snprintf(topic, sizeof(topic), "%s/approval/%s/request", h->prefix, m->id);
		publish_json(h, topic, m->body, false, NULL, 0);
		return;
	case HEARTH_MSG_AUDIT: {
		const char *event = NULL;

		if (hearth_json_get_str(m->body, "event", &event))
			return;
		{
			char kind[64];

			snprintf(kind, sizeof(kind), "%s", event);
			cJSON_DeleteItemFromObjectCaseSensitive(m->body, "event");
			audit(h, kind, m->id, m->body);
			m->body = NULL; /* audit() freed it */
		}
		return;
	}
	case HEARTH_MSG_CONSENT: {
		const char *scope = NULL, *by = NULL;
		int rc = HEARTH_E_INVALID;

		if (!hearth_json_get_str(m->body, "scope", &scope) &&
		    !hearth_json_get_str(m->body, "by", &by))
			rc = hearth_consent_set_standing(
			        h->store, scope,
			        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m->body, "standing")),
			        by, hearth_wall_ms());
		if (rc)
			LOG_ERR("hub", "consent not recorded: %s", hearth_strerror(rc));
		return;
	}
	case HEARTH_MSG_SEMANTIC: {
		const char *kind = NULL, *name = NULL;
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(m->body, "value");
		char *text = v && !cJSON_IsNull(v) ? hearth_json_print(v) : NULL;
		int rc = HEARTH_E_INVALID;

		if (!hearth_json_get_str(m->body, "kind", &kind) &&
		    !hearth_json_get_str(m->body, "name", &name))
			rc = hearth_semantic_put_json(h->store, kind, name, text);
		if (rc)
			LOG_ERR("hub", "semantic record not written: %s", hearth_strerror(rc));
		hearth_free(text);
		return;
	}
	case HEARTH_MSG_FLAG_CHANGED:
		return; /* for the agents; nothing to put on the wire yet */
	case HEARTH_MSG_DRIFT:
		on_drift(h, m);
		return;
	case HEARTH_MSG_DEVICE_SAVE: {
		char *text = m->body ? hearth_json_print(m->body) : NULL;
		int rc = hearth_store_device_put(h->store, m->id, text, text ? strlen(text) : 0);

		if (rc)
			LOG_WARN("hub", "device %s not stored: %s", m->id, hearth_strerror(rc));
		hearth_free(text);
		return;
	}
	default:
		return;
	}
}

static void
route(void *ud, hearth_msg *m)
{
	hearth_hub *h = ud;
	hearth_now now = now_of();

	switch (m->type) {
	case HEARTH_MSG_DEVICE_META:
	case HEARTH_MSG_DEVICE_STATE:
	case HEARTH_MSG_DEVICE_AVAIL:
		hearth_context_handle(h->ctx, m, &now, &h->out);
		if (m->type == HEARTH_MSG_DEVICE_META)
			hearth_coapd_device(h->coapd, hearth_context_device(h->ctx, m->id));
		break;
	case HEARTH_MSG_INTENT:
		hearth_orch_handle(h->orch, m, &now, &h->out);
		break;
	case HEARTH_MSG_PLAN:
		/* a plan to ask about; an approved one (approver set) goes on to run */
		if (m->plan && m->plan->state == HEARTH_PLAN_AWAITING_APPROVAL &&
		    !m->plan->approver[0]) {
			hearth_approval_handle(h->appr, m, &now, &h->out);
			break;
		}
		if (m->plan && m->plan->preapproved && !m->plan->approver[0])
			hearth_approval_count_preapproved(h->appr, &now, &h->out);
		hearth_resource_handle(h->res, m, &now, &h->out);
		break;
	case HEARTH_MSG_DEVICE_CHANGED:
		hearth_resource_handle(h->res, m, &now, &h->out);
		break;
	case HEARTH_MSG_APPROVAL_RESPONSE:
		hearth_approval_handle(h->appr, m, &now, &h->out);
		break;
	case HEARTH_MSG_INTENT_REPLY:
	case HEARTH_MSG_PLAN_EVENT:
	case HEARTH_MSG_APPROVAL_REQUEST:
		/* Said only once the turn's journal and episodes are committed: a
		 * reply "running" must not outlive a crash that loses the plan. */
		hearth_post(&h->later_out, m);
		m->body = NULL;
		m->plan = NULL;
		memset(&m->reply, 0, sizeof(m->reply));
		break;
	default:
		route_out(h, m);
		break;
	}
}

static void
route_later(void *ud, hearth_msg *m)
{
	route_out(ud, m);
}

/* ==== Inbound ==== */

static void
post_in_error(hearth_hub *h, const char *code, const char *topic, const char *detail)
{
	hearth_post_error(&h->out, code, topic, detail);
}

/*
 * The rate limit of one message: its bucket is the string field key of body
 * when that is a valid id, else the anonymous one ("*", which no id can
 * be). RL_PASS, or a refusal: RL_ANSWER (reported on <p>/error, the reason
 * in why, for the sender to be answered too) or RL_DROP (a flood: dropped
 * unanswered, counted in the next answer). With always, a refusal is always
 * RL_ANSWER, but reported only when the limiter says so (a CoAP request
 * waits for its answer: it must get one).
 */
enum rl_verdict { RL_PASS, RL_ANSWER, RL_DROP };

static enum rl_verdict
rate_check(hearth_hub *h, hearth_ratelimit *rl, const cJSON *body, const char *key,
           const char *what, int rate, int burst, bool always, const char *topic, char *why,
           size_t wl)
{
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(body, key);
	bool named = cJSON_IsString(k) && hearth_id_valid_str(k->valuestring);
	struct hearth_ratelimit_refusal r;
	char more[80] = "";

	if (hearth_ratelimit_take(rl, named ? k->valuestring : "*", hearth_mono_ms(), &r))
		return RL_PASS;
	h->n_rate_limited++;
	if (!r.answer && !always)
		return RL_DROP;
	if (r.unanswered)
		snprintf(more, sizeof(more),
		         " (and %u more refused unanswered since the last answer)", r.unanswered);
	snprintf(why, wl,
	         "%s %s%.64s sends more than %d %s a second (burst %d): try again in %lld ms%s",
	         key, named ? "" : "(none: the anonymous bucket)", named ? k->valuestring : "",
	         rate, what, burst, (long long)r.retry_ms, more);
	if (r.answer)
		post_in_error(h, "rate_limited", topic, why);
	return RL_ANSWER;
}

/*
 * An intent from any transport (MQTT, CoAP): check it, give it an id, post
 * it. Past its source's rate limit it is refused: answered rate_limited at
 * once, or during a flood dropped unanswered (rate_check). body and reply
 * are taken. Returns 0, or an error with the reason in why, also reported
 * on <p>/error (with topic, when there is one).
 */
static int
intent_in(hearth_hub *h, const char *topic, cJSON *body, hearth_reply_to *reply, char *why,
          size_t wl)
{
	hearth_msg m = {.type = HEARTH_MSG_INTENT, .body = body, .reply = *reply};
	enum rl_verdict verdict;
	const cJSON *id;

	memset(reply, 0, sizeof(*reply));
	if (!cJSON_IsObject(body)) {
		snprintf(why, wl, "an intent is a JSON object");
		goto bad;
	}
	id = cJSON_GetObjectItemCaseSensitive(body, "id");
	if (id && !cJSON_IsNull(id)) {
		if (!cJSON_IsString(id) || !hearth_id_valid_str(id->valuestring)) {
			snprintf(why, wl, "id must be 1-64 characters of A-Z a-z 0-9 _ . -");
			goto bad;
		}
		snprintf(m.id, sizeof(m.id), "%s", id->valuestring);
	} else {
		snprintf(m.id, sizeof(m.id), "i-%llx-%lu", (unsigned long long)hearth_wall_ms(),
		         ++h->intent_seq);
	}
	/* Only CoAP calls without a topic. */
	verdict = rate_check(h, h->intent_rl, body, "source", "intents", h->cfg->intent_rate,
	                     h->cfg->intent_burst, !topic, topic, why, wl);
	if (verdict == RL_DROP) {
		hearth_msg_clear(&m);
		return 0;
	}
	if (verdict == RL_ANSWER) {
		/* The sender hears it too, on its reply topic; nothing is planned. */
		cJSON_Delete(m.body);
		m.type = HEARTH_MSG_INTENT_REPLY;
		m.body = cJSON_CreateObject();
		if (m.body && cJSON_AddStringToObject(m.body, "id", m.id) &&
		    cJSON_AddStringToObject(m.body, "error", "rate_limited") &&
		    cJSON_AddStringToObject(m.body, "detail", why))
			hearth_post(&h->out, &m);
		else
			hearth_msg_clear(&m);
		return 0;
	}
	h->n_intents++;
	hearth_post(&h->out, &m);
	return 0;
bad:
	post_in_error(h, "bad_request", topic, why);
	hearth_msg_clear(&m);
	return HEARTH_E_INVALID;
}

static void
on_intent_msg(hearth_hub *h, const struct hearth_mqtt_msg *mm, cJSON *body)
{
	hearth_reply_to reply = {0};
	char why[256];

	if (mm->response_topic && !(reply.topic = hearth_strdup(mm->response_topic)))
		goto oom;
	if (mm->corr && mm->corr_len > 0) {
		reply.corr = hearth_memdup(mm->corr, (size_t)mm->corr_len);
		if (!reply.corr)
			goto oom;
		reply.corr_len = mm->corr_len;
	}
	if (mm->response_topic && !topic_ok(mm->response_topic) && cJSON_IsObject(body))
		post_in_error(h, "bad_request", mm->topic,
		              "response topic must be a plain topic (no + or #); replying on the "
		              "result topic");
	intent_in(h, mm->topic, body, &reply, why, sizeof(why));
	return;
oom:
	hearth_reply_clear(&reply);
	cJSON_Delete(body);
	post_in_error(h, "internal", mm->topic, "out of memory");
}

/* "online"/"offline", or JSON {"state":"online"} as Zigbee2MQTT sends it. */
static int
parse_availability(const struct hearth_mqtt_msg *mm, bool *online)
{
	char buf[64];
	cJSON *js;
	const char *s;
	int rc = HEARTH_E_INVALID;

	if (mm->len <= 0 || mm->len >= (int)sizeof(buf))
		return HEARTH_E_INVALID;
	memcpy(buf, mm->payload, (size_t)mm->len);
	buf[mm->len] = '\0';
	if (!strcmp(buf, "online") || !strcmp(buf, "offline")) {
		*online = buf[1] == 'n';
		return 0;
	}
	if (hearth_json_parse(buf, (size_t)mm->len, &js, NULL, 0))
		return HEARTH_E_INVALID;
	if (cJSON_IsString(js))
		s = js->valuestring;
	else if (hearth_json_get_str(js, "state", &s))
		s = NULL;
	if (s && (!strcmp(s, "online") || !strcmp(s, "offline"))) {
		*online = s[1] == 'n';
		rc = 0;
	}
	cJSON_Delete(js);
	return rc;
}

static void
on_device_msg(hearth_hub *h, const struct hearth_mqtt_msg *mm, const char *rest)
{
	hearth_msg m = {0};
	const char *slash = strchr(rest, '/');
	char why[128];
	size_t idlen;

	if (!slash)
		return;
	idlen = (size_t)(slash - rest);
	if (!hearth_id_valid(rest, idlen)) {
		post_in_error(h, "bad_request", mm->topic,
		              "device ids are 1-64 characters of A-Z a-z 0-9 _ . -");
		return;
	}
	memcpy(m.id, rest, idlen);
	if (!strcmp(slash + 1, "meta"))
		m.type = HEARTH_MSG_DEVICE_META;
	else if (!strcmp(slash + 1, "state"))
		m.type = HEARTH_MSG_DEVICE_STATE;
	else if (!strcmp(slash + 1, "availability"))
		m.type = HEARTH_MSG_DEVICE_AVAIL;
	else
		return; /* set (our own commands) and anything else */
	if (m.type == HEARTH_MSG_DEVICE_AVAIL) {
		if (parse_availability(mm, &m.flag)) {
			post_in_error(h, "bad_request", mm->topic,
			              "availability is \"online\" or \"offline\"");
			return;
		}
		hearth_post(&h->out, &m);
		return;
	}
	if (mm->len > 0) {
		int rc = hearth_json_parse(mm->payload, (size_t)mm->len, &m.body, why, sizeof(why));

		if (rc) {
			post_in_error(h, rc == HEARTH_E_BAD_JSON ? "bad_json" : "internal",
			              mm->topic, rc == HEARTH_E_BAD_JSON ? why : "out of memory");
			return;
		}
	}
	hearth_post(&h->out, &m);
}

/*
 * <p>/approval/<plan_id>/response: the plan id must be an id, the payload
 * JSON, and the approver within its rate limit, before the approval agent
 * looks at it (approval.h: it checks the rest).
 */
static void
on_approval_msg(hearth_hub *h, const struct hearth_mqtt_msg *mm, const char *rest)
{
	hearth_msg m = {.type = HEARTH_MSG_APPROVAL_RESPONSE};
	const char *slash = strchr(rest, '/');
	char why[256];
	int rc;

	if (!slash || strcmp(slash + 1, "response"))
		return; /* our own requests */
	if (slash - rest > HEARTH_ID_MAX || !hearth_id_valid(rest, (size_t)(slash - rest))) {
		post_in_error(h, "bad_request", mm->topic,
		              "plan ids are 1-64 characters of A-Z a-z 0-9 _ . -");
		return;
	}
	if (mm->len == 0) {
		post_in_error(h, "bad_request", mm->topic, "empty approval response");
		return;
	}
	memcpy(m.id, rest, (size_t)(slash - rest));
	rc = hearth_json_parse(mm->payload, (size_t)mm->len, &m.body, why, sizeof(why));
	if (rc) {
		post_in_error(h, rc == HEARTH_E_BAD_JSON ? "bad_json" : "internal", mm->topic,
		              rc == HEARTH_E_BAD_JSON ? why : "out of memory");
		return;
	}
	if (!cJSON_IsObject(m.body))
		post_in_error(h, "bad_request", mm->topic, "an approval response is a JSON object");
	else if (rate_check(h, h->approval_rl, m.body, "approver", "approval responses",
	                    h->cfg->approval_rate, h->cfg->approval_burst, false, mm->topic, why,
	                    sizeof(why)) == RL_PASS) {
		hearth_post(&h->out, &m);
		return;
	}
	cJSON_Delete(m.body);
}

static void
on_message(void *ud, const struct hearth_mqtt_msg *mm)
{
	hearth_hub *h = ud;
	const char *rest;
	char why[128];

	if (hearth_eco_on_message(h->eco, mm->topic, mm->payload, mm->len, hearth_wall_ms()))
		return;
	if (strncmp(mm->topic, h->prefix, h->prefix_len) || mm->topic[h->prefix_len] != '/')
		return;
	rest = mm->topic + h->prefix_len + 1;
	if (mm->len > h->cfg->max_payload) {
		snprintf(why, sizeof(why), "payload of %d bytes; the limit is %d", mm->len,
		         h->cfg->max_payload);
		post_in_error(h, "too_large", mm->topic, why);
		return;
	}
	if (!strcmp(rest, "intent")) {
		cJSON *body;
		int rc;

		if (mm->len == 0) {
			post_in_error(h, "bad_request", mm->topic, "empty intent");
			return;
		}
		rc = hearth_json_parse(mm->payload, (size_t)mm->len, &body, why, sizeof(why));
		if (rc) {
			post_in_error(h, rc == HEARTH_E_BAD_JSON ? "bad_json" : "internal",
			              mm->topic, rc == HEARTH_E_BAD_JSON ? why : "out of memory");
			return;
		}
		on_intent_msg(h, mm, body);
	} else if (!strncmp(rest, "device/", 7)) {
		on_device_msg(h, mm, rest + 7);
	} else if (!strncmp(rest, "approval/", 9)) {
		on_approval_msg(h, mm, rest + 9);
	}
}

/* ==== Connection ==== */

static void on_mqtt_io(void *ud, int fd, uint32_t events);
static void try_connect(void *ud);
static void tls_failed(hearth_hub *h);

static void
watch_mqtt(hearth_hub *h)
{
	int fd = hearth_mqtt_socket(h->mqtt);
	uint32_t ev = EPOLLIN | (hearth_mqtt_want_write(h->mqtt) ? EPOLLOUT : 0);
	if (fd == h->mqtt_fd && ev == h->mqtt_events)
		return; /* nothing changed: spare the syscall on the hot path */
	if (fd != h->mqtt_fd && h->mqtt_fd >= 0)
		hearth_loop_unwatch(h->loop, h->mqtt_fd);
	h->mqtt_fd = fd;
	h->mqtt_events = ev;
	if (fd >= 0)
		hearth_loop_watch(h->loop, fd, ev, on_mqtt_io, h);
}

static void
schedule_reconnect(hearth_hub *h)
{
	if (h->stopping || h->reconnect_timer > 0)
		return;
	h->reconnect_timer =
	        hearth_loop_timer(h->loop, hearth_mono_ms() + h->reconnect_ms, try_connect, h);
	h->reconnect_ms =
	        h->reconnect_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : h->reconnect_ms * 2;
}

static void
lost(hearth_hub *h)
{
	if (h->mqtt_fd >= 0)
		hearth_loop_unwatch(h->loop, h->mqtt_fd);
	h->mqtt_fd = -1;
	h->mqtt_events = 0;
	if (h->connected && !h->stopping)
		LOG_WARN("hub", "lost the broker at %s:%d; reconnecting", h->cfg->broker_host,
		         h->cfg->broker_port);
	h->connected = false;
	/* Gone before any CONNACK: with TLS, the handshake was refused. */
	if (!h->stopping && !h->connack && h->cfg->mqtt_tls_ca_file) {
		h->connack = true; /* said once per attempt */
		tls_failed(h);
	}
	schedule_reconnect(h);
}

/* The TLS handshake failed (in the connect, or later in the first read). */
static void
tls_failed(hearth_hub *h)
{
	LOG_WARN("hub",
	         "TLS to the broker at %s:%d failed (is %s the CA that signed the broker's "
	         "certificate, does that certificate name %s, does the broker accept our "
	         "client certificate?); retrying in %d ms",
	         h->cfg->broker_host, h->cfg->broker_port, h->cfg->mqtt_tls_ca_file,
	         h->cfg->broker_host, h->reconnect_ms);
}

static void
try_connect(void *ud)
{
	hearth_hub *h = ud;
	char will[160];
	int rc;

	h->reconnect_timer = 0;
	/* The will says when we were last seen alive: now. */
	status_json(will, sizeof(will), "offline");
	hearth_mqtt_set_will(h->mqtt, will);
	h->connack = false;
	rc = hearth_mqtt_connect(h->mqtt);
	if (rc == -EPROTO && h->cfg->mqtt_tls_ca_file) {
		tls_failed(h);
		schedule_reconnect(h);
		return;
	}
	if (rc) {
		LOG_WARN("hub", "cannot reach the broker at %s:%d: %s; retrying in %d ms",
		         h->cfg->broker_host, h->cfg->broker_port, hearth_strerror(rc),
		         h->reconnect_ms);
		schedule_reconnect(h);
		return;
	}
	watch_mqtt(h);
}

static void
on_resume(void *ud)
{
	hearth_hub *h = ud;
	hearth_now now = now_of();

	h->resume_timer = 0;
	hearth_resource_resume(h->res, &now, &h->out);
}

static void
on_connect(void *ud, int rc, bool session_present)
{
	hearth_hub *h = ud;
	static const char *const subs[] = {"intent", "device/+/meta", "device/+/state",
	                                   "device/+/availability", "approval/+/response"};
	char topic[TOPIC_MAX];

	h->connack = true;
	if (rc) {
		/* MQTT v5 0x86, 0x87 (v3.1.1: 4, 5): the credentials. */
		bool creds = rc == 0x86 || rc == 0x87 || rc == 4 || rc == 5;

		LOG_ERR("hub", "the broker at %s:%d refused us: %s%s%s; retrying",
		        h->cfg->broker_host, h->cfg->broker_port, hearth_mqtt_reason(rc),
		        creds ? ": check mqtt.username and the password as user " : "",
		        creds ? (h->cfg->mqtt_username ? h->cfg->mqtt_username : "(none)") : "");
		return; /* the broker closes; on_disconnect schedules the retry */
	}
	h->connected = true;
	h->reconnect_ms = RECONNECT_MIN_MS;
	LOG_INFO("hub", "connected to %s:%d as %s (%s session)", h->cfg->broker_host,
	         h->cfg->broker_port, h->cfg->mqtt_client_id, session_present ? "resumed" : "new");
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(topic, sizeof(topic), "%s/%s", h->prefix, subs[i]);
		hearth_mqtt_subscribe(h->mqtt, topic, 1);
	}
	hearth_eco_subscribe_all(h->eco);
	publish_status(h, "online");
	if (hearth_resource_resuming(h->res) && !h->resume_timer) {
		/* The devices' retained states come right after the subscriptions:
		 * take the restored plans up once they had a moment to arrive. */
		h->resume_timer = hearth_loop_timer(
		        h->loop, hearth_mono_ms() + h->cfg->resume_settle_ms, on_resume, h);
		LOG_INFO("hub", "%d interrupted plan(s) resume in %d ms",
		         hearth_resource_resuming(h->res), h->cfg->resume_settle_ms);
	}
}

static void
on_disconnect(void *ud, int rc)
{
	hearth_hub *h = ud;

	if (!h->stopping)
		LOG_DEBUG("hub", "disconnected (%d)", rc);
	lost(h);
}

static void
on_mqtt_io(void *ud, int fd, uint32_t events)
{
	hearth_hub *h = ud;
	int rc = 0;

	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		rc = hearth_mqtt_read(h->mqtt);
	if (!rc && (events & EPOLLOUT))
		rc = hearth_mqtt_write(h->mqtt);
	if (rc && h->mqtt_fd >= 0 && hearth_mqtt_socket(h->mqtt) < 0)
		lost(h);
}

static void
on_misc(void *ud)
{
	hearth_hub *h = ud;

	if (h->mqtt_fd >= 0 && hearth_mqtt_misc(h->mqtt) && hearth_mqtt_socket(h->mqtt) < 0)
		lost(h);
	h->misc_timer = hearth_loop_timer(h->loop, hearth_mono_ms() + 1000, on_misc, h);
}

/* ==== Per-turn work ==== */

static void
on_res_timer(void *ud)
{
	hearth_hub *h = ud;
	hearth_now now = now_of();

	h->res_timer = 0;
	h->res_due = INT64_MAX;
	hearth_resource_tick(h->res, &now, &h->out);
}

static void
on_appr_timer(void *ud)
{
	hearth_hub *h = ud;
	hearth_now now = now_of();

	h->appr_timer = 0;
	h->appr_due = INT64_MAX;
	hearth_approval_tick(h->appr, &now, &h->out);
}

/* Keep a timer at an agent's next deadline: *timer / *due are its state. */
static void
rearm(hearth_hub *h, int64_t due, int *timer, int64_t *cur, void (*fn)(void *))
{
	if (due == *cur)
		return;
	if (*timer > 0)
		hearth_loop_timer_cancel(h->loop, *timer);
	*timer = 0;
	if (due != INT64_MAX)
		*timer = hearth_loop_timer(h->loop, due, fn, h);
	*cur = due;
}

/* Write what libmosquitto holds now, rather than a wakeup later. */
static void
flush_mqtt(hearth_hub *h)
{
	if (h->mqtt_fd >= 0 && hearth_mqtt_want_write(h->mqtt)) {
		if (hearth_mqtt_write(h->mqtt) && hearth_mqtt_socket(h->mqtt) < 0)
			lost(h);
	}
}

static void
on_turn(void *ud)
{
	hearth_hub *h = ud;
	int64_t due;
	char why[256];
	hearth_bus_drain(h->bus, route, h);
	/* Device commands go out now (they are what the home feels)... */
	flush_mqtt(h);
	/* ...then the turn's writes commit together (group commit)... */
	if (hearth_store_pending(h->store)) {
		int rc = hearth_store_flush(h->store, why, sizeof(why));

		if (rc) {
			LOG_ERR("hub", "store: %s", why);
			hearth_post_error(&h->out, "store", NULL, why);
			hearth_bus_drain(h->bus, route, h);
		}
	}
	/* ...and only then are replies and plan events said. */
	if (hearth_bus_drain(h->later, route_later, h))
		flush_mqtt(h);
	if (h->mqtt_fd >= 0)
		watch_mqtt(h);
	due = hearth_resource_next_deadline(h->res);
	rearm(h, due, &h->res_timer, &h->res_due, on_res_timer);
	rearm(h, hearth_approval_next_deadline(h->appr), &h->appr_timer, &h->appr_due,
	      on_appr_timer);
}

/* Retention (episodes by age, the audit chain) and a look at store usage. */
static void
on_maintenance(void *ud)
{
	hearth_hub *h = ud;
	struct hearth_store_info si;
	int64_t now = hearth_wall_ms();

	h->maint_timer = hearth_loop_timer(
	        h->loop, hearth_mono_ms() + h->cfg->maintenance_s * 1000LL, on_maintenance, h);
	h->last_maintenance = now;
	if (h->cfg->episodes_max_age_days > 0)
		hearth_episodes_prune(h->store, now, h->cfg->episodes_max_age_days * 86400000LL);
	hearth_audit_retain(h->store, now, h->cfg->audit_keep_days * 86400000LL,
	                    (uint64_t)h->cfg->audit_keep_min);
	if (!hearth_store_info(h->store, &si) && si.map_size &&
	    si.map_used * 100 / si.map_size >= 80)
		LOG_WARN("hub",
		         "store %s is %zu%% full (%zu of %zu MiB): raise store.map_max_mb or "
		         "lower store.episodes_max",
		         h->cfg->data_dir, si.map_used * 100 / si.map_size, si.map_used >> 20,
		         si.map_size >> 20);
}

static void
on_signal(void *ud, int fd, uint32_t events)
{
	hearth_hub *h = ud;
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	LOG_INFO("hub", "signal %d: stopping", (int)si.ssi_signo);
	h->stopping = true;
}

/* ==== Context: flags, drift, privacy ==== */

/* Once a minute: drift checks and the flags' time windows. */
static void
on_minute(void *ud)
{
	hearth_hub *h = ud;
	hearth_now now = now_of();

	hearth_context_tick(h->ctx, &now, &h->out);
	hearth_loop_timer(h->loop, hearth_mono_ms() + 60000, on_minute, h);
}

/* A drift started or cleared: into the audit chain and onto <p>/drift. */
static void
on_drift(hearth_hub *h, hearth_msg *m)
{
	const char *feature = "?";
	char topic[TOPIC_MAX];

	hearth_json_get_str(m->body, "feature", &feature);
	audit(h, m->flag ? "drift.started" : "drift.cleared", feature, cJSON_Duplicate(m->body, 1));
	snprintf(topic, sizeof(topic), "%s/drift", h->prefix);
	publish_json(h, topic, m->body, false, NULL, 0);
}

static int
grant_consent(void *ud, const char *scope, const char *json, size_t len)
{
	hearth_hub *h = ud;

	if (hearth_consent_allowed(h->store, scope, NULL, hearth_wall_ms()) == 1)
		hearth_privacy_grant_scope(hearth_context_privacy(h->ctx), scope);
	return 0;
}

/* The configuration's flags and drift settings; consents into the guard. */
static int
setup_context(hearth_hub *h, char *why, size_t wl)
{
	int rc = hearth_context_configure(h->ctx, h->cfg->flags, h->cfg->drift,
	                                  h->cfg->file ? h->cfg->file : "configuration", why, wl);

	if (rc)
		return rc;
	hearth_privacy_reset(hearth_context_privacy(h->ctx));
	return hearth_consents_each(h->store, "class:", grant_consent, h);
}

/* ==== Control socket ==== */

/* A preview has no side effects: the orchestrator answers into a private
 * outbox, and the reply is the answer (nothing reaches the bus). */
struct preview {
	cJSON *reply;
};

static void
preview_post(void *ud, hearth_msg *m)
{
	struct preview *pv = ud;

	if (m->type == HEARTH_MSG_INTENT_REPLY && !pv->reply) {
		pv->reply = m->body;
		m->body = NULL;
	}
	hearth_msg_clear(m);
}

/* plan {"text": "..."} or {"intent": ..., "slots": ...}: the preview reply. */
static cJSON *
ctl_plan(hearth_hub *h, const cJSON *req, char *err, size_t err_len)
{
	struct preview pv = {0};
	hearth_outbox out = {.post = preview_post, .ud = &pv};
	hearth_msg m = {.type = HEARTH_MSG_INTENT};
	hearth_now now = now_of();
	const char *text = NULL, *intent = NULL;

	hearth_json_get_str(req, "text", &text);
	hearth_json_get_str(req, "intent", &intent);
	if (!text && !intent) {
		snprintf(err, err_len, "plan needs \"text\" (or \"intent\")");
		return NULL;
	}
	snprintf(m.id, sizeof(m.id), "ctl-%llx-%lu", (unsigned long long)now.wall_ms,
	         ++h->intent_seq);
	m.body = cJSON_CreateObject();
	if (!m.body)
		return NULL;
	if (text)
		cJSON_AddStringToObject(m.body, "text", text);
	if (intent)
		cJSON_AddStringToObject(m.body, "intent", intent);
	if (cJSON_GetObjectItemCaseSensitive(req, "slots"))
		cJSON_AddItemToObject(
		        m.body, "slots",
		        cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(req, "slots"), 1));
	cJSON_AddBoolToObject(m.body, "preview", true);
	hearth_orch_handle(h->orch, &m, &now, &out);
	hearth_msg_clear(&m);
	if (!pv.reply)
		snprintf(err, err_len, "no answer from the planner");
	return pv.reply;
}

static cJSON *
ctl_status(hearth_hub *h)
{
	struct hearth_store_info si;
	cJSON *o = cJSON_CreateObject();
	char broker[300];

	if (!o)
		return NULL;
	snprintf(broker, sizeof(broker), "%s:%d", h->cfg->broker_host, h->cfg->broker_port);
	cJSON_AddStringToObject(o, "version", HEARTH_VERSION);
	cJSON_AddStringToObject(o, "home", h->cfg->home);
	cJSON_AddStringToObject(o, "state", h->connected ? "online" : "offline");
	cJSON_AddStringToObject(o, "broker", broker);
	cJSON_AddBoolToObject(o, "connected", h->connected);
	cJSON_AddNumberToObject(o, "uptime_s",
	                        (double)((hearth_mono_ms() - h->started_mono) / 1000));
	cJSON_AddNumberToObject(o, "devices", hearth_context_count(h->ctx));
	cJSON_AddNumberToObject(o, "devices_online", hearth_context_online_count(h->ctx));
	cJSON_AddNumberToObject(o, "plans_active", hearth_resource_active(h->res));
	cJSON_AddNumberToObject(o, "recipes", hearth_recipe_book_count(h->book));
	if (!hearth_store_info(h->store, &si))
		cJSON_AddNumberToObject(o, "episodes", (double)si.episodes);
	cJSON_AddNumberToObject(o, "intents", (double)h->n_intents);
	cJSON_AddNumberToObject(o, "commands", (double)h->n_commands);
	cJSON_AddNumberToObject(o, "errors", (double)h->n_errors);
	cJSON_AddNumberToObject(o, "rate_limited", (double)h->n_rate_limited);
	cJSON_AddStringToObject(o, "data_dir", h->cfg->data_dir);
	return o;
}

static cJSON *
ctl_health(hearth_hub *h, char *err, size_t err_len)
{
	struct hearth_backup_db dbs[HEARTH_BACKUP_DBS_MAX];
	struct hearth_store_info si;
	cJSON *o, *st, *arr;
	int n, rc;

	if ((rc = hearth_store_info(h->store, &si))) {
		snprintf(err, err_len, "reading the store: %s", hearth_strerror(rc));
		return NULL;
	}
	n = hearth_backup_db_entries(h->store, dbs, HEARTH_BACKUP_DBS_MAX);
	o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "state", h->connected ? "online" : "offline");
	cJSON_AddNumberToObject(o, "uptime_s",
	                        (double)((hearth_mono_ms() - h->started_mono) / 1000));
	cJSON_AddNumberToObject(o, "plans_active", hearth_resource_active(h->res));
	cJSON_AddNumberToObject(o, "bus_dropped", (double)hearth_bus_dropped(h->bus));
	cJSON_AddItemToObject(o, "context", hearth_context_health_json(h->ctx));
	cJSON_AddStringToObject(o, "policy_hash", h->policy_hash);
	st = cJSON_AddObjectToObject(o, "store");
	if (st) {
		cJSON_AddStringToObject(st, "dir", h->cfg->data_dir);
		cJSON_AddNumberToObject(st, "schema_version", si.schema_version);
		cJSON_AddNumberToObject(st, "map_size", (double)si.map_size);
		cJSON_AddNumberToObject(st, "map_used", (double)si.map_used);
		cJSON_AddNumberToObject(st, "map_use_pct",
		                        si.map_size ? (double)(si.map_used * 100 / si.map_size)
		                                    : 0);
		cJSON_AddNumberToObject(st, "last_maintenance", (double)h->last_maintenance);
		cJSON_AddBoolToObject(st, "synced", h->cfg->store_sync);
	}
	arr = cJSON_AddArrayToObject(o, "databases");
	for (int i = 0; arr && i < n; i++) {
		cJSON *d = cJSON_CreateObject();

		cJSON_AddStringToObject(d, "name", dbs[i].name);
		cJSON_AddNumberToObject(d, "entries", dbs[i].present ? (double)dbs[i].entries : 0);
		cJSON_AddItemToArray(arr, d);
	}
	return o;
}

/*
 * constraints: the rules and the policy hash. constraints.load {"file"},
 * constraints.add {"rule"}, constraints.remove {"id"}: change them, commit at
 * once, audit the change, and plan under the new hash from the next intent.
 */
static cJSON *
ctl_constraints(hearth_hub *h, const char *cmd, const cJSON *req, char *err, size_t err_len)
{
	char before[65], after[65];
	const char *arg = NULL;
	cJSON *rules = NULL, *o, *d;
	int rc = 0;

	memcpy(before, h->policy_hash, sizeof(before));
	if (!strcmp(cmd, "constraints.load")) {
		if (hearth_json_get_str(req, "file", &arg) || arg[0] != '/') {
			snprintf(err, err_len, "constraints.load needs \"file\": an absolute path");
			return NULL;
		}
		rc = hearth_constraints_load_file(h->store, arg, err, err_len);
	} else if (!strcmp(cmd, "constraints.add")) {
		const cJSON *rule = cJSON_GetObjectItemCaseSensitive(req, "rule");

		rc = hearth_constraints_add(h->store, rule, "rule", err, err_len);
		if (!rc)
			hearth_json_get_str(rule, "id", &arg);
	} else if (!strcmp(cmd, "constraints.remove")) {
		if (hearth_json_get_str(req, "id", &arg)) {
			snprintf(err, err_len, "constraints.remove needs \"id\"");
			return NULL;
		}
		rc = hearth_constraints_remove(h->store, arg);
	} else if (strcmp(cmd, "constraints")) {
		snprintf(err, err_len, "unknown command \"%.40s\"", cmd);
		return NULL;
	}
	if (rc) {
		if (!err[0])
			snprintf(err, err_len, "%s", hearth_strerror(rc));
		return NULL;
	}
	if (strcmp(cmd, "constraints")) {
		if ((rc = hearth_store_flush(h->store, err, err_len)))
			return NULL;
	}
	if ((rc = hearth_constraints_get(h->store, &rules, after))) {
		snprintf(err, err_len, "reading the hard rules: %s", hearth_strerror(rc));
		return NULL;
	}
	if (strcmp(before, after)) {
		/* The planner checks plans against the rules themselves (policy.h). */
		if (hearth_orch_set_rules(h->orch, rules)) {
			snprintf(err, err_len,
			         "out of memory handing the new rules to the planner");
			cJSON_Delete(rules);
			return NULL;
		}
		memcpy(h->policy_hash, after, sizeof(after));
		hearth_orch_set_policy_hash(h->orch, h->policy_hash);
		d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "command", cmd);
		if (arg)
			cJSON_AddStringToObject(d, "argument", arg);
		cJSON_AddStringToObject(d, "policy_hash_before", before);
		cJSON_AddStringToObject(d, "policy_hash", after);
		audit(h, "constraints.changed", h->cfg->home, d);
		hearth_store_flush(h->store, err, err_len);
		LOG_INFO("hub", "hard rules changed (%s): policy %.12s", cmd, after);
	}
	o = cJSON_CreateObject();
	if (!o) {
		cJSON_Delete(rules);
		return NULL;
	}
	cJSON_AddStringToObject(o, "policy_hash", h->policy_hash);
	cJSON_AddItemToObject(o, "rules", rules);
	return o;
}

static int
add_episode(void *ud, const char *key, const char *json, size_t len)
{
	cJSON *arr = ud, *e;

	if (hearth_json_parse(json, len, &e, NULL, 0) == 0)
		cJSON_AddItemToArray(arr, e);
	return 0;
}

static cJSON *
string_array(char *const *v, int n)
{
	cJSON *arr = cJSON_CreateArray();

	for (int i = 0; arr && i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(v[i]));
	return arr;
}

/* recipes: the loaded book, one object per recipe. */
static cJSON *
ctl_recipes(hearth_hub *h)
{
	cJSON *arr = cJSON_CreateArray();

	for (int i = 0; arr && i < hearth_recipe_book_count(h->book); i++) {
		const struct hearth_recipe *r = hearth_recipe_book_at(h->book, i);
		cJSON *o = cJSON_CreateObject();

		if (!o)
			break;
		cJSON_AddStringToObject(o, "id", r->id);
		cJSON_AddStringToObject(o, "version", r->version);
		cJSON_AddStringToObject(o, "title", r->title ? r->title : "");
		cJSON_AddItemToObject(o, "intents", string_array(r->intents, r->nintents));
		cJSON_AddItemToObject(o, "sentences", string_array(r->sentences, r->nsentences));
		cJSON_AddStringToObject(o, "approval", hearth_recipe_approval_name(r->approval));
		cJSON_AddStringToObject(o, "mode", hearth_recipe_mode_name(r->mode));
		cJSON_AddNumberToObject(o, "steps", r->nsteps);
		cJSON_AddStringToObject(o, "file", r->file);
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

/*
 * Paired phones (issue 7, item 3). pair {"name","rotate"}: a new random key,
 * committed and audited (the name only) before the answer, which carries
 * the key in hex for hearthctl to print; a name already paired needs
 * "rotate". unpair {"name"}. pairs: names and pairing times, no key. The
 * daemon does it so the audit chain has one writer.
 */
/*
 * consents: every scope with its standing and counted approvals.
 * consent.grant / consent.revoke {"scope"}: the owner's word (consents.h),
 * committed and audited before the answer, which is the new list. The
 * orchestrator reads standing pre-approvals at plan time, so it applies from
 * the next intent.
 */
static cJSON *
ctl_consent(hearth_hub *h, const char *cmd, const cJSON *req, char *err, size_t err_len)
{
	const char *scope = NULL;
	cJSON *list = NULL;
	int rc;

	if (strcmp(cmd, "consents")) {
		if (hearth_json_get_str(req, "scope", &scope)) {
			snprintf(err, err_len, "%s needs \"scope\", e.g. recipe:door.unlock", cmd);
			return NULL;
		}
		rc = hearth_consent_owner(h->store, scope, !strcmp(cmd, "consent.grant"),
		                          hearth_wall_ms());
		if (rc == HEARTH_E_INVALID) {
			snprintf(err, err_len,
			         "\"%.80s\" is not a scope: 1-256 printable characters, no spaces "
			         "(recipe:<id>, recipe:<id>/room:<room>, class:<class>/<consumer>)",
			         scope);
			return NULL;
		}
		if (rc || (rc = hearth_store_flush(h->store, err, err_len))) {
			if (!err[0])
				snprintf(err, err_len, "%s %s: %s", cmd, scope,
				         hearth_strerror(rc));
			return NULL;
		}
		LOG_INFO("hub", "consent %s %s by the owner",
		         strcmp(cmd, "consent.grant") ? "revoked for" : "granted for", scope);
	}
	rc = hearth_consents_list(h->store, &list);
	if (rc) {
		snprintf(err, err_len, "reading the consents: %s", hearth_strerror(rc));
		return NULL;
	}
	return list;
}

static cJSON *
ctl_pair(hearth_hub *h, const char *cmd, const cJSON *req, char *err, size_t err_len)
{
	char hex[2 * HEARTH_APPROVER_KEY_LEN + 1] = "", broker[300];
	const char *name = NULL;
	bool unpair = !strcmp(cmd, "unpair"), rotated = false;
	int64_t now = hearth_wall_ms();
	cJSON *o = NULL;
	int rc;

	if (!strcmp(cmd, "pairs")) {
		if ((rc = hearth_approvers_list(h->store, &o)))
			snprintf(err, err_len, "reading the paired approvers: %s",
			         hearth_strerror(rc));
		return o;
	}
	if (hearth_json_get_str(req, "name", &name) || !hearth_id_valid_str(name)) {
		snprintf(err, err_len, "%s needs \"name\": 1-64 characters of A-Z a-z 0-9 _ . -",
		         cmd);
		return NULL;
	}
	rc = unpair ? hearth_approver_unpair(h->store, name, now)
	            : hearth_approver_pair(
	                      h->store, name,
	                      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "rotate")), now,
	                      hex, &rotated);
	if (rc == HEARTH_E_NOT_FOUND && unpair)
		snprintf(err, err_len, "%s is not paired (hearthctl pairs lists who is)", name);
	else if (rc == HEARTH_E_BUSY)
		snprintf(err, err_len,
		         "%s is already paired: hearthctl pair %s --rotate gives it a new key (the "
		         "old one stops working), hearthctl unpair %s removes it",
		         name, name, name);
	else if (rc)
		snprintf(err, err_len, "%s %s: %s", cmd, name, hearth_strerror(rc));
	if (rc || hearth_store_flush(h->store, err, err_len))
		goto out;
	LOG_INFO("hub", "approver %s %s", name,
	         unpair    ? "unpaired"
	         : rotated ? "given a new key"
	                   : "paired");
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "approver", name)) {
		snprintf(err, err_len, "out of memory");
		cJSON_Delete(o);
		o = NULL;
		goto out;
	}
	if (unpair) {
		cJSON_AddBoolToObject(o, "unpaired", true);
		goto out;
	}
	snprintf(broker, sizeof(broker), "%s:%d", h->cfg->broker_host, h->cfg->broker_port);
	cJSON_AddNumberToObject(o, "paired_at", (double)now);
	cJSON_AddBoolToObject(o, "rotated", rotated);
	cJSON_AddStringToObject(o, "hub", h->prefix);
	cJSON_AddStringToObject(o, "broker", broker);
	if (!cJSON_AddStringToObject(o, "key", hex)) {
		snprintf(err, err_len, "out of memory");
		cJSON_Delete(o);
		o = NULL;
	}
out:
	explicit_bzero(hex, sizeof(hex));
	return o;
}

/* trace: the last runs of one recipe with their step timelines (from episodes). */
static cJSON *
ctl_trace(hearth_hub *h, const cJSON *req, char *err, size_t err_len)
{
	long long limit = h->cfg->trace_runs;
	const char *recipe = NULL;
	cJSON *arr = NULL;
	long rc;

	if (hearth_json_get_str(req, "recipe", &recipe) || !recipe[0]) {
		snprintf(err, err_len, "trace needs a recipe id (hearthctl recipes lists them)");
		return NULL;
	}
	if (hearth_json_get_int(req, "limit", &limit) == HEARTH_E_INVALID || limit < 0) {
		snprintf(err, err_len, "limit must be a whole number >= 0");
		return NULL;
	}
	/* Commit this turn's episodes first so the answer includes them. */
	hearth_store_flush(h->store, err, err_len);
	rc = hearth_episodes_trace(h->store, recipe, (long)limit, &arr);
	if (rc < 0) {
		snprintf(err, err_len, "reading episodes: %s", hearth_strerror((int)rc));
		return NULL;
	}
	return arr;
}

static cJSON *
ctl_handle(void *ud, const char *cmd, const cJSON *req, char *err, size_t err_len)
{
	hearth_hub *h = ud;

	if (!strcmp(cmd, "status"))
		return ctl_status(h);
	if (!strcmp(cmd, "health"))
		return ctl_health(h, err, err_len);
	if (!strcmp(cmd, "plan"))
		return ctl_plan(h, req, err, err_len);
	if (!strncmp(cmd, "constraints", 11))
		return ctl_constraints(h, cmd, req, err, err_len);
	if (!strcmp(cmd, "recipes"))
		return ctl_recipes(h);
	if (!strcmp(cmd, "pair") || !strcmp(cmd, "unpair") || !strcmp(cmd, "pairs"))
		return ctl_pair(h, cmd, req, err, err_len);
	if (!strcmp(cmd, "consents") || !strcmp(cmd, "consent.grant") ||
	    !strcmp(cmd, "consent.revoke"))
		return ctl_consent(h, cmd, req, err, err_len);
	if (!strcmp(cmd, "devices")) {
		cJSON *arr = cJSON_CreateArray();

		for (int i = 0; arr && i < hearth_context_count(h->ctx); i++)
			cJSON_AddItemToArray(arr, hearth_device_json(hearth_context_at(h->ctx, i)));
		return arr;
	}
	if (!strcmp(cmd, "episodes")) {
		cJSON *arr = cJSON_CreateArray();
		long long limit = 20;
		int rc;

		if (hearth_json_get_int(req, "limit", &limit) == HEARTH_E_INVALID || limit < 0) {
			snprintf(err, err_len, "limit must be a whole number >= 0");
			cJSON_Delete(arr);
			return NULL;
		}
		/* Commit this turn's episodes first so the answer includes them. */
		hearth_store_flush(h->store, err, err_len);
		rc = arr ? hearth_store_episodes_each(h->store, (long)limit, add_episode, arr)
		         : -ENOMEM;
		if (rc) {
			snprintf(err, err_len, "reading episodes: %s", hearth_strerror(rc));
			cJSON_Delete(arr);
			return NULL;
		}
		return arr;
	}
	if (!strcmp(cmd, "trace"))
		return ctl_trace(h, req, err, err_len);
	snprintf(err, err_len,
	         "unknown command \"%.40s\" (try: status, devices, episodes, trace, health, "
	         "constraints, recipes, pair, unpair, pairs, consents, consent.grant, "
	         "consent.revoke)",
	         cmd);
	return NULL;
}

/* ==== CoAP (coapd's hooks) ==== */

static int
coap_intent(void *ud, cJSON *body, const char *reply_topic, char *why, size_t wl)
{
	hearth_reply_to reply = {0};

	if (!(reply.topic = hearth_strdup(reply_topic))) {
		cJSON_Delete(body);
		snprintf(why, wl, "out of memory");
		return -ENOMEM;
	}
	return intent_in(ud, NULL, body, &reply, why, wl);
}

static cJSON *
coap_status(void *ud)
{
	return ctl_status(ud);
}

static cJSON *
coap_health(void *ud, char *err, size_t err_len)
{
	return ctl_health(ud, err, err_len);
}

/* The CoAP endpoint and CoAP devices, when built in and enabled. */
static int
start_coap(hearth_hub *h, char *why, size_t wl)
{
	struct hearth_coapd_hooks hooks = {coap_intent, coap_status, coap_health, h};
	int rc;

	if (!h->cfg->coap_enabled)
		return 0;
	rc = hearth_coapd_new(h->cfg, h->loop, &h->out, &hooks, &h->coapd, why, wl);
	if (rc == -ENOTSUP) {
		LOG_INFO("hub", "CoAP is not built in (CONFIG_HEARTH_COAP): no CoAP endpoint");
		return 0;
	}
	if (rc)
		return rc;
	hearth_orch_allow_transport(h->orch, "coap");
	for (int i = 0; i < hearth_context_count(h->ctx); i++)
		hearth_coapd_device(h->coapd, hearth_context_at(h->ctx, i));
	return 0;
}

/* ==== Life cycle ==== */

/* The audit seal key, the hard rules of the configuration, the policy hash. */
/* Recorded once start-up went through, so every start has its stop. */
static void
audit_started(hearth_hub *h)
{
	cJSON *d = cJSON_CreateObject();

	cJSON_AddStringToObject(d, "version", HEARTH_VERSION);
	cJSON_AddStringToObject(d, "home", h->cfg->home);
	cJSON_AddStringToObject(d, "policy_hash", h->policy_hash);
	if (h->cfg->constraints_file)
		cJSON_AddStringToObject(d, "constraints_file", h->cfg->constraints_file);
	audit(h, "hub.started", h->cfg->home, d);
}

static int
setup_memory(hearth_hub *h, char *why, size_t wl)
{
	uint8_t key[HEARTH_AUDIT_KEY_LEN];
	struct hearth_store_info si;
	cJSON *d;
	int rc;

	if (h->cfg->audit_key_file) {
		if ((rc = hearth_audit_load_key(h->cfg->audit_key_file, key, why, wl)))
			return rc;
		rc = hearth_audit_set_seal_key(h->store, key);
		memset(key, 0, sizeof(key));
		if (rc)
			return rc;
	} else if (hearth_audit_seal_required()) {
		snprintf(why, wl,
		         "this hearthd seals the audit chain (CONFIG_HEARTH_AUDIT_SEAL): set "
		         "audit.key_file in the configuration");
		return HEARTH_E_CONFIG;
	}
	if (!hearth_store_info(h->store, &si) && si.migrated_from) {
		d = cJSON_CreateObject();
		cJSON_AddNumberToObject(d, "from", si.migrated_from);
		cJSON_AddNumberToObject(d, "to", si.schema_version);
		audit(h, "store.migrated", h->cfg->data_dir, d);
	}
	if (h->cfg->constraints_file) {
		rc = hearth_constraints_load_file(h->store, h->cfg->constraints_file, why, wl);
		if (rc)
			return rc;
		/* Commit now, so the hash below is the one of the rules just loaded. */
		if ((rc = hearth_store_flush(h->store, why, wl)))
			return rc;
	}
	if ((rc = hearth_constraints_policy_hash(h->store, h->policy_hash))) {
		snprintf(why, wl, "cannot read the hard rules: %s", hearth_strerror(rc));
		return rc;
	}

	return 0;
}

/* The committed hard rules, for the planner to check plans against, with their hash. */
static int
give_rules(hearth_hub *h)
{
	cJSON *rules = NULL;
	int rc = hearth_constraints_get(h->store, &rules, h->policy_hash);

	if (!rc) {
		hearth_orch_set_policy_hash(h->orch, h->policy_hash);
		rc = hearth_orch_set_rules(h->orch, rules);
	}
	cJSON_Delete(rules);
	return rc;
}

/* A plan left in the journal was in flight when hearthd stopped. */
static int
replay_plan(void *ud, const char *key, const char *json, size_t len)
{
	hearth_hub *h = ud;
	hearth_now now = now_of();
	struct hearth_plan *p = NULL;
	char why[160] = "does not decode";
	cJSON *j;

	if (!hearth_json_parse(json, len, &j, NULL, 0)) {
		p = hearth_plan_from_journal(j, why, sizeof(why));
		cJSON_Delete(j);
	}
	if (!p) {
		LOG_ERR("hub", "journal entry %s: %s; removed", key, why);
		hearth_journal_del(h->store, key);
		return 0;
	}
	if (p->state == HEARTH_PLAN_AWAITING_APPROVAL) {
		LOG_INFO("hub", "plan %s (%s) waits for an approval again", p->id, p->intent);
		hearth_approval_restore(h->appr, p, &now, &h->out);
		return 0;
	}
	LOG_WARN("hub", "plan %s (%s) was %s when hearthd stopped: taking it up again", p->id,
	         p->intent, hearth_plan_state_name(p->state));
	hearth_resource_restore(h->res, p, &now, &h->out);
	return 0;
}
/* ==== What the planner reads from memory (orchestrator.h) ==== */

static bool
plan_mem_device(void *ud, const char *device, double *latency_ms, double *reliability)
{
	struct hearth_hub *h = ud;
	struct hearth_device_stats ds;

	if (hearth_semantic_device_get(h->store, device, &ds) || ds.samples == 0)
		return false; /* no latency learned yet */
	*latency_ms = ds.ewma_ms;
	*reliability = ds.attempts ? ds.reliability : 1.0;
	return true;
}

/* semantic pref/<recipe>: {"recipe": 0..1, "devices": {"<id>": 0..1}} */
static double
plan_mem_preference(void *ud, const char *recipe, const char *device)
{
	struct hearth_hub *h = ud;
	char *text = NULL;
	cJSON *v;
	const cJSON *x;
	double pref = -1;

	if (hearth_semantic_get_json(h->store, "pref", recipe, &text, NULL))
		return -1;
	v = cJSON_Parse(text);
	hearth_free(text);
	x = device ? cJSON_GetObjectItemCaseSensitive(
	                     cJSON_GetObjectItemCaseSensitive(v, "devices"), device)
	           : cJSON_GetObjectItemCaseSensitive(v, "recipe");
	if (cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble <= 1)
		pref = x->valuedouble;
	cJSON_Delete(v);
	return pref;
}

static bool
plan_mem_preapproved(void *ud, const char *scope, char *by, size_t by_len)
{
	struct hearth_hub *h = ud;
	cJSON *rec = NULL;
	const char *who = NULL;
	bool standing;

	if (hearth_consent_get(h->store, scope, &rec))
		return false;
	standing = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "standing"));
	if (standing && !hearth_json_get_str(rec, "by", &who))
		snprintf(by, by_len, "%s", who);
	cJSON_Delete(rec);
	return standing;
}

/* ==== What the approval agent reads (approval.h) ==== */

static int
appr_key(void *ud, const char *approver, uint8_t key[32])
{
	struct hearth_hub *h = ud;

	return hearth_secrets_approver_key(h->store, approver, key);
}

static int
appr_random(void *ud, void *buf, size_t n)
{
	(void)ud;
	return hearth_random(buf, n);
}

/* A generic semantic record's object, or NULL. */
static cJSON *
sem_obj(hearth_hub *h, const char *kind, const char *name)
{
	char *text = NULL;
	cJSON *v = NULL;

	if (!hearth_semantic_get_json(h->store, kind, name, &text, NULL)) {
		v = cJSON_Parse(text);
		hearth_free(text);
	}
	return v;
}

static int
sem_int(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? (int)v->valuedouble : 0;
}

static void
appr_counts(void *ud, const char *scope, int *approved, int *denied)
{
	cJSON *v = sem_obj(ud, "approvals", scope);

	*approved = sem_int(v, "approved");
	*denied = sem_int(v, "denied");
	cJSON_Delete(v);
}

static void
appr_friction(void *ud, const char *week, int *requests, int *taps, int *preapproved)
{
	cJSON *v = sem_obj(ud, "friction", week);

	*requests = sem_int(v, "requests");
	*taps = sem_int(v, "taps");
	*preapproved = sem_int(v, "preapproved");
	cJSON_Delete(v);
}

static const char *
plan_mem_holder(void *ud, const char *device)
{
	struct hearth_hub *h = ud;

	return hearth_resource_holder(h->res, device);
}

static int
restore_device(void *ud, const char *key, const char *json, size_t len)
{
	hearth_hub *h = ud;
	cJSON *rec;

	if (hearth_json_parse(json, len, &rec, NULL, 0)) {
		LOG_WARN("hub", "stored device %s does not decode; skipped", key);
		return 0;
	}
	if (hearth_context_restore(h->ctx, rec))
		LOG_WARN("hub", "stored device %s is not valid; skipped", key);
	cJSON_Delete(rec);
	return 0;
}

static void
report_recipe(void *ud, const char *line)
{
	LOG_ERR("recipes", "%s (recipe not loaded)", line);
}

static int
lock_data_dir(hearth_hub *h, char *why, size_t wl)
{
	char path[4096];

	if (mkdir(h->cfg->data_dir, 0700) && errno != EEXIST) {
		snprintf(why, wl, "cannot create data dir %s: %s", h->cfg->data_dir,
		         strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/hearthd.lock", h->cfg->data_dir);
	h->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (h->lock_fd < 0) {
		snprintf(why, wl, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(h->lock_fd, LOCK_EX | LOCK_NB)) {
		snprintf(why, wl, "another hearthd is running with data dir %s", h->cfg->data_dir);
		return HEARTH_E_BUSY;
	}
	return 0;
}

int
hearth_hub_new(const struct hearth_config *cfg, hearth_hub **out, char *why, size_t wl)
{
	struct hearth_store_opts so = {0};
	struct hearth_resource_opts ro = {0};
	struct hearth_mqtt_opts mo = {0};
	struct hearth_mqtt_cb cb = {0};
	char path[4096], will[160];
	hearth_hub *h;
	sigset_t mask;
	int rc;

	*out = NULL;
	h = hearth_calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->cfg = cfg;
	h->lock_fd = h->sig_fd = h->mqtt_fd = -1;
	h->res_due = h->appr_due = INT64_MAX;
	h->reconnect_ms = RECONNECT_MIN_MS;
	h->started_mono = hearth_mono_ms();
	snprintf(h->prefix, sizeof(h->prefix), "hearth/%s", cfg->home);
	h->prefix_len = strlen(h->prefix);
	snprintf(h->status_topic, sizeof(h->status_topic), "%s/status", h->prefix);

	if ((rc = lock_data_dir(h, why, wl)))
		goto fail;
	so.dir = cfg->data_dir;
	so.home_id = cfg->home;
	so.map_size = (size_t)cfg->store_map_mb << 20;
	so.map_max = (size_t)cfg->store_map_max_mb << 20;
	so.episodes_max = cfg->episodes_max;
	so.no_sync = !cfg->store_sync;
	if ((rc = hearth_store_open(&so, &h->store, why, wl)))
		goto fail;
	if ((rc = setup_memory(h, why, wl)))
		goto fail;
	rc = hearth_recipe_book_load(cfg->recipes_dir, &h->book, report_recipe, NULL, why, wl);
	if (rc)
		goto fail;
	if (hearth_recipe_book_count(h->book) == 0)
		LOG_WARN("hub", "no recipes loaded from %s: every intent will get no_match",
		         cfg->recipes_dir);
	if ((rc = hearth_ratelimit_new(cfg->intent_rate, cfg->intent_burst,
	                               (size_t)cfg->rate_sources, &h->intent_rl)) ||
	    (rc = hearth_ratelimit_new(cfg->approval_rate, cfg->approval_burst,
	                               (size_t)cfg->rate_sources, &h->approval_rl)))
		goto fail_msg;
	if ((rc = hearth_loop_new(&h->loop)) || (rc = hearth_bus_new(&h->bus)) ||
	    (rc = hearth_bus_new(&h->later)))
		goto fail_msg;
	h->out = hearth_bus_outbox(h->bus);
	h->later_out = hearth_bus_outbox(h->later);
	ro.retries = cfg->step_retries;
	ro.backoff_ms = cfg->retry_backoff_ms;
	ro.max_plans = cfg->max_plans;
	if ((rc = hearth_context_new(CONFIG_HEARTH_MAX_DEVICES, &h->ctx)) ||
	    (rc = hearth_orch_new(h->book, h->ctx, &h->orch)) ||
	    (hearth_orch_set_policy_hash(h->orch, h->policy_hash), 0) || (rc = give_rules(h)) ||
	    (rc = hearth_resource_new(&ro, h->ctx, &h->res)))
		goto fail_msg;
	{
		struct hearth_orch_scoring sc = {.alternatives = cfg->plan_alternatives};
		struct hearth_orch_memory mem = {.device = plan_mem_device,
		                                 .preference = plan_mem_preference,
		                                 .holder = plan_mem_holder,
		                                 .preapproved = plan_mem_preapproved,
		                                 .ud = h};
		struct hearth_approval_opts ao = {
		        .expiry_ms = cfg->approval_expiry_s * 1000,
		        .ts_window_ms = cfg->approval_ts_window_s * 1000,
		        .preapprove_after = cfg->preapprove_after,
		};
		struct hearth_approval_hooks ah = {.key = appr_key,
		                                   .random = appr_random,
		                                   .counts = appr_counts,
		                                   .friction = appr_friction,
		                                   .ud = h};

		if ((rc = hearth_approval_new(&ao, &ah, &h->appr)))
			goto fail_msg;

		memcpy(sc.weights, cfg->plan_weights, sizeof(sc.weights));
		hearth_orch_set_scoring(h->orch, &sc);
		hearth_orch_set_memory(h->orch, &mem);
	}
	if ((rc = setup_context(h, why, wl)))
		goto fail;
	if ((rc = hearth_store_devices_each(h->store, restore_device, h)))
		goto fail_msg;
	LOG_INFO("hub", "%d devices restored from the store", hearth_context_count(h->ctx));
	if ((rc = hearth_journal_each(h->store, replay_plan, h)))
		goto fail_msg;

	/* Signals arrive on a descriptor in the loop. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	h->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (h->sig_fd < 0 || (rc = hearth_loop_watch(h->loop, h->sig_fd, EPOLLIN, on_signal, h)))
		goto fail_msg;

	status_json(will, sizeof(will), "offline");
	mo.host = cfg->broker_host;
	mo.port = cfg->broker_port;
	mo.client_id = cfg->mqtt_client_id;
	mo.keepalive = cfg->mqtt_keepalive;
	mo.clean_start = false;
	mo.session_expiry = (uint32_t)cfg->mqtt_session_expiry;
	mo.username = cfg->mqtt_username;
	mo.password = cfg->mqtt_password;
	mo.tls_ca_file = cfg->mqtt_tls_ca_file;
	mo.tls_cert_file = cfg->mqtt_tls_cert_file;
	mo.tls_key_file = cfg->mqtt_tls_key_file;
	mo.will_topic = h->status_topic;
	mo.will_payload = will;
	mo.will_retain = true;
	cb.on_connect = on_connect;
	cb.on_disconnect = on_disconnect;
	cb.on_message = on_message;
	cb.ud = h;
	if ((rc = hearth_mqtt_new(&mo, &cb, &h->mqtt))) {
		if (mo.tls_ca_file && rc != -ENOMEM) {
			snprintf(why, wl,
			         "cannot set up TLS to the broker with %s%s%s: expected PEM files "
			         "(the key not encrypted)",
			         mo.tls_ca_file, mo.tls_cert_file ? ", " : "",
			         mo.tls_cert_file ? mo.tls_cert_file : "");
			goto fail;
		}
		goto fail_msg;
	}

	snprintf(path, sizeof(path), "%s/hearthd.sock", cfg->data_dir);
	if ((rc = hearth_ctl_open(h->loop, path, ctl_handle, h, &h->ctl, why, wl)))
		goto fail;
	if ((rc = start_coap(h, why, wl)))
		goto fail;
	if ((rc = start_eco(h, why, wl)))
		goto fail;
	hearth_loop_on_turn(h->loop, on_turn, h);
	audit_started(h);
	*out = h;
	return 0;
fail_msg:
	snprintf(why, wl, "cannot start: %s", hearth_strerror(rc ? rc : -errno));
fail:
	hearth_hub_free(h);
	return rc ? rc : -EIO;
}

/* Publish "offline", say goodbye, and give the socket a moment to drain. */
static void
go_offline(hearth_hub *h)
{
	int64_t end = hearth_mono_ms() + 2000;

	if (h->mqtt_fd < 0 || !h->connected)
		return;
	publish_status(h, "offline");
	hearth_mqtt_disconnect(h->mqtt);
	while (hearth_mqtt_socket(h->mqtt) >= 0 && hearth_mqtt_want_write(h->mqtt) &&
	       hearth_mono_ms() < end) {
		struct pollfd pfd = {.fd = hearth_mqtt_socket(h->mqtt), .events = POLLOUT};

		if (poll(&pfd, 1, 50) < 0 || hearth_mqtt_write(h->mqtt))
			break;
	}
}

int
hearth_hub_run(hearth_hub *h)
{
	char why[256];
	int rc = 0;

	LOG_INFO("hub", "hearthd %s: home %s, broker %s:%d, data %s, %d recipes", HEARTH_VERSION,
	         h->cfg->home, h->cfg->broker_host, h->cfg->broker_port, h->cfg->data_dir,
	         hearth_recipe_book_count(h->book));
	try_connect(h);
	h->misc_timer = hearth_loop_timer(h->loop, hearth_mono_ms() + 1000, on_misc, h);
	h->maint_timer = hearth_loop_timer(h->loop, hearth_mono_ms(), on_maintenance, h);
	hearth_loop_timer(h->loop, hearth_mono_ms() + 60000, on_minute, h);
	while (!h->stopping) {
		rc = hearth_loop_run_once(h->loop, -1);
		if (rc) {
			LOG_ERR("hub", "event loop: %s", hearth_strerror(rc));
			break;
		}
	}
	hearth_bus_drain(h->bus, route, h);
	audit(h, "hub.stopped", h->cfg->home, NULL);
	if (hearth_store_flush(h->store, why, sizeof(why)))
		LOG_ERR("hub", "store: %s", why);
	hearth_bus_drain(h->later, route_later, h);
	go_offline(h);
	if (hearth_store_flush(h->store, why, sizeof(why)))
		LOG_ERR("hub", "store: %s", why);
	LOG_INFO("hub", "stopped");
	return rc;
}

void
hearth_hub_free(hearth_hub *h)
{
	if (!h)
		return;
	hearth_ctl_close(h->ctl);
	hearth_coapd_free(h->coapd);
	hearth_eco_free(h->eco);
	hearth_mqtt_free(h->mqtt);
	hearth_resource_free(h->res);
	hearth_approval_free(h->appr);
	hearth_orch_free(h->orch);
	hearth_context_free(h->ctx);
	hearth_bus_free(h->bus);
	hearth_bus_free(h->later);
	hearth_loop_free(h->loop);
	hearth_recipe_book_free(h->book);
	hearth_ratelimit_free(h->intent_rl);
	hearth_ratelimit_free(h->approval_rl);
	hearth_store_close(h->store);
	if (h->sig_fd >= 0)
		close(h->sig_fd);
	if (h->lock_fd >= 0)
		close(h->lock_fd);
	hearth_free(h);
}
