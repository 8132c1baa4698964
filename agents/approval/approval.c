/*
 * approval.c - plans waiting for the owner's tap (see approval.h).
 *
 * The agent owns the plans that wait, in a small array with each plan's
 * monotonic deadline, and nothing else: keys, counts and friction records
 * are read through the hooks and written as messages, so the agent does no
 * I/O and its only sources of time and chance are hearth_now and
 * hooks.random. A response is checked in the order approval.h gives; the
 * MAC and the nonce are compared in constant time, and a failed check
 * changes no plan. A plan leaves the array when it is approved (posted on to
 * the resource agent), denied or expired.
 */
#include "agents/approval/approval.h"

#include "agents/plan.h"
#include "platform/alloc.h"
#include "platform/crypto.h"
#include "platform/id.h"
#include "platform/json.h"
#include "platform/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NONCE_BYTES 16
#define SUMMARY_MAX 200 /* bytes, with the NUL */

struct waiting {
	struct hearth_plan *p;
	int64_t deadline; /* mono ms: no answer by then -> expired */
};

struct hearth_approval {
	struct hearth_approval_opts opts;
	struct hearth_approval_hooks hooks;
	struct waiting *w;
	int n, cap;
	/* The friction record last posted: the committed one lags behind it
	 * until the loop turn commits. */
	char fweek[16];
	int freq, ftaps, fpre;
};

int
hearth_approval_new(const struct hearth_approval_opts *opts,
                    const struct hearth_approval_hooks *hooks, hearth_approval **out)
{
	hearth_approval *a;

	*out = NULL;
	if (!opts || !hooks || !hooks->key || !hooks->random)
		return -EINVAL;
	a = hearth_calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->opts = *opts;
	if (a->opts.expiry_ms <= 0)
		a->opts.expiry_ms = 120000;
	if (a->opts.ts_window_ms <= 0)
		a->opts.ts_window_ms = 300000;
	if (a->opts.preapprove_after < 0)
		a->opts.preapprove_after = 0;
	a->hooks = *hooks;
	*out = a;
	return 0;
}

void
hearth_approval_free(hearth_approval *a)
{
	if (!a)
		return;
	for (int i = 0; i < a->n; i++)
		hearth_plan_free(a->w[i].p);
	hearth_free(a->w);
	hearth_free(a);
}

int
hearth_approval_pending(const hearth_approval *a)
{
	return a->n;
}

static int
find(const hearth_approval *a, const char *plan_id)
{
	for (int i = 0; i < a->n; i++)
		if (!strcmp(a->w[i].p->id, plan_id))
			return i;
	return -1;
}

/* Take plan i out of the array (the caller owns it now). */
static struct hearth_plan *
take(hearth_approval *a, int i)
{
	struct hearth_plan *p = a->w[i].p;

	a->w[i] = a->w[--a->n];
	return p;
}

static int
add(hearth_approval *a, struct hearth_plan *p, int64_t deadline)
{
	if (a->n == a->cap) {
		int ncap = a->cap ? a->cap * 2 : 8;
		struct waiting *nw = hearth_realloc(a->w, (size_t)ncap * sizeof(*nw));

		if (!nw)
			return -ENOMEM;
		a->w = nw;
		a->cap = ncap;
	}
	a->w[a->n].p = p;
	a->w[a->n].deadline = deadline;
	a->n++;
	return 0;
}

/* ==== Output ==== */

static void
post_body(const hearth_outbox *out, enum hearth_msg_type type, const char *id, cJSON *body)
{
	hearth_msg m = {.type = type};

	if (!body)
		return;
	if (id)
		snprintf(m.id, sizeof(m.id), "%s", id);
	m.body = body;
	hearth_post(out, &m);
}

/* An audit record about plan p: {"event","plan_id","recipe","risk"[,"approver"]}. */
static void
post_audit(const struct hearth_plan *p, const char *event, const hearth_outbox *out)
{
	cJSON *b = cJSON_CreateObject();

	if (!b)
		return;
	cJSON_AddStringToObject(b, "event", event);
	cJSON_AddStringToObject(b, "plan_id", p->id);
	cJSON_AddStringToObject(b, "recipe", p->recipe);
	if (p->approver[0])
		cJSON_AddStringToObject(b, "approver", p->approver);
	cJSON_AddStringToObject(b, "risk", hearth_risk_name(p->risk));
	post_body(out, HEARTH_MSG_AUDIT, p->id, b);
}

/* A SEMANTIC put {"kind","name","value"}; takes value. */
static void
post_semantic(const char *kind, const char *name, cJSON *value, const hearth_outbox *out)
{
	cJSON *b = cJSON_CreateObject();

	if (!b || !value) {
		cJSON_Delete(b);
		cJSON_Delete(value);
		return;
	}
	cJSON_AddStringToObject(b, "kind", kind);
	cJSON_AddStringToObject(b, "name", name);
	if (!cJSON_AddItemToObject(b, "value", value)) { /* cJSON keeps it only on success */
		cJSON_Delete(value);
		cJSON_Delete(b);
		return;
	}
	post_body(out, HEARTH_MSG_SEMANTIC, NULL, b);
}

/* End a waiting plan (already out of the array); the caller frees it. */
static void
end_plan(struct hearth_plan *p, enum hearth_plan_state state, const char *reason, const char *event,
         const hearth_now *now, const hearth_outbox *out)
{
	p->state = state;
	p->nonce[0] = '\0';
	hearth_free(p->reason);
	p->reason = hearth_strdup(reason);
	LOG_INFO("approval", "plan %s (%s) %s: %s", p->id, p->recipe, hearth_plan_state_name(state),
	         reason);
	hearth_plan_post_event(p, now, out);
	hearth_plan_post_episode(p, now, out);
	hearth_plan_post_journal(p, true, out);
	if (event)
		post_audit(p, event, out);
	hearth_plan_post_reply(p, out);
}

/* ==== Friction ==== */

/* Day of the week of 1 January of year y, 0 = Sunday (Gregorian). */
static int
jan1_weekday(long y)
{
	long x = y - 1;

	return (int)((1 + x * 365 + x / 4 - x / 100 + x / 400) % 7);
}

static int
iso_weeks_in_year(long y)
{
	int d = jan1_weekday(y);
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return d == 4 || (leap && d == 3) ? 53 : 52;
}

/* "<year>-W<week>" of the ISO week holding wall_ms (UTC). */
static void
iso_week(int64_t wall_ms, char *buf, size_t len)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;
	long year;
	int wday, week;

	if (!gmtime_r(&t, &tm)) {
		snprintf(buf, len, "0000-W00");
		return;
	}
	year = tm.tm_year + 1900L;
	wday = (tm.tm_wday + 6) % 7 + 1; /* Monday 1 .. Sunday 7 */
	week = (tm.tm_yday + 1 - wday + 10) / 7;
	if (week < 1) {
		year--;
		week = iso_weeks_in_year(year);
	} else if (week > iso_weeks_in_year(year)) {
		year++;
		week = 1;
	}
	snprintf(buf, len, "%04ld-W%02d", year, week);
}

/* Add to this week's friction record and post it. */
static void
friction_add(hearth_approval *a, int requests, int taps, int preapproved, const hearth_now *now,
             const hearth_outbox *out)
{
	char week[16];
	cJSON *v;

	iso_week(now->wall_ms, week, sizeof(week));
	if (strcmp(week, a->fweek)) {
		a->freq = a->ftaps = a->fpre = 0;
		if (a->hooks.friction)
			a->hooks.friction(a->hooks.ud, week, &a->freq, &a->ftaps, &a->fpre);
		memcpy(a->fweek, week, sizeof(week));
	}
	a->freq += requests;
	a->ftaps += taps;
	a->fpre += preapproved;
	v = cJSON_CreateObject();
	if (v) {
		cJSON_AddNumberToObject(v, "requests", a->freq);
		cJSON_AddNumberToObject(v, "taps", a->ftaps);
		cJSON_AddNumberToObject(v, "preapproved", a->fpre);
	}
	post_semantic("friction", week, v, out);
}

void
hearth_approval_count_preapproved(hearth_approval *a, const hearth_now *now,
                                  const hearth_outbox *out)
{
	friction_add(a, 0, 0, 1, now, out);
}

/* ==== Requests ==== */

/* A short sentence for the phone: the rationale's first sentence ("Unlock
 * the front door: set Front door (unlock) to not locked"), or the recipe and
 * the devices its acting steps set. Cut on a UTF-8 boundary. */
static void
summary(const struct hearth_plan *p, char *buf, size_t len)
{
	size_t n = 0;

	if (p->rationale && p->rationale[0]) {
		const char *end = strstr(p->rationale, ". ");

		n = end ? (size_t)(end - p->rationale) : strlen(p->rationale);
		if (n && p->rationale[n - 1] == '.' && !end)
			n--;
		snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), p->rationale);
	} else {
		int acting = 0;

		n = (size_t)snprintf(buf, len, "%s", p->recipe);
		for (int i = 0; i < p->nsteps && n < len; i++) {
			const struct hearth_step *st = &p->steps[i];

			if (st->state == HEARTH_STEP_SKIPPED)
				continue;
			n += (size_t)snprintf(buf + n, len - n, "%s%s (%s)", acting++ ? ", " : ": ",
			                      st->device, st->id);
		}
	}
	n = strlen(buf);
	if (n == len - 1) { /* maybe cut: do not leave half a UTF-8 character */
		while (n && ((unsigned char)buf[n - 1] & 0xC0) == 0x80)
			buf[--n] = '\0';
		if (n && ((unsigned char)buf[n - 1] & 0xC0) == 0xC0)
			buf[--n] = '\0';
	}
}

static void
on_plan(hearth_approval *a, hearth_msg *m, const hearth_now *now, const hearth_outbox *out)
{
	struct hearth_plan *p = m->plan;
	uint8_t raw[NONCE_BYTES];
	char text[SUMMARY_MAX];
	cJSON *b;

	/* Only a plan that waits; one this agent approved goes on to the
	 * resource agent. */
	if (!p || p->state != HEARTH_PLAN_AWAITING_APPROVAL || p->approver[0])
		return;
	m->plan = NULL;
	if (a->hooks.random(a->hooks.ud, raw, sizeof(raw))) {
		hearth_post_error(out, "internal", "intent",
		                  "no random source for the approval nonce: nothing was done");
		end_plan(p, HEARTH_PLAN_FAILED, "no approval could be asked: no random source",
		         NULL, now, out);
		hearth_plan_free(p);
		return;
	}
	if (add(a, p, now->mono_ms + a->opts.expiry_ms)) {
		hearth_post_error(out, "internal", "intent", "out of memory: nothing was done");
		end_plan(p, HEARTH_PLAN_FAILED, "no approval could be asked: out of memory", NULL,
		         now, out);
		hearth_plan_free(p);
		return;
	}
	hearth_hex_encode(raw, sizeof(raw), p->nonce);
	p->approval_expires = now->wall_ms + a->opts.expiry_ms;
	p->needs_approval = true;
	p->replied = true; /* the reply below goes out in this turn, after the commit */
	summary(p, text, sizeof(text));
	b = cJSON_CreateObject();
	if (b) {
		cJSON_AddStringToObject(b, "plan_id", p->id);
		cJSON_AddStringToObject(b, "summary", text);
		cJSON_AddStringToObject(b, "rationale", p->rationale ? p->rationale : "");
		cJSON_AddStringToObject(b, "risk", hearth_risk_name(p->risk));
		cJSON_AddStringToObject(b, "nonce", p->nonce);
		cJSON_AddNumberToObject(b, "expires_at", (double)p->approval_expires);
	}
	post_body(out, HEARTH_MSG_APPROVAL_REQUEST, p->id, b);
	hearth_plan_post_journal(p, false, out);
	hearth_plan_post_event(p, now, out);
	p->replied = false; /* journaled as replied: the reply is posted now */
	hearth_plan_post_reply(p, out);
	post_audit(p, "approval.requested", out);
	friction_add(a, 1, 0, 0, now, out);
	LOG_INFO("approval", "plan %s (%s, %s risk) awaits approval until %lld", p->id, p->recipe,
	         hearth_risk_name(p->risk), (long long)p->approval_expires);
}

/* ==== Responses ==== */

static bool
lower_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == n && s[n] == '\0';
}

struct response {
	const char *decision, *approver, *nonce, *mac;
	long long ts;
	bool approve;
};

/* The response's shape; 0, or -1 with what is wrong in why. */
static int
parse_response(const hearth_msg *m, struct response *r, char *why, size_t wl)
{
	const cJSON *b = m->body;

	if (!hearth_id_valid_str(m->id)) {
		snprintf(why, wl, "the plan id of the topic is not an id");
		return -1;
	}
	if (!cJSON_IsObject(b)) {
		snprintf(why, wl, "the response is not a JSON object");
		return -1;
	}
	if (hearth_json_get_str(b, "decision", &r->decision) ||
	    (strcmp(r->decision, "approve") && strcmp(r->decision, "deny"))) {
		snprintf(why, wl, "\"decision\" must be \"approve\" or \"deny\"");
		return -1;
	}
	r->approve = !strcmp(r->decision, "approve");
	if (hearth_json_get_str(b, "approver", &r->approver) || !hearth_id_valid_str(r->approver)) {
		snprintf(why, wl,
		         "\"approver\" must be the paired name: 1 to 64 of A-Z a-z 0-9 _ . -");
		return -1;
	}
	if (hearth_json_get_str(b, "nonce", &r->nonce) || !lower_hex(r->nonce, 32)) {
		snprintf(why, wl, "\"nonce\" must be the request's 32 lowercase hex digits");
		return -1;
	}
	if (hearth_json_get_int(b, "ts", &r->ts)) {
		snprintf(why, wl, "\"ts\" must be a whole number of milliseconds (wall clock)");
		return -1;
	}
	if (hearth_json_get_str(b, "mac", &r->mac) || !lower_hex(r->mac, 64)) {
		snprintf(why, wl, "\"mac\" must be 64 lowercase hex digits (HMAC-SHA256)");
		return -1;
	}
	return 0;
}

static void
reject(const hearth_msg *m, const char *approver, const char *code, const char *detail,
       const hearth_outbox *out)
{
	char topic[HEARTH_ID_MAX + 32];
	cJSON *b;

	snprintf(topic, sizeof(topic), "approval/%s/response", m->id);
	hearth_post_error(out, code, topic, detail);
	b = cJSON_CreateObject();
	if (b) {
		cJSON_AddStringToObject(b, "event", "approval.rejected");
		cJSON_AddStringToObject(b, "plan_id", m->id);
		if (approver)
			cJSON_AddStringToObject(b, "approver", approver);
		cJSON_AddStringToObject(b, "reason", code);
	}
	post_body(out, HEARTH_MSG_AUDIT, m->id, b);
	LOG_WARN("approval", "response for plan %s rejected: %s", m->id, code);
}

/* Does mac (64 lowercase hex) sign "plan_id|decision|nonce|ts" with key? */
static bool
mac_ok(const char *plan_id, const struct response *r, const uint8_t key[32])
{
	char msg[HEARTH_ID_MAX + 80];
	uint8_t want[HEARTH_SHA256_LEN], got[HEARTH_SHA256_LEN];
	int n = snprintf(msg, sizeof(msg), "%s|%s|%s|%lld", plan_id, r->decision, r->nonce, r->ts);

	if (n < 0 || (size_t)n >= sizeof(msg) || hearth_hex_decode(r->mac, got, sizeof(got)) ||
	    hearth_hmac_sha256(key, 32, msg, (size_t)n, want))
		return false;
	return hearth_ct_equal(want, got, sizeof(want));
}

/* Count a decision for p's scope; learn a standing pre-approval when due. */
static void
count_decision(hearth_approval *a, const struct hearth_plan *p, bool approve,
               const hearth_outbox *out)
{
	int approved = 0, denied = 0;
	cJSON *v, *b;

	if (!p->approval_scope[0])
		return;
	if (a->hooks.counts)
		a->hooks.counts(a->hooks.ud, p->approval_scope, &approved, &denied);
	if (approve)
		approved++;
	else
		denied++;
	v = cJSON_CreateObject();
	if (v) {
		cJSON_AddNumberToObject(v, "approved", approved);
		cJSON_AddNumberToObject(v, "denied", denied);
	}
	post_semantic("approvals", p->approval_scope, v, out);
	if (!approve || denied || p->risk == HEARTH_RISK_HIGH || a->opts.preapprove_after <= 0 ||
	    approved < a->opts.preapprove_after)
		return;
	b = cJSON_CreateObject();
	if (b) {
		cJSON_AddStringToObject(b, "scope", p->approval_scope);
		cJSON_AddBoolToObject(b, "standing", true);
		cJSON_AddStringToObject(b, "by", p->approver);
	}
	post_body(out, HEARTH_MSG_CONSENT, NULL, b);
	b = cJSON_CreateObject();
	if (b) {
		cJSON_AddStringToObject(b, "event", "enhancement.preapproval");
		cJSON_AddStringToObject(b, "scope", p->approval_scope);
		cJSON_AddNumberToObject(b, "approvals", approved);
		cJSON_AddStringToObject(b, "by", p->approver);
	}
	post_body(out, HEARTH_MSG_AUDIT, p->id, b);
	LOG_INFO("approval", "scope %s pre-approved after %d approvals", p->approval_scope,
	         approved);
}

static void
on_response(hearth_approval *a, hearth_msg *m, const hearth_now *now, const hearth_outbox *out)
{
	struct response r = {0};
	struct hearth_plan *p;
	uint8_t key[32];
	char why[160];
	int i;
	bool good;

	if (parse_response(m, &r, why, sizeof(why))) {
		const char *who = NULL;

		if (cJSON_IsObject(m->body) && !hearth_json_get_str(m->body, "approver", &who) &&
		    !hearth_id_valid_str(who))
			who = NULL;
		reject(m, who, "bad_request", why, out);
		return;
	}
	i = find(a, m->id);
	if (i < 0) {
		reject(m, r.approver, "unknown_plan",
		       "no plan with this id awaits approval (answered, ended or never asked)",
		       out);
		return;
	}
	p = a->w[i].p;
	if (a->hooks.key(a->hooks.ud, r.approver, key)) {
		reject(m, r.approver, "unknown_approver",
		       "this approver is not paired: pair it with `hearthctl pair NAME`", out);
		return;
	}
	good = mac_ok(p->id, &r, key);
	explicit_bzero(key, sizeof(key));
	if (!good) {
		reject(m, r.approver, "bad_mac",
		       "the mac is not HMAC-SHA256(key, plan_id|decision|nonce|ts) with the "
		       "approver's key",
		       out);
		return;
	}
	if (!hearth_ct_equal(r.nonce, p->nonce, 32)) {
		reject(m, r.approver, "bad_nonce", "the nonce is not this plan's request's", out);
		return;
	}
	if (now->wall_ms > p->approval_expires) {
		reject(m, r.approver, "expired", "the request expired before this answer", out);
		return;
	}
	if (r.ts < now->wall_ms - a->opts.ts_window_ms ||
	    r.ts > now->wall_ms + a->opts.ts_window_ms) {
		snprintf(why, sizeof(why),
		         "ts is more than %d s away from the hub's clock: check the phone's clock",
		         a->opts.ts_window_ms / 1000);
		reject(m, r.approver, "stale", why, out);
		return;
	}
	take(a, i);
	snprintf(p->approver, sizeof(p->approver), "%s", r.approver);
	p->nonce[0] = '\0'; /* used: a replay finds no plan */
	if (r.approve) {
		hearth_msg pm = {.type = HEARTH_MSG_PLAN};

		LOG_INFO("approval", "plan %s approved by %s", p->id, p->approver);
		/* The used nonce is gone from the journal in this turn's commit. */
		hearth_plan_post_journal(p, false, out);
		post_audit(p, "approval.granted", out);
		count_decision(a, p, true, out);
		friction_add(a, 0, 1, 0, now, out);
		memcpy(pm.id, p->id, sizeof(pm.id));
		pm.plan = p;
		hearth_post(out, &pm);
	} else {
		char reason[HEARTH_ID_MAX + 16];

		snprintf(reason, sizeof(reason), "denied by %s", r.approver);
		end_plan(p, HEARTH_PLAN_DENIED, reason, "approval.denied", now, out);
		count_decision(a, p, false, out);
		friction_add(a, 0, 1, 0, now, out);
		hearth_plan_free(p);
	}
}

void
hearth_approval_handle(hearth_approval *a, hearth_msg *m, const hearth_now *now,
                       const hearth_outbox *out)
{
	switch (m->type) {
	case HEARTH_MSG_PLAN:
		on_plan(a, m, now, out);
		break;
	case HEARTH_MSG_APPROVAL_RESPONSE:
		on_response(a, m, now, out);
		break;
	default:
		break;
	}
}

/* ==== Time ==== */

int64_t
hearth_approval_next_deadline(const hearth_approval *a)
{
	int64_t t = INT64_MAX;

	for (int i = 0; i < a->n; i++)
		if (a->w[i].deadline < t)
			t = a->w[i].deadline;
	return t;
}

void
hearth_approval_tick(hearth_approval *a, const hearth_now *now, const hearth_outbox *out)
{
	char reason[64];

	snprintf(reason, sizeof(reason), "no answer within %g s", a->opts.expiry_ms / 1000.0);
	for (int i = 0; i < a->n;) {
		if (a->w[i].deadline > now->mono_ms) {
			i++;
			continue;
		}
		struct hearth_plan *p = take(a, i);

		end_plan(p, HEARTH_PLAN_EXPIRED, reason, "approval.expired", now, out);
		hearth_plan_free(p);
	}
}

void
hearth_approval_restore(hearth_approval *a, struct hearth_plan *p, const hearth_now *now,
                        const hearth_outbox *out)
{
	int64_t left;

	if (p->state != HEARTH_PLAN_AWAITING_APPROVAL) {
		LOG_WARN("approval", "plan %s is %s, not awaiting approval: not restored", p->id,
		         hearth_plan_state_name(p->state));
		hearth_plan_free(p);
		return;
	}
	if (p->approver[0]) {
		/* Approved, but the resource agent never took it up (the hub
		 * stopped in between, or was busy): the approval is spent. */
		p->t_received = now->mono_ms;
		p->replied = true;
		end_plan(p, HEARTH_PLAN_FAILED,
		         "interrupted: the approved plan did not start before hearthd stopped",
		         NULL, now, out);
		hearth_plan_free(p);
		return;
	}
	/* Without its nonce no answer can match: it expires at the next tick. */
	left = lower_hex(p->nonce, 32) ? p->approval_expires - now->wall_ms : 0;
	if (left < 0)
		left = 0;
	if (left > a->opts.expiry_ms)
		left = a->opts.expiry_ms; /* a wall clock that jumped back waits no longer */
	p->t_received = now->mono_ms;
	p->replied = true; /* the reply address did not survive the restart */
	if (add(a, p, now->mono_ms + left)) {
		end_plan(p, HEARTH_PLAN_EXPIRED, "no approval could be awaited: out of memory",
		         "approval.expired", now, out);
		hearth_plan_free(p);
		return;
	}
	LOG_INFO("approval", "plan %s awaits approval again until %lld", p->id,
	         (long long)p->approval_expires);
}
