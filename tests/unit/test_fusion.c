/*
 * test_fusion.c - what the context agent fuses: the half-life table and its
 * decay arithmetic (fusion.c), then room occupancy and home presence as the
 * planner would query them, driven through hearth_context_handle with a fake
 * clock: motion then quiet (the score decays), a contact that changes (its
 * first report does not count), media switched on and left on, a sensor
 * that goes offline, presence flags, and a home nobody is in.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/context/context.h"
#include "agents/context/fusion.h"
#include "agents/msg.h"
#include "platform/alloc.h"
#include "platform/log.h"
#include "tests/unit/support/sink.h"

#define MIN (60LL * 1000)

struct fx {
	hearth_context *ctx;
	struct sink sink;
	hearth_outbox out;
	hearth_now now;
	int64_t t0;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(hearth_context_new(64, &f->ctx), 0);
	f->out = (hearth_outbox){.post = sink_post, .ud = &f->sink};
	f->now = (hearth_now){.mono_ms = 5000, .wall_ms = 1700000000000};
	f->t0 = f->now.wall_ms;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	sink_reset(&f->sink);
	free(f->sink.msgs);
	hearth_context_free(f->ctx);
	free(f);
	return 0;
}

static void
feed(struct fx *f, enum hearth_msg_type type, const char *id, const char *json, bool flag)
{
	hearth_msg m = {.type = type, .flag = flag};

	snprintf(m.id, sizeof(m.id), "%s", id);
	if (json) {
		m.body = cJSON_Parse(json);
		assert_non_null(m.body);
	}
	hearth_context_handle(f->ctx, &m, &f->now, &f->out);
	hearth_msg_clear(&m);
	sink_reset(&f->sink);
}

static void
meta(struct fx *f, const char *id, const char *json)
{
	feed(f, HEARTH_MSG_DEVICE_META, id, json, false);
}

static void
state_of(struct fx *f, const char *id, const char *json)
{
	feed(f, HEARTH_MSG_DEVICE_STATE, id, json, false);
}

/* Move the fake clock to t0 + ms. */
static void
at(struct fx *f, int64_t ms)
{
	f->now.wall_ms = f->t0 + ms;
	f->now.mono_ms = 5000 + ms;
}

static struct hearth_occupancy
room(struct fx *f, const char *name)
{
	return hearth_context_room_occupancy(f->ctx, name, &f->now);
}

/* ==== The table and the arithmetic ==== */

static void
test_half_life_table(void **state)
{
	(void)state;
	assert_true(hearth_fusion_half_life_ms("on") == 60 * MIN);
	assert_true(hearth_fusion_half_life_ms("brightness") == 60 * MIN);
	assert_true(hearth_fusion_half_life_ms("motion") == 2 * MIN);
	assert_true(hearth_fusion_half_life_ms("temperature") == 30 * MIN);
	assert_string_equal(hearth_fusion_class("locked")->class_name, "actuator");
	assert_string_equal(hearth_fusion_class("motion")->class_name, "motion");
	/* anything else: the default row */
	assert_string_equal(hearth_fusion_class("linkquality")->class_name, "other");
	assert_true(hearth_fusion_half_life_ms("linkquality") == 60 * MIN);
	assert_string_equal(hearth_fusion_class(NULL)->class_name, "other");
}

static void
test_decay(void **state)
{
	(void)state;
	assert_float_equal(hearth_fusion_decay(1, 0, MIN), 1, 1e-12);
	assert_float_equal(hearth_fusion_decay(1, -5, MIN), 1, 1e-12);
	assert_float_equal(hearth_fusion_decay(1, MIN, MIN), 0.5, 1e-12);
	assert_float_equal(hearth_fusion_decay(0.8, 3 * MIN, MIN), 0.1, 1e-12);
	assert_float_equal(hearth_fusion_decay(1, 1, 0), 0, 1e-12);
	assert_float_equal(hearth_fusion_confidence("temperature", 30 * MIN, false), 0.5, 1e-12);
	assert_float_equal(hearth_fusion_confidence("temperature", 30 * MIN, true), 0.1, 1e-12);
	assert_float_equal(hearth_fusion_confidence("on", 0, true), HEARTH_FUSION_OFFLINE_FACTOR,
	                   1e-12);
}

/* ==== Rooms ==== */

static void
test_motion_then_quiet(void **state)
{
	struct fx *f = *state;
	struct hearth_occupancy o;

	meta(f, "pir", "{\"room\":\"Hall\",\"capabilities\":[\"sensor.motion\"]}");
	meta(f, "lamp", "{\"room\":\"Kitchen\",\"capabilities\":[\"light.on_off\"]}");
	o = room(f, "hall");
	assert_float_equal(o.score, 0, 1e-12);
	assert_true(o.last_signal == 0);
	assert_false(o.occupied);

	/* a first report of no motion says nothing */
	state_of(f, "pir", "{\"motion\":false}");
	assert_false(room(f, "hall").occupied);

	at(f, 1000);
	state_of(f, "pir", "{\"motion\":true}");
	o = room(f, "hall");
	assert_float_equal(o.score, 1, 1e-12);
	assert_true(o.last_signal == f->t0 + 1000);
	assert_true(o.occupied);
	/* only that room */
	assert_false(room(f, "kitchen").occupied);
	assert_false(room(f, "attic").occupied);

	/* the sensor clears after its own timeout: the event decays from then */
	at(f, 1000 + 90 * 1000);
	state_of(f, "pir", "{\"motion\":false}");
	at(f, 1000 + 10 * MIN);
	o = room(f, "Hall");
	assert_float_equal(o.score, 0.5, 1e-9);
	assert_true(o.occupied);
	assert_true(o.last_signal == f->t0 + 1000);
	at(f, 1000 + 20 * MIN);
	o = room(f, "hall");
	assert_float_equal(o.score, 0.25, 1e-9);
	assert_false(o.occupied);

	/* a sensor stuck on true is not believed for long either */
	state_of(f, "pir", "{\"motion\":true}");
	at(f, 1000 + 20 * MIN + 60 * MIN);
	o = room(f, "hall");
	assert_true(o.score < 0.02); /* what is left is the event */
	assert_false(o.occupied);
}

static void
test_contact_change_counts(void **state)
{
	struct fx *f = *state;
	struct hearth_occupancy o;

	meta(f, "door", "{\"room\":\"hall\",\"capabilities\":[\"sensor.contact\"]}");
	state_of(f, "door", "{\"contact\":true}"); /* closed, as it was: no signal */
	assert_true(room(f, "hall").last_signal == 0);
	at(f, MIN);
	state_of(f, "door", "{\"contact\":true}"); /* the same again: no signal */
	assert_false(room(f, "hall").occupied);

	at(f, 2 * MIN);
	state_of(f, "door", "{\"contact\":false}"); /* opened: someone is there */
	o = room(f, "hall");
	assert_true(o.occupied);
	assert_true(o.last_signal == f->t0 + 2 * MIN);
	/* an open door is not a presence: it decays like any event */
	at(f, 2 * MIN + 30 * MIN);
	assert_false(room(f, "hall").occupied);
	state_of(f, "door", "{\"contact\":true}"); /* closed again: a new signal */
	assert_true(room(f, "hall").occupied);
}

static void
test_media_on_counts(void **state)
{
	struct fx *f = *state;
	struct hearth_occupancy o;

	meta(f, "tv", "{\"room\":\"living\",\"capabilities\":[\"media.power\"]}");
	/* a lamp's "on" is not media activity */
	meta(f, "lamp", "{\"room\":\"bedroom\",\"capabilities\":[\"light.on_off\"]}");
	state_of(f, "lamp", "{\"on\":true}");
	assert_false(room(f, "bedroom").occupied);

	state_of(f, "tv", "{\"on\":false}");
	assert_false(room(f, "living").occupied);
	at(f, MIN);
	state_of(f, "tv", "{\"on\":true}");
	assert_true(room(f, "living").occupied);
	/* left on: it keeps the room occupied while its state is believed */
	at(f, MIN + 40 * MIN);
	o = room(f, "living");
	assert_float_equal(o.score, HEARTH_FUSION_MEDIA_WEIGHT * exp2(-40.0 / 60.0), 1e-9);
	assert_true(o.occupied);
	/* switched off: what remains is the decaying event */
	at(f, MIN + 45 * MIN);
	state_of(f, "tv", "{\"on\":false}");
	o = room(f, "living");
	assert_float_equal(o.score, exp2(-45.0 / 10.0), 1e-9);
	assert_false(o.occupied);
}

static void
test_occupancy_sensor_offline(void **state)
{
	struct fx *f = *state;
	struct hearth_occupancy o;

	meta(f, "radar", "{\"room\":\"office\",\"capabilities\":[\"sensor.occupancy\"]}");
	state_of(f, "radar", "{\"occupancy\":true}");
	/* 20 minutes later the event has faded, the sensor still says true */
	at(f, 20 * MIN);
	o = room(f, "office");
	assert_float_equal(o.score, exp2(-20.0 / 30.0), 1e-9);
	assert_true(o.occupied);
	assert_true(o.last_signal == f->t0);
	/* offline: what it said is believed a fifth as much; the event stays */
	feed(f, HEARTH_MSG_DEVICE_AVAIL, "radar", NULL, false);
	o = room(f, "office");
	assert_float_equal(o.score, exp2(-2.0), 1e-9);
	assert_false(o.occupied);
	/* back and reporting */
	feed(f, HEARTH_MSG_DEVICE_AVAIL, "radar", NULL, true);
	state_of(f, "radar", "{\"occupancy\":true}");
	assert_true(room(f, "office").occupied);
}

/* ==== Home presence ==== */

static void
test_home_presence(void **state)
{
	struct fx *f = *state;
	struct hearth_occupancy o;

	meta(f, "pir", "{\"room\":\"hall\",\"capabilities\":[\"sensor.motion\"]}");
	meta(f, "phone", "{\"capabilities\":[]}");
	o = hearth_context_home_presence(f->ctx, &f->now);
	assert_false(o.occupied);
	assert_true(o.last_signal == 0);

	/* any room occupied: someone is home, and stays so longer than the room */
	state_of(f, "pir", "{\"motion\":true}");
	state_of(f, "pir", "{\"motion\":false}");
	at(f, 25 * MIN);
	assert_false(room(f, "hall").occupied);
	o = hearth_context_home_presence(f->ctx, &f->now);
	assert_true(o.occupied);
	assert_true(o.last_signal == f->t0);
	at(f, 31 * MIN);
	assert_false(hearth_context_home_presence(f->ctx, &f->now).occupied);

	/* a presence flag holds for hours */
	state_of(f, "phone", "{\"presence\":true}");
	at(f, 31 * MIN + 4 * 60 * MIN);
	o = hearth_context_home_presence(f->ctx, &f->now);
	assert_true(o.occupied);
	assert_true(o.last_signal == f->t0 + 31 * MIN);
	state_of(f, "phone", "{\"presence\":false}");
	assert_false(hearth_context_home_presence(f->ctx, &f->now).occupied);

	/* removing the sensor forgets its room */
	meta(f, "pir", NULL);
	assert_true(room(f, "hall").last_signal == 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_half_life_table),
	        cmocka_unit_test(test_decay),
	        cmocka_unit_test_setup_teardown(test_motion_then_quiet, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_contact_change_counts, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_media_on_counts, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_occupancy_sensor_offline, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_home_presence, setup, teardown),
	};

	hearth_alloc_init();
	hearth_log_set_level(HEARTH_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
