/*
 * test_policy.c - hard constraints on plans (agents/orchestrator/policy.h).
 *
 * Unit tests apply each rule kind to hand-made plans over a small home fed
 * to a context agent: forbid by capability / device / args, caps at max and
 * min, "when" on flags, device properties, time windows and all / any / not
 * (unknown values fail closed), approval_lifts. Then the orchestrator
 * refuses a plan the rules empty and says which rule applied.
 *
 * The property test: 1,000 random homes (every actuator capability in
 * several rooms, locks included, random states, devices offline, someone
 * home or not, any time of day) times every recipe in the built-in library
 * (loaded at test time from HEARTH_RECIPES_DIR), planned by the orchestrator
 * under a rule set; no plan may hold a step a rule forbids or a value over
 * a cap, judged against what the test itself made the home be.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/context/context.h"
#include "agents/msg.h"
#include "agents/orchestrator/orchestrator.h"
#include "agents/orchestrator/policy.h"
#include "agents/plan.h"
#include "hearth_config.h"
#include "platform/alloc.h"
#include "platform/log.h"
#include "recipes/capability.h"
#include "recipes/recipe.h"
#include "tests/unit/support/sink.h"

static void
assert_contains(const char *hay, const char *needle)
{
	assert_non_null(hay);
	if (!strstr(hay, needle))
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

/* ==== A home ==== */

struct home {
	hearth_context *ctx;
	struct sink trash;
	hearth_outbox out;
	hearth_now now;
};

static void
home_msg(struct home *h, enum hearth_msg_type type, const char *id, const char *json, bool flag)
{
	hearth_msg m = {.type = type, .flag = flag};

	snprintf(m.id, sizeof(m.id), "%s", id);
	if (json) {
		m.body = cJSON_Parse(json);
		assert_non_null(m.body);
	}
	hearth_context_handle(h->ctx, &m, &h->now, &h->out);
	hearth_msg_clear(&m);
	sink_reset(&h->trash);
}

static void
home_device(struct home *h, const char *id, const char *meta, const char *state)
{
	home_msg(h, HEARTH_MSG_DEVICE_META, id, meta, false);
	if (state)
		home_msg(h, HEARTH_MSG_DEVICE_STATE, id, state, false);
}

/* someone_home is the presence sensor in the hall (unknown: false, so away). */
#define FLAGS_JSON                                                                                 \
	"[{\"name\":\"someone_home\",\"when\":{\"device\":\"presence\",\"property\":"              \
	"\"occupancy\",\"is\":true}}]"
#define PRESENCE_META                                                                              \
	"{\"room\":\"hall\",\"kind\":\"sensor\",\"capabilities\":[\"sensor.occupancy\"]}"

static void
home_init(struct home *h)
{
	cJSON *flags = cJSON_Parse(FLAGS_JSON);
	char why[256] = "";

	memset(h, 0, sizeof(*h));
	assert_int_equal(hearth_context_new(256, &h->ctx), 0);
	h->out = (hearth_outbox){.post = sink_post, .ud = &h->trash};
	h->now = (hearth_now){.mono_ms = 10000, .wall_ms = 1700000000000, .local_minute = 720};
	assert_non_null(flags);
	if (hearth_context_configure(h->ctx, flags, NULL, "test", why, sizeof(why)))
		fail_msg("flags: %s", why);
	cJSON_Delete(flags);
	home_device(h, "presence", PRESENCE_META, NULL);
}

static void
home_free(struct home *h)
{
	sink_reset(&h->trash);
	free(h->trash.msgs);
	hearth_context_free(h->ctx);
}

static void
presence(struct home *h, bool home)
{
	home_msg(h, HEARTH_MSG_DEVICE_STATE, "presence",
	         home ? "{\"occupancy\":true}" : "{\"occupancy\":false}", false);
	assert_int_equal(hearth_context_flag(h->ctx, "someone_home"), home ? 1 : 0);
}

/* ==== Hand-made plans ==== */

struct spec {
	const char *id, *device, *cap, *args;
};

static struct hearth_plan *
mkplan(const struct spec *s, int n)
{
	struct hearth_plan *p = hearth_plan_new(n);

	assert_non_null(p);
	for (int i = 0; i < n; i++) {
		snprintf(p->steps[i].id, sizeof(p->steps[i].id), "%s", s[i].id);
		snprintf(p->steps[i].device, sizeof(p->steps[i].device), "%s", s[i].device);
		p->steps[i].cap = hearth_capability_find(s[i].cap);
		assert_true(p->steps[i].cap >= 0);
		p->steps[i].args = cJSON_Parse(s[i].args);
		assert_non_null(p->steps[i].args);
	}
	return p;
}

static const struct spec home_steps[] = {
        {"unlock", "door", "lock.lock", "{\"locked\":false}"},
        {"lock", "back", "lock.lock", "{\"locked\":true}"},
        {"heat", "thermo", "climate.setpoint", "{\"setpoint\":26}"},
        {"lights", "lamp", "light.on_off", "{\"on\":true,\"brightness\":30}"},
        {"lights", "lamp2", "light.on_off", "{\"on\":true}"},
};
#define NHOME ((int)(sizeof(home_steps) / sizeof(home_steps[0])))

struct run {
	struct hearth_plan *p;
	struct hearth_policy_result res;
};

static bool
has_step(const struct hearth_plan *p, const char *dev)
{
	for (int i = 0; i < p->nsteps; i++)
		if (!strcmp(p->steps[i].device, dev))
			return true;
	return false;
}

static const struct hearth_step *
step_of(const struct hearth_plan *p, const char *dev)
{
	for (int i = 0; i < p->nsteps; i++)
		if (!strcmp(p->steps[i].device, dev))
			return &p->steps[i];
	fail_msg("no step on %s", dev);
	return NULL;
}

/* Apply rules_json to the standard plan in h at minute. */
static void
apply(struct home *h, const char *rules_json, int minute, bool can_approve, struct run *r)
{
	cJSON *rules = cJSON_Parse(rules_json);
	struct hearth_policy_env env = {
	        .ctx = h ? h->ctx : NULL, .local_minute = minute, .can_approve = can_approve};

	assert_non_null(rules);
	r->p = mkplan(home_steps, NHOME);
	assert_int_equal(hearth_policy_apply(rules, &env, r->p, &r->res), 0);
	cJSON_Delete(rules);
}

static void
run_free(struct run *r)
{
	hearth_plan_free(r->p);
	hearth_policy_result_clear(&r->res);
}

static double
num_arg(const struct hearth_step *st, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(st->args, k);

	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

/* ==== Rule kinds ==== */

static void
test_forbid_capability(void **state)
{
	struct run r;

	(void)state;
	apply(NULL,
	      "[{\"id\":\"no_locks\",\"forbid\":{\"capability\":\"lock.lock\"},"
	      "\"reason\":\"locks are manual here\"}]",
	      720, false, &r);
	assert_int_equal(r.p->nsteps, NHOME - 2);
	assert_false(has_step(r.p, "door"));
	assert_false(has_step(r.p, "back"));
	assert_true(has_step(r.p, "thermo"));
	assert_int_equal(r.res.dropped, 2);
	assert_int_equal(r.res.nrules_applied, 1);
	assert_contains(r.res.notes, "door (unlock) is not done: locks are manual here (rule "
	                             "no_locks)");
	run_free(&r);
}

static void
test_forbid_device(void **state)
{
	struct run r;

	(void)state;
	apply(NULL,
	      "[{\"id\":\"lamp2_broken\",\"forbid\":{\"capability\":\"light.on_off\","
	      "\"device\":\"lamp2\"},\"reason\":\"it sparks\"}]",
	      720, false, &r);
	assert_int_equal(r.p->nsteps, NHOME - 1);
	assert_false(has_step(r.p, "lamp2"));
	assert_true(has_step(r.p, "lamp"));
	run_free(&r);
	/* the device must have that capability in the step */
	apply(NULL,
	      "[{\"id\":\"x\",\"forbid\":{\"capability\":\"lock.lock\",\"device\":\"lamp2\"},"
	      "\"reason\":\"r\"}]",
	      720, false, &r);
	assert_int_equal(r.p->nsteps, NHOME);
	assert_null(r.res.notes);
	run_free(&r);
}

static void
test_forbid_args(void **state)
{
	struct run r;

	(void)state;
	apply(NULL,
	      "[{\"id\":\"no_unlock\",\"forbid\":{\"capability\":\"lock.lock\",\"args\":"
	      "{\"locked\":false}},\"reason\":\"never unlock\"}]",
	      720, false, &r);
	assert_false(has_step(r.p, "door"));
	assert_true(has_step(r.p, "back"));
	run_free(&r);
	/* every listed arg must match: brightness 30 and on */
	apply(NULL,
	      "[{\"id\":\"dim\",\"forbid\":{\"capability\":\"light.on_off\",\"args\":"
	      "{\"on\":true,\"brightness\":30}},\"reason\":\"r\"}]",
	      720, false, &r);
	assert_false(has_step(r.p, "lamp"));
	assert_true(has_step(r.p, "lamp2"));
	run_free(&r);
}

static void
test_cap_max_min(void **state)
{
	struct run r;

	(void)state;
	apply(NULL,
	      "[{\"id\":\"heat_cap\",\"cap\":{\"capability\":\"climate.setpoint\",\"property\":"
	      "\"setpoint\",\"max\":24},\"reason\":\"energy budget\"}]",
	      720, false, &r);
	assert_int_equal(r.p->nsteps, NHOME);
	assert_true(num_arg(step_of(r.p, "thermo"), "setpoint") == 24);
	assert_int_equal(r.res.capped, 1);
	assert_contains(r.res.notes, "thermo setpoint 26 capped at 24: energy budget (rule "
	                             "heat_cap)");
	run_free(&r);
	apply(NULL,
	      "[{\"id\":\"bright\",\"cap\":{\"capability\":\"light.on_off\",\"property\":"
	      "\"brightness\",\"min\":50},\"reason\":\"safety light\"}]",
	      720, false, &r);
	assert_true(num_arg(step_of(r.p, "lamp"), "brightness") == 50);
	assert_contains(r.res.notes, "brightness 30 capped at 50");
	run_free(&r);
	/* within the bounds: untouched, no note */
	apply(NULL,
	      "[{\"id\":\"c\",\"cap\":{\"capability\":\"climate.setpoint\",\"property\":"
	      "\"setpoint\",\"min\":10,\"max\":30,\"device\":\"thermo\"},\"reason\":\"r\"}]",
	      720, false, &r);
	assert_true(num_arg(step_of(r.p, "thermo"), "setpoint") == 26);
	assert_int_equal(r.res.capped, 0);
	assert_null(r.res.notes);
	run_free(&r);
}

#define AWAY_RULE                                                                                  \
	"[{\"id\":\"no_unlock_when_away\",\"when\":{\"flag\":\"someone_home\",\"is\":false},"      \
	"\"forbid\":{\"capability\":\"lock.lock\",\"args\":{\"locked\":false}},"                   \
	"\"reason\":\"never unlock while nobody is home\"}]"

static void
test_when_flag(void **state)
{
	struct home h;
	struct run r;

	(void)state;
	home_init(&h);
	/* never reported: someone_home reads false, so the rule holds */
	apply(&h, AWAY_RULE, 720, false, &r);
	assert_false(has_step(r.p, "door"));
	run_free(&r);
	presence(&h, true);
	apply(&h, AWAY_RULE, 720, false, &r);
	assert_true(has_step(r.p, "door"));
	run_free(&r);
	presence(&h, false);
	apply(&h, AWAY_RULE, 720, false, &r);
	assert_false(has_step(r.p, "door"));
	assert_contains(r.res.notes, "never unlock while nobody is home");
	run_free(&r);
	/* a flag that does not exist is unknown: fail closed */
	apply(&h,
	      "[{\"id\":\"f\",\"when\":{\"flag\":\"no_such_flag\",\"is\":true},\"forbid\":"
	      "{\"capability\":\"lock.lock\"},\"reason\":\"r\"}]",
	      720, false, &r);
	assert_false(has_step(r.p, "door"));
	run_free(&r);
	/* no context at all: unknown too */
	apply(NULL, AWAY_RULE, 720, false, &r);
	assert_false(has_step(r.p, "door"));
	run_free(&r);
	home_free(&h);
}

static void
test_when_device(void **state)
{
	struct home h;
	struct run r;
	const char *is_rule = "[{\"id\":\"d\",\"when\":{\"device\":\"window\",\"property\":"
	                      "\"contact\",\"is\":false},\"forbid\":{\"capability\":"
	                      "\"climate.setpoint\"},\"reason\":\"window open\"}]";
	const char *lt_rule = "[{\"id\":\"t\",\"when\":{\"device\":\"temp\",\"property\":"
	                      "\"temperature\",\"gt\":25,\"lt\":40},\"forbid\":{\"capability\":"
	                      "\"climate.setpoint\"},\"reason\":\"hot\"}]";

	(void)state;
	home_init(&h);
	/* unknown device: fail closed */
	apply(&h, is_rule, 720, false, &r);
	assert_false(has_step(r.p, "thermo"));
	run_free(&r);
	home_device(&h, "window", "{\"room\":\"living\",\"capabilities\":[\"sensor.contact\"]}",
	            "{\"contact\":true}");
	apply(&h, is_rule, 720, false, &r);
	assert_true(has_step(r.p, "thermo"));
	run_free(&r);
	home_msg(&h, HEARTH_MSG_DEVICE_STATE, "window", "{\"contact\":false}", false);
	apply(&h, is_rule, 720, false, &r);
	assert_false(has_step(r.p, "thermo"));
	run_free(&r);
	/* offline: its value cannot be trusted, fail closed */
	home_msg(&h, HEARTH_MSG_DEVICE_STATE, "window", "{\"contact\":true}", false);
	home_msg(&h, HEARTH_MSG_DEVICE_AVAIL, "window", NULL, false);
	apply(&h, is_rule, 720, false, &r);
	assert_false(has_step(r.p, "thermo"));
	run_free(&r);

	home_device(&h, "temp", "{\"room\":\"living\",\"capabilities\":[\"sensor.temperature\"]}",
	            "{\"temperature\":20}");
	apply(&h, lt_rule, 720, false, &r);
	assert_true(has_step(r.p, "thermo"));
	run_free(&r);
	home_msg(&h, HEARTH_MSG_DEVICE_STATE, "temp", "{\"temperature\":30}", false);
	apply(&h, lt_rule, 720, false, &r);
	assert_false(has_step(r.p, "thermo"));
	run_free(&r);
	home_msg(&h, HEARTH_MSG_DEVICE_STATE, "temp", "{\"temperature\":45}", false);
	apply(&h, lt_rule, 720, false, &r);
	assert_true(has_step(r.p, "thermo"));
	run_free(&r);
	/* not a number: unknown, fail closed */
	home_msg(&h, HEARTH_MSG_DEVICE_STATE, "temp", "{\"label\":\"warm\"}", false);
	apply(&h,
	      "[{\"id\":\"l\",\"when\":{\"device\":\"temp\",\"property\":\"label\",\"gt\":1},"
	      "\"forbid\":{\"capability\":\"climate.setpoint\"},\"reason\":\"r\"}]",
	      720, false, &r);
	assert_false(has_step(r.p, "thermo"));
	run_free(&r);
	home_free(&h);
}

static void
test_when_time(void **state)
{
	const char *night = "[{\"id\":\"n\",\"when\":{\"time\":{\"from\":\"22:00\",\"to\":"
	                    "\"06:00\"}},\"forbid\":{\"capability\":\"light.on_off\"},"
	                    "\"reason\":\"night\"}]";
	const char *day = "[{\"id\":\"d\",\"when\":{\"time\":{\"from\":\"09:00\",\"to\":"
	                  "\"17:30\"}},\"forbid\":{\"capability\":\"light.on_off\"},"
	                  "\"reason\":\"day\"}]";
	static const struct {
		int minute;
		bool night, day;
	} cases[] = {
	        {0, true, false},     {359, true, false},  {360, false, false},
	        {540, false, true},   {1049, false, true}, {1050, false, false},
	        {1319, false, false}, {1320, true, false}, {1439, true, false},
	        {-1, true, true}, /* unknown time: fail closed */
	};
	struct run r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		apply(NULL, night, cases[i].minute, false, &r);
		assert_int_equal(has_step(r.p, "lamp"), !cases[i].night);
		run_free(&r);
		apply(NULL, day, cases[i].minute, false, &r);
		assert_int_equal(has_step(r.p, "lamp"), !cases[i].day);
		run_free(&r);
	}
}

static void
test_when_all_any_not(void **state)
{
	struct home h;
	struct run r;
	char rule[1024];
	static const struct {
		const char *when;
		bool home, applies;
	} cases[] = {
	        /* all: false and anything is false, even unknown */
	        {"{\"all\":[{\"flag\":\"someone_home\",\"is\":false},{\"device\":\"ghost\","
	         "\"property\":\"x\",\"is\":1}]}",
	         true, false},
	        {"{\"all\":[{\"flag\":\"someone_home\",\"is\":false},{\"device\":\"ghost\","
	         "\"property\":\"x\",\"is\":1}]}",
	         false, true},
	        {"{\"all\":[{\"flag\":\"someone_home\",\"is\":true},{\"time\":{\"from\":"
	         "\"11:00\",\"to\":\"13:00\"}}]}",
	         true, true},
	        {"{\"all\":[{\"flag\":\"someone_home\",\"is\":true},{\"time\":{\"from\":"
	         "\"13:00\",\"to\":\"14:00\"}}]}",
	         true, false},
	        /* any: true or anything is true; false or unknown is unknown (applies) */
	        {"{\"any\":[{\"flag\":\"someone_home\",\"is\":true},{\"device\":\"ghost\","
	         "\"property\":\"x\",\"is\":1}]}",
	         true, true},
	        {"{\"any\":[{\"flag\":\"someone_home\",\"is\":true},{\"device\":\"ghost\","
	         "\"property\":\"x\",\"is\":1}]}",
	         false, true},
	        {"{\"any\":[{\"flag\":\"someone_home\",\"is\":true},{\"time\":{\"from\":"
	         "\"13:00\",\"to\":\"14:00\"}}]}",
	         false, false},
	        /* not */
	        {"{\"not\":{\"flag\":\"someone_home\",\"is\":true}}", true, false},
	        {"{\"not\":{\"flag\":\"someone_home\",\"is\":true}}", false, true},
	        {"{\"not\":{\"device\":\"ghost\",\"property\":\"x\",\"is\":1}}", true, true},
	        {"{\"not\":{\"any\":[{\"flag\":\"someone_home\",\"is\":false},{\"time\":"
	         "{\"from\":\"13:00\",\"to\":\"14:00\"}}]}}",
	         true, true},
	};

	(void)state;
	home_init(&h);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		presence(&h, cases[i].home);
		snprintf(rule, sizeof(rule),
		         "[{\"id\":\"w\",\"when\":%s,\"forbid\":{\"capability\":\"lock.lock\"},"
		         "\"reason\":\"r\"}]",
		         cases[i].when);
		apply(&h, rule, 720, false, &r);
		if (has_step(r.p, "door") == cases[i].applies)
			fail_msg("case %zu: %s (home %d) should %sapply", i, cases[i].when,
			         cases[i].home, cases[i].applies ? "" : "not ");
		run_free(&r);
	}
	home_free(&h);
}

static void
test_approval_lifts(void **state)
{
	const char *rules = "[{\"id\":\"unlock_needs_ok\",\"forbid\":{\"capability\":"
	                    "\"lock.lock\",\"args\":{\"locked\":false}},\"approval_lifts\":true,"
	                    "\"reason\":\"unlocking needs the owner\"},"
	                    "{\"id\":\"heat\",\"cap\":{\"capability\":\"climate.setpoint\","
	                    "\"property\":\"setpoint\",\"max\":24},\"approval_lifts\":true,"
	                    "\"reason\":\"energy\"}]";
	const char *both = "[{\"id\":\"a\",\"forbid\":{\"capability\":\"lock.lock\"},"
	                   "\"approval_lifts\":true,\"reason\":\"ask\"},"
	                   "{\"id\":\"b\",\"forbid\":{\"capability\":\"lock.lock\",\"device\":"
	                   "\"door\"},\"reason\":\"never\"}]";
	struct run r;

	(void)state;
	/* approvals can be asked for: kept unchanged, marked */
	apply(NULL, rules, 720, true, &r);
	assert_int_equal(r.p->nsteps, NHOME);
	assert_int_equal(r.res.approvals, 2);
	assert_non_null(r.res.needs_approval);
	for (int i = 0; i < r.p->nsteps; i++)
		assert_int_equal(r.res.needs_approval[i],
		                 !strcmp(r.p->steps[i].device, "door") ||
		                         !strcmp(r.p->steps[i].device, "thermo"));
	assert_true(num_arg(step_of(r.p, "thermo"), "setpoint") == 26);
	assert_contains(r.res.notes, "door (unlock) needs an approval: unlocking needs the owner "
	                             "(rule unlock_needs_ok)");
	run_free(&r);
	/* they cannot: as hard as any rule, and said so */
	apply(NULL, rules, 720, false, &r);
	assert_false(has_step(r.p, "door"));
	assert_true(num_arg(step_of(r.p, "thermo"), "setpoint") == 24);
	assert_int_equal(r.res.approvals, 0);
	assert_null(r.res.needs_approval);
	assert_contains(r.res.notes, "an approval could lift this rule");
	run_free(&r);
	/* a hard rule wins over an approval mark on the same step */
	apply(NULL, both, 720, true, &r);
	assert_false(has_step(r.p, "door"));
	assert_true(has_step(r.p, "back"));
	assert_int_equal(r.res.approvals, 1);
	for (int i = 0; i < r.p->nsteps; i++)
		assert_int_equal(r.res.needs_approval[i], !strcmp(r.p->steps[i].device, "back"));
	run_free(&r);
}

static void
test_no_rules(void **state)
{
	struct run r;

	(void)state;
	apply(NULL, "[]", 720, false, &r);
	assert_int_equal(r.p->nsteps, NHOME);
	assert_null(r.res.notes);
	assert_int_equal(r.res.dropped + r.res.capped + r.res.approvals, 0);
	run_free(&r);
}

/* ==== Through the orchestrator ==== */

static void
count_problem(void *ud, const char *line)
{
	int *n = ud;

	print_message("recipe problem (not this test's): %s\n", line);
	(*n)++;
}

static hearth_recipe_book *
load_book(void)
{
	hearth_recipe_book *b = NULL;
	char why[256] = "";
	int problems = 0;

	if (hearth_recipe_book_load(HEARTH_RECIPES_DIR, &b, count_problem, &problems, why,
	                            sizeof(why)))
		fail_msg("recipes: %s", why);
	assert_true(hearth_recipe_book_count(b) > 0);
	return b;
}

static void
send_intent(hearth_orch *o, const char *id, cJSON *body, const hearth_now *now,
            const hearth_outbox *out)
{
	hearth_msg m = {.type = HEARTH_MSG_INTENT};

	snprintf(m.id, sizeof(m.id), "%s", id);
	m.body = body;
	hearth_orch_handle(o, &m, now, out);
	hearth_msg_clear(&m);
}

static void
test_orchestrator_forbidden(void **state)
{
	hearth_recipe_book *book = load_book();
	struct sink sink = {0};
	hearth_outbox out = {.post = sink_post, .ud = &sink};
	hearth_orch *o;
	struct home h;
	cJSON *rules = cJSON_Parse(AWAY_RULE);
	hearth_msg *m;

	(void)state;
	if (!hearth_recipe_book_find(book, "door.unlock")) {
		hearth_recipe_book_free(book);
		skip();
	}
	home_init(&h);
	home_device(&h, "door",
	            "{\"room\":\"hall\",\"kind\":\"lock\",\"name\":\"Front door\","
	            "\"capabilities\":[\"lock.lock\"]}",
	            "{\"locked\":true}");
	assert_int_equal(hearth_orch_new(book, h.ctx, &o), 0);
	assert_int_equal(hearth_orch_set_rules(o, rules), 0);
	presence(&h, false);
	send_intent(o, "i1", cJSON_Parse("{\"intent\":\"door.unlock\"}"), &h.now, &out);
	m = sink_nth(&sink, HEARTH_MSG_INTENT_REPLY, 0);
	assert_non_null(m);
	assert_string_equal(jstr(m->body, "error"), "forbidden");
	assert_contains(jstr(m->body, "detail"), "Front door (unlock) is not done: never unlock "
	                                         "while nobody is home (rule no_unlock_when_away)");
	assert_int_equal(sink_count(&sink, HEARTH_MSG_PLAN), 0);
	sink_reset(&sink);
	/* someone home: the rule lets the unlock through (a preview: door.unlock
	 * always needs an approval, which is refused until approvals exist) */
	presence(&h, true);
	send_intent(o, "i2", cJSON_Parse("{\"intent\":\"door.unlock\",\"preview\":true}"), &h.now,
	            &out);
	m = sink_nth(&sink, HEARTH_MSG_INTENT_REPLY, 0);
	assert_string_equal(jstr(m->body, "state"), "previewed");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m->body, "steps")), 1);
	sink_reset(&sink);
	/* rules can be taken away */
	assert_int_equal(hearth_orch_set_rules(o, NULL), 0);
	presence(&h, false);
	send_intent(o, "i3", cJSON_Parse("{\"intent\":\"door.unlock\",\"preview\":true}"), &h.now,
	            &out);
	m = sink_nth(&sink, HEARTH_MSG_INTENT_REPLY, 0);
	assert_string_equal(jstr(m->body, "state"), "previewed");
	sink_reset(&sink);
	free(sink.msgs);
	cJSON_Delete(rules);
	hearth_orch_free(o);
	home_free(&h);
	hearth_recipe_book_free(book);
}

/* ==== The property test ==== */

#define HOMES 1000

static const char *const rooms[] = {"living", "bedroom", "kitchen", "hall", "office"};
#define NROOMS ((int)(sizeof(rooms) / sizeof(rooms[0])))

static const struct {
	const char *kind, *caps, *prop; /* prop: the bool property of the default state */
} kinds[] = {
        {"light", "\"light.on_off\",\"light.brightness\",\"light.color_temp\"", NULL},
        {"light", "\"light.on_off\"", "on"},
        {"switch", "\"switch.on_off\"", "on"},
        {"tv", "\"media.power\",\"media.volume\"", NULL},
        {"blind", "\"cover.position\"", NULL},
        {"lock", "\"lock.lock\"", "locked"},
        {"thermostat", "\"climate.setpoint\",\"sensor.temperature\"", NULL},
        {"sensor", "\"sensor.motion\",\"sensor.illuminance\"", "motion"},
};
#define NKINDS ((int)(sizeof(kinds) / sizeof(kinds[0])))

#define PROPERTY_RULES                                                                             \
	"[{\"id\":\"no_unlock_when_away\",\"when\":{\"flag\":\"someone_home\",\"is\":false},"      \
	"\"forbid\":{\"capability\":\"lock.lock\",\"args\":{\"locked\":false}},"                   \
	"\"reason\":\"never unlock while nobody is home\"},"                                       \
	"{\"id\":\"setpoint_cap\",\"cap\":{\"capability\":\"climate.setpoint\",\"property\":"      \
	"\"setpoint\",\"max\":24,\"min\":12},\"reason\":\"heating budget\"},"                      \
	"{\"id\":\"quiet_volume\",\"when\":{\"time\":{\"from\":\"22:00\",\"to\":\"07:00\"}},"      \
	"\"cap\":{\"capability\":\"media.volume\",\"property\":\"volume\",\"max\":5},"             \
	"\"reason\":\"quiet hours\"},"                                                             \
	"{\"id\":\"eco_night\",\"when\":{\"flag\":\"night\",\"is\":true},\"cap\":"                 \
	"{\"capability\":\"climate.setpoint\",\"property\":\"setpoint\",\"max\":19},"              \
	"\"reason\":\"cooler at night\"},"                                                         \
	"{\"id\":\"bedroom_blind_night\",\"when\":{\"all\":[{\"time\":{\"from\":\"23:00\","        \
	"\"to\":\"06:00\"}},{\"not\":{\"flag\":\"someone_home\",\"is\":false}}]},"                 \
	"\"forbid\":{\"capability\":\"cover.position\",\"device\":\"bedroom-4-0\"},"               \
	"\"approval_lifts\":true,\"reason\":\"the bedroom blind stays put at night\"},"            \
	"{\"id\":\"ghost_switch\",\"when\":{\"device\":\"ghost\",\"property\":\"x\",\"is\":1},"    \
	"\"forbid\":{\"capability\":\"switch.on_off\",\"args\":{\"on\":true}},"                    \
	"\"reason\":\"unknown condition: fail closed\"}]"

static const char *
rbool(void)
{
	return rand() % 2 ? "true" : "false";
}

struct stats {
	long cases, plans, refusals, forbidden, unlock_blocked, capped, unlock_allowed, awaiting;
};

static void
check_plan(const struct hearth_plan *p, bool home, int minute, struct stats *s)
{
	int lock = hearth_capability_find("lock.lock");
	int setpoint = hearth_capability_find("climate.setpoint");
	int volume = hearth_capability_find("media.volume");
	int cover = hearth_capability_find("cover.position");
	int sw = hearth_capability_find("switch.on_off");
	bool quiet = minute >= 22 * 60 || minute < 7 * 60;
	bool night = minute >= 23 * 60 || minute < 6 * 60;
	bool eco = minute >= 22 * 60 || minute < 6 * 60; /* the built-in night flag */

	for (int i = 0; i < p->nsteps; i++) {
		const struct hearth_step *st = &p->steps[i];
		const cJSON *v;

		if (st->cap == lock && st->state != HEARTH_STEP_SKIPPED &&
		    cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(st->args, "locked"))) {
			if (!home)
				fail_msg("%s: unlocks %s while nobody is home", p->recipe,
				         st->device);
			/* high risk: it waits for the owner's approval, always */
			if (p->state != HEARTH_PLAN_AWAITING_APPROVAL || !p->needs_approval ||
			    p->risk != HEARTH_RISK_HIGH)
				fail_msg("%s: unlocks %s without waiting for an approval",
				         p->recipe, st->device);
			s->unlock_allowed++;
		}
		v = cJSON_GetObjectItemCaseSensitive(st->args, "setpoint");
		if (st->cap == setpoint && cJSON_IsNumber(v) &&
		    (v->valuedouble > 24 || v->valuedouble < 12))
			fail_msg("%s: setpoint %g on %s", p->recipe, v->valuedouble, st->device);
		if (st->cap == setpoint && eco && cJSON_IsNumber(v) && v->valuedouble > 19)
			fail_msg("%s: setpoint %g at night", p->recipe, v->valuedouble);
		v = cJSON_GetObjectItemCaseSensitive(st->args, "volume");
		if (st->cap == volume && quiet && cJSON_IsNumber(v) && v->valuedouble > 5)
			fail_msg("%s: volume %g at minute %d", p->recipe, v->valuedouble, minute);
		/* approval_lifts: the step may stay only in a plan that waits for one */
		if (st->cap == cover && night && home && !strcmp(st->device, "bedroom-4-0")) {
			if (p->state != HEARTH_PLAN_AWAITING_APPROVAL || !p->needs_approval)
				fail_msg("%s: moves the bedroom blind at night", p->recipe);
			s->awaiting++;
		}
		if (st->cap == sw && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st->args, "on")))
			fail_msg("%s: switch on %s under an unknown condition", p->recipe,
			         st->device);
	}
	if (p->rationale && strstr(p->rationale, "no_unlock_when_away"))
		s->unlock_blocked++;
	if (p->rationale && strstr(p->rationale, "capped at"))
		s->capped++;
}

static cJSON *
random_intent(const struct hearth_recipe *r)
{
	cJSON *b = cJSON_CreateObject(), *slots = cJSON_CreateObject();

	assert_non_null(b);
	assert_non_null(slots);
	cJSON_AddStringToObject(b, "intent", r->intents[0]);
	for (int i = 0; i < r->nslots; i++) {
		const struct hearth_recipe_slot *sl = &r->slots[i];

		if (!sl->required && rand() % 3 == 0)
			continue;
		if (!strcmp(sl->type, "room"))
			cJSON_AddStringToObject(slots, sl->name, rooms[rand() % NROOMS]);
		else if (!strcmp(sl->type, "string"))
			cJSON_AddStringToObject(slots, sl->name, "guest");
		else if (!strcmp(sl->type, "temperature"))
			cJSON_AddNumberToObject(slots, sl->name, 5 + rand() % 31);
		else
			cJSON_AddNumberToObject(slots, sl->name, rand() % 101);
	}
	cJSON_AddItemToObject(b, "slots", slots);
	return b;
}

static void
test_property_never_violated(void **state)
{
	hearth_recipe_book *book = load_book();
	cJSON *rules = cJSON_Parse(PROPERTY_RULES);
	struct stats s = {0};
	struct sink sink = {0};
	hearth_outbox out = {.post = sink_post, .ud = &sink};
	int nrecipes = hearth_recipe_book_count(book);
	unsigned seed = 20240601u;

	(void)state;
	assert_non_null(rules);
	srand(seed);
	for (int n = 0; n < HOMES; n++) {
		struct home h;
		hearth_orch *o;
		bool home = false;
		int minute = rand() % 1440;

		home_init(&h);
		h.now.local_minute = minute;
		for (int ri = 0; ri < NROOMS; ri++) {
			for (int k = 0; k < NKINDS; k++) {
				int count = rand() % 3; /* 0..2 of each kind per room */

				for (int c = 0; c < count; c++) {
					char id[64], meta[256], st[256];

					snprintf(id, sizeof(id), "%s-%d-%d", rooms[ri], k, c);
					snprintf(meta, sizeof(meta),
					         "{\"room\":\"%s\",\"kind\":\"%s\",\"name\":\"%s\","
					         "\"capabilities\":[%s]}",
					         rooms[ri], kinds[k].kind, id, kinds[k].caps);
					switch (k) {
					case 0:
						snprintf(st, sizeof(st),
						         "{\"on\":%s,\"brightness\":%d,\"color_"
						         "temp\":%d}",
						         rbool(), rand() % 101,
						         2000 + rand() % 4500);
						break;
					case 3:
						snprintf(st, sizeof(st),
						         "{\"on\":%s,\"volume\":%d}", rbool(),
						         rand() % 101);
						break;
					case 4:
						snprintf(st, sizeof(st), "{\"position\":%d}",
						         rand() % 101);
						break;
					case 6:
						snprintf(st, sizeof(st),
						         "{\"setpoint\":%d,\"temperature\":%d}",
						         5 + rand() % 31, 10 + rand() % 20);
						break;
					default:
						snprintf(st, sizeof(st), "{\"%s\":%s}",
						         kinds[k].prop, rbool());
						break;
					}
					/* some never report (optimistic), some go offline */
					home_device(&h, id, meta, rand() % 5 ? st : NULL);
					if (rand() % 8 == 0)
						home_msg(&h, HEARTH_MSG_DEVICE_AVAIL, id, NULL,
						         false);
				}
			}
		}
		switch (rand() % 3) {
		case 0: /* never reported: away */
			break;
		case 1:
			presence(&h, false);
			break;
		default:
			presence(&h, true);
			home = true;
			break;
		}
		assert_int_equal(hearth_context_flag(h.ctx, "someone_home"), home);
		assert_int_equal(hearth_orch_new(book, h.ctx, &o), 0);
		assert_int_equal(hearth_orch_set_rules(o, rules), 0);
		for (int ri = 0; ri < nrecipes; ri++) {
			const struct hearth_recipe *r = hearth_recipe_book_at(book, ri);
			char iid[32];

			if (!r->nintents)
				continue;
			snprintf(iid, sizeof(iid), "i-%d-%d", n, ri);
			send_intent(o, iid, random_intent(r), &h.now, &out);
			s.cases++;
			for (int k = 0; k < sink.n; k++) {
				hearth_msg *m = &sink.msgs[k];

				if (m->type == HEARTH_MSG_PLAN) {
					s.plans++;
					check_plan(m->plan, home, minute, &s);
				} else if (m->type == HEARTH_MSG_INTENT_REPLY) {
					const char *err = jstr(m->body, "error");

					s.refusals++;
					if (err && !strcmp(err, "forbidden")) {
						s.forbidden++;
						if (strstr(jstr(m->body, "detail"),
						           "no_unlock_when_away"))
							s.unlock_blocked++;
					}
				}
			}
			sink_reset(&sink);
		}
		hearth_orch_free(o);
		home_free(&h);
	}
	print_message(
	        "policy property: %d homes x %d recipes = %ld cases: %ld plans, %ld "
	        "refusals (%ld forbidden); unlocks blocked %ld, allowed %ld (someone "
	        "home, each awaiting approval); plans with a capped value %ld; bedroom blind at "
	        "night only awaiting approval %ld; no violation\n",
	        HOMES, nrecipes, s.cases, s.plans, s.refusals, s.forbidden, s.unlock_blocked,
	        s.unlock_allowed, s.capped, s.awaiting);
	assert_true(s.cases >= 1000);
	assert_true(s.plans > 0);
	/* the rules were actually put to the test when the library can unlock */
	for (int ri = 0; ri < nrecipes; ri++) {
		const struct hearth_recipe *r = hearth_recipe_book_at(book, ri);

		/* a recipe that can unlock (door.unlock: it waits for an approval) */
		for (int j = 0; j < r->nsteps; j++)
			if (r->steps[j].cap == hearth_capability_find("lock.lock") &&
			    cJSON_IsFalse(
			            cJSON_GetObjectItemCaseSensitive(r->steps[j].args, "locked")))
				assert_true(s.unlock_blocked > 0 && s.unlock_allowed > 0);
	}
	free(sink.msgs);
	cJSON_Delete(rules);
	hearth_recipe_book_free(book);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_forbid_capability),
	        cmocka_unit_test(test_forbid_device),
	        cmocka_unit_test(test_forbid_args),
	        cmocka_unit_test(test_cap_max_min),
	        cmocka_unit_test(test_when_flag),
	        cmocka_unit_test(test_when_device),
	        cmocka_unit_test(test_when_time),
	        cmocka_unit_test(test_when_all_any_not),
	        cmocka_unit_test(test_approval_lifts),
	        cmocka_unit_test(test_no_rules),
	        cmocka_unit_test(test_orchestrator_forbidden),
	        cmocka_unit_test(test_property_never_violated),
	};

	hearth_log_set_level(HEARTH_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
