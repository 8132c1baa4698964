/*
 * test_context.c - the context agent as a state machine: device meta in
 * (room, kind, capabilities, name, transport), state merged from partial
 * reports, availability, removal by an empty meta, and refusals (wrong
 * types, too many devices) that leave the registry as it was. Messages go
 * in through hearth_context_handle with a fake clock; what the agent posts
 * is collected in order and checked as the resource agent and the store
 * would see it. Then the read-only queries (rooms, select, optimistic, JSON)
 * and the restore of a stored record after a restart; the index checked
 * against a brute-force scan on 1,000 random devices announced, moved and
 * removed; and the fused values: confidence that decays with age on a fake
 * clock and drops while the device is offline.
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
#include "agents/msg.h"
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/log.h"
#include "recipes/capability.h"
#include "tests/unit/support/sink.h"

/* ==== A test outbox: what the agent posts, in order ==== */

/* ==== JSON helpers ==== */

/* ==== Fixture ==== */

struct fx {
	hearth_context *ctx;
	struct sink sink;
	hearth_outbox out;
	hearth_now now;
	struct {
		char name[96];
		bool value;
	} flags[256]; /* FLAG_CHANGED messages, in order */
	int nflags;
};

static int
fx_setup_n(void **state, int max_devices)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(hearth_context_new(max_devices, &f->ctx), 0);
	f->out = (hearth_outbox){.post = sink_post, .ud = &f->sink};
	f->now = (hearth_now){.mono_ms = 5000, .wall_ms = 1700000000000};
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	return fx_setup_n(state, 64);
}

static int
setup_two(void **state)
{
	return fx_setup_n(state, 2);
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

/* FLAG_CHANGED messages move from the sink to f->flags (the registry tests
 * count what else the agent says; test_flags_follow_occupancy reads these). */
static void
set_flags_aside(struct fx *f)
{
	int k = 0;

	for (int i = 0; i < f->sink.n; i++) {
		hearth_msg *m = &f->sink.msgs[i];

		if (m->type != HEARTH_MSG_FLAG_CHANGED) {
			f->sink.msgs[k++] = *m;
			continue;
		}
		if (f->nflags < (int)(sizeof(f->flags) / sizeof(f->flags[0]))) {
			const cJSON *fl = cJSON_GetObjectItemCaseSensitive(m->body, "flag");

			snprintf(f->flags[f->nflags].name, sizeof(f->flags[0].name), "%s",
			         cJSON_IsString(fl) ? fl->valuestring : "?");
			f->flags[f->nflags++].value = m->flag;
		}
		hearth_msg_clear(m);
	}
	f->sink.n = k;
}

/* The last value a FLAG_CHANGED message gave name: 1, 0, or -1 when none did. */
static int
flag_said(const struct fx *f, const char *name)
{
	for (int i = f->nflags - 1; i >= 0; i--)
		if (!strcmp(f->flags[i].name, name))
			return f->flags[i].value;
	return -1;
}

/* Hand the agent one message; json NULL means no body. */
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
	set_flags_aside(f);
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

static void
avail(struct fx *f, const char *id, bool online)
{
	feed(f, HEARTH_MSG_DEVICE_AVAIL, id, NULL, online);
}

static hearth_capset
caps_of(const char *const *names)
{
	hearth_capset set = 0;

	for (; *names; names++) {
		int i = hearth_capability_find(*names);

		assert_true(i >= 0);
		set |= 1u << i;
	}
	return set;
}

#define LAMP_META                                                                                  \
	"{\"room\":\"Living Room\",\"kind\":\"light\",\"name\":\"Floor lamp\","                    \
	"\"capabilities\":[\"light.on_off\",\"light.brightness\"]}"

/* Exactly one ERROR posted, with this code and topic; returns its detail. */
static const char *
assert_one_error(struct fx *f, const char *code, const char *topic)
{
	hearth_msg *e;

	assert_int_equal(f->sink.n, 1);
	e = sink_nth(&f->sink, HEARTH_MSG_ERROR, 0);
	assert_string_equal(jstr(e->body, "error"), code);
	if (topic)
		assert_string_equal(jstr(e->body, "topic"), topic);
	assert_non_null(jstr(e->body, "detail"));
	return jstr(e->body, "detail");
}

/* ==== Meta ==== */

static void
test_meta_announces_device(void **state)
{
	static const char *const want[] = {"light.on_off", "light.brightness", NULL};
	struct fx *f = *state;
	const struct hearth_device *d;
	hearth_msg *save;

	meta(f, "lamp",
	     "{\"room\":\"Living Room\",\"kind\":\"light\",\"name\":\"Floor lamp\","
	     "\"capabilities\":[\"light.on_off\",\"light.brightness\",\"light.sparkle\"],"
	     "\"firmware\":\"1.2\"}");
	assert_int_equal(hearth_context_count(f->ctx), 1);
	d = hearth_context_device(f->ctx, "lamp");
	assert_non_null(d);
	assert_string_equal(d->room, "Living Room");
	assert_string_equal(d->room_key, "living_room");
	assert_string_equal(d->kind, "light");
	assert_string_equal(d->name, "Floor lamp");
	assert_string_equal(d->transport, "mqtt");
	assert_null(d->uri);
	/* the unknown capability (a newer device) is ignored, not an error */
	assert_int_equal(d->caps, caps_of(want));
	assert_true(d->has_meta);
	assert_false(d->meta_optimistic);
	assert_int_equal(d->online, -1);
	assert_null(d->state);
	assert_true(d->last_seen == f->now.wall_ms);

	/* one DEVICE_SAVE with the record the store keeps, nothing else */
	assert_int_equal(f->sink.n, 1);
	save = sink_nth(&f->sink, HEARTH_MSG_DEVICE_SAVE, 0);
	assert_string_equal(save->id, "lamp");
	assert_json(save->body, "{\"id\":\"lamp\",\"name\":\"Floor lamp\",\"room\":\"Living Room\","
	                        "\"kind\":\"light\",\"capabilities\":[\"light.on_off\","
	                        "\"light.brightness\"],\"transport\":\"mqtt\",\"online\":null,"
	                        "\"last_seen\":1700000000000}");
}

static void
test_meta_reannounce_replaces(void **state)
{
	struct fx *f = *state;
	const struct hearth_device *d;

	meta(f, "lamp", LAMP_META);
	meta(f, "lamp", "{\"room\":\"bedroom\",\"capabilities\":[\"light.on_off\"]}");
	assert_int_equal(hearth_context_count(f->ctx), 1);
	d = hearth_context_device(f->ctx, "lamp");
	assert_string_equal(d->room, "bedroom");
	assert_string_equal(d->room_key, "bedroom");
	/* what the new meta leaves out is gone: meta is the whole description */
	assert_null(d->kind);
	assert_null(d->name);
	assert_int_equal(d->caps, 1u << hearth_capability_find("light.on_off"));
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_SAVE), 2);
}

static void
test_meta_wrong_types_refused_whole(void **state)
{
	static const struct {
		const char *json;
		const char *in_detail;
	} bad[] = {
	        {"{\"room\":5,\"capabilities\":[\"light.on_off\"]}", "room"},
	        {"{\"room\":\"living\",\"kind\":true,\"capabilities\":[]}", "kind"},
	        {"{\"room\":\"living\",\"name\":[],\"capabilities\":[]}", "name"},
	        {"{\"room\":\"\",\"capabilities\":[]}", "room"},
	        {"{\"room\":\"living\"}", "capabilities"},
	        {"{\"room\":\"living\",\"capabilities\":\"light.on_off\"}", "capabilities"},
	        {"{\"room\":\"living\",\"capabilities\":[\"light.on_off\",7]}", "capabilities"},
	        {"{\"room\":\"living\",\"capabilities\":[],\"optimistic\":\"yes\"}", "optimistic"},
	        {"{\"room\":\"living\",\"capabilities\":[],\"transport\":\"zigbee\"}", "transport"},
	        {"[\"not\",\"an\",\"object\"]", "object"},
	};
	struct fx *f = *state;
	const struct hearth_device *d;
	cJSON *before;

	/* A new device with bad meta is not added. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *detail;

		meta(f, "fresh", bad[i].json);
		detail = assert_one_error(f, "bad_request", "device/fresh/meta");
		if (!strstr(detail, bad[i].in_detail))
			fail_msg("case %zu: detail \"%s\" does not name %s", i, detail,
			         bad[i].in_detail);
		assert_int_equal(hearth_context_count(f->ctx), 0);
		sink_reset(&f->sink);
	}

	/* A known device keeps what it had. */
	meta(f, "lamp", LAMP_META);
	state_of(f, "lamp", "{\"on\":true,\"brightness\":40}");
	d = hearth_context_device(f->ctx, "lamp");
	before = hearth_device_json(d);
	sink_reset(&f->sink);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		meta(f, "lamp", bad[i].json);
		assert_one_error(f, "bad_request", "device/lamp/meta");
		sink_reset(&f->sink);
		{
			cJSON *after = hearth_device_json(hearth_context_device(f->ctx, "lamp"));

			assert_true(cJSON_Compare(before, after, true));
			cJSON_Delete(after);
		}
	}
	cJSON_Delete(before);
}

static void
test_meta_coap(void **state)
{
	struct fx *f = *state;
	const struct hearth_device *d;

	meta(f, "blaster", "{\"room\":\"living\",\"transport\":\"coap\",\"capabilities\":[]}");
	assert_one_error(f, "bad_request", "device/blaster/meta");
	sink_reset(&f->sink);
	meta(f, "blaster",
	     "{\"room\":\"living\",\"transport\":\"coap\",\"uri\":\"http://x/"
	     "y\",\"capabilities\":[]}");
	assert_one_error(f, "bad_request", "device/blaster/meta");
	sink_reset(&f->sink);
	assert_int_equal(hearth_context_count(f->ctx), 0);

	meta(f, "blaster",
	     "{\"room\":\"living\",\"transport\":\"coap\",\"uri\":\"coap://[::1]:5683/ir\","
	     "\"capabilities\":[\"media.power\"],\"optimistic\":true}");
	d = hearth_context_device(f->ctx, "blaster");
	assert_non_null(d);
	assert_string_equal(d->transport, "coap");
	assert_string_equal(d->uri, "coap://[::1]:5683/ir");
	assert_true(d->meta_optimistic);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_ERROR), 0);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_SAVE), 1);
}

/* ==== State ==== */

static void
test_state_merges(void **state)
{
	struct fx *f = *state;
	const struct hearth_device *d;
	hearth_msg *ch;

	meta(f, "lamp", LAMP_META);
	sink_reset(&f->sink);
	state_of(f, "lamp", "{\"on\":true,\"brightness\":40}");
	d = hearth_context_device(f->ctx, "lamp");
	assert_json(d->state, "{\"on\":true,\"brightness\":40}");
	assert_int_equal(d->online, 1); /* a device that reports is alive */
	/* the resource agent hears of it; the store keeps the last known state */
	assert_int_equal(f->sink.n, 2);
	ch = sink_nth(&f->sink, HEARTH_MSG_DEVICE_CHANGED, 0);
	assert_string_equal(ch->id, "lamp");
	assert_true(ch->flag);
	assert_json(cJSON_GetObjectItemCaseSensitive(
	                    sink_nth(&f->sink, HEARTH_MSG_DEVICE_SAVE, 0)->body, "state"),
	            "{\"on\":true,\"brightness\":40}");
	sink_reset(&f->sink);

	f->now.wall_ms += 1000;
	state_of(f, "lamp", "{\"brightness\":20}");
	assert_json(d->state, "{\"on\":true,\"brightness\":20}");
	state_of(f, "lamp", "{\"linkquality\":87,\"on\":false}");
	assert_json(d->state, "{\"on\":false,\"brightness\":20,\"linkquality\":87}");
	assert_true(d->last_seen == f->now.wall_ms);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_CHANGED), 2);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_ERROR), 0);
	/* a device without meta is not saved, but the resource agent hears of it */
	sink_reset(&f->sink);
	state_of(f, "stray", "{\"on\":true}");
	assert_int_equal(f->sink.n, 1);
	assert_string_equal(sink_nth(&f->sink, HEARTH_MSG_DEVICE_CHANGED, 0)->id, "stray");

	/* a cleared retained state (no body) says nothing and changes nothing */
	sink_reset(&f->sink);
	state_of(f, "lamp", NULL);
	assert_int_equal(f->sink.n, 0);
	assert_json(d->state, "{\"on\":false,\"brightness\":20,\"linkquality\":87}");
}

static void
test_state_type_errors_refused_whole(void **state)
{
	static const char *const bad[] = {
	        "{\"brightness\":10,\"on\":\"yes\"}",
	        "{\"brightness\":150}",
	        "{\"on\":true,\"brightness\":\"dim\"}",
	        "{\"position\":-1}",
	        "[1,2]",
	        "\"on\"",
	};
	struct fx *f = *state;
	const struct hearth_device *d;

	meta(f, "lamp", LAMP_META);
	state_of(f, "lamp", "{\"on\":true,\"brightness\":40}");
	d = hearth_context_device(f->ctx, "lamp");
	sink_reset(&f->sink);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		state_of(f, "lamp", bad[i]);
		assert_one_error(f, "bad_request", "device/lamp/state");
		/* nothing merged, not even the good half, and no DEVICE_CHANGED */
		assert_json(d->state, "{\"on\":true,\"brightness\":40}");
		sink_reset(&f->sink);
	}
	/* a bad first report does not create a device either */
	state_of(f, "newcomer", "{\"on\":1}");
	assert_one_error(f, "bad_request", "device/newcomer/state");
	assert_null(hearth_context_device(f->ctx, "newcomer"));
}

/* ==== Availability ==== */

static void
test_availability_posts_on_change_only(void **state)
{
	struct fx *f = *state;
	const struct hearth_device *d;

	meta(f, "lamp", LAMP_META);
	sink_reset(&f->sink);
	d = hearth_context_device(f->ctx, "lamp");

	avail(f, "lamp", true); /* unknown -> online is a change */
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_CHANGED), 1);
	assert_true(sink_nth(&f->sink, HEARTH_MSG_DEVICE_CHANGED, 0)->flag);
	assert_int_equal(d->online, 1);
	sink_reset(&f->sink);

	avail(f, "lamp", true); /* no change: nothing at all */
	assert_int_equal(f->sink.n, 0);

	avail(f, "lamp", false);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_CHANGED), 1);
	assert_string_equal(sink_nth(&f->sink, HEARTH_MSG_DEVICE_CHANGED, 0)->id, "lamp");
	assert_false(sink_nth(&f->sink, HEARTH_MSG_DEVICE_CHANGED, 0)->flag);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_ERROR), 0);
	assert_int_equal(d->online, 0);
	assert_int_equal(hearth_context_online_count(f->ctx), 0);
	sink_reset(&f->sink);

	avail(f, "lamp", false);
	assert_int_equal(f->sink.n, 0);

	/* a state report does not bring an offline device back: only availability does */
	state_of(f, "lamp", "{\"on\":true}");
	assert_int_equal(d->online, 0);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_CHANGED), 1);
	assert_false(sink_nth(&f->sink, HEARTH_MSG_DEVICE_CHANGED, 0)->flag);
	sink_reset(&f->sink);

	avail(f, "lamp", true);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_CHANGED), 1);
	assert_true(sink_nth(&f->sink, HEARTH_MSG_DEVICE_CHANGED, 0)->flag);
	assert_int_equal(hearth_context_online_count(f->ctx), 1);
}

/* ==== Removal ==== */

static void
test_empty_meta_removes(void **state)
{
	struct fx *f = *state;
	hearth_msg *save;

	meta(f, "lamp", LAMP_META);
	meta(f, "tv", "{\"room\":\"living\",\"capabilities\":[\"media.power\"]}");
	meta(f, "blind", "{\"room\":\"living\",\"capabilities\":[\"cover.position\"]}");
	state_of(f, "tv", "{\"on\":false}");
	sink_reset(&f->sink);

	meta(f, "tv", NULL);
	assert_int_equal(hearth_context_count(f->ctx), 2);
	assert_null(hearth_context_device(f->ctx, "tv"));
	assert_int_equal(f->sink.n, 1);
	save = sink_nth(&f->sink, HEARTH_MSG_DEVICE_SAVE, 0);
	assert_string_equal(save->id, "tv");
	assert_null(save->body);
	/* the others keep their order */
	assert_string_equal(hearth_context_at(f->ctx, 0)->id, "lamp");
	assert_string_equal(hearth_context_at(f->ctx, 1)->id, "blind");
	assert_null(hearth_context_at(f->ctx, 2));
	sink_reset(&f->sink);

	/* removing what is not there says nothing */
	meta(f, "tv", NULL);
	meta(f, "ghost", NULL);
	assert_int_equal(f->sink.n, 0);
	assert_int_equal(hearth_context_count(f->ctx), 2);
}

/* ==== Rooms and selection ==== */

static void
test_room_keys(void **state)
{
	static const char *const same[] = {"Living Room", "living_room", "living-room",
	                                   "LIVING ROOM", "Living-Room"};
	struct fx *f = *state;
	char key[72];
	const struct hearth_device *out[4];

	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		hearth_room_key(same[i], key, sizeof(key));
		assert_string_equal(key, "living_room");
	}
	hearth_room_key("Bedroom", key, 4); /* truncated, still terminated */
	assert_string_equal(key, "bed");

	meta(f, "lamp", LAMP_META);
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		assert_true(hearth_context_room_known(f->ctx, same[i]));
		assert_int_equal(hearth_context_select(f->ctx, same[i],
		                                       hearth_capability_find("light.on_off"), NULL,
		                                       out, 4),
		                 1);
		assert_ptr_equal(out[0], hearth_context_device(f->ctx, "lamp"));
	}
	assert_false(hearth_context_room_known(f->ctx, "living"));
	assert_false(hearth_context_room_known(f->ctx, "livingroom"));
}

static void
test_select(void **state)
{
	struct fx *f = *state;
	const struct hearth_device *out[8];
	int on_off = hearth_capability_find("light.on_off");
	int power = hearth_capability_find("media.power");
	int bright = hearth_capability_find("light.brightness");

	meta(f, "lamp", LAMP_META);
	meta(f, "bulb",
	     "{\"room\":\"bedroom\",\"kind\":\"light\",\"capabilities\":[\"light.on_off\"]}");
	meta(f, "tv",
	     "{\"room\":\"living room\",\"kind\":\"tv\",\"capabilities\":[\"media.power\"]}");
	meta(f, "strip",
	     "{\"room\":\"living_room\",\"kind\":\"ledstrip\","
	     "\"capabilities\":[\"light.on_off\"]}");
	meta(f, "hall", "{\"kind\":\"light\",\"capabilities\":[\"light.on_off\"]}");
	/* a device that only reported state (no meta) is never selected */
	state_of(f, "ghost", "{\"on\":true}");
	assert_int_equal(hearth_context_count(f->ctx), 6);

	/* by room and capability, in announcement order */
	assert_int_equal(hearth_context_select(f->ctx, "Living Room", on_off, NULL, out, 8), 2);
	assert_string_equal(out[0]->id, "lamp");
	assert_string_equal(out[1]->id, "strip");
	/* by kind */
	assert_int_equal(hearth_context_select(f->ctx, "living-room", on_off, "light", out, 8), 1);
	assert_string_equal(out[0]->id, "lamp");
	assert_int_equal(hearth_context_select(f->ctx, "living room", power, "tv", out, 8), 1);
	assert_string_equal(out[0]->id, "tv");
	assert_int_equal(hearth_context_select(f->ctx, "living room", power, "light", out, 8), 0);
	/* anywhere */
	assert_int_equal(hearth_context_select(f->ctx, NULL, on_off, NULL, out, 8), 4);
	assert_string_equal(out[0]->id, "lamp");
	assert_string_equal(out[1]->id, "bulb");
	assert_string_equal(out[2]->id, "strip");
	assert_string_equal(out[3]->id, "hall");
	assert_int_equal(hearth_context_select(f->ctx, NULL, bright, NULL, out, 8), 1);
	/* more matches than room: the count is the total, only max are filled */
	out[1] = NULL;
	assert_int_equal(hearth_context_select(f->ctx, NULL, on_off, "light", out, 1), 3);
	assert_string_equal(out[0]->id, "lamp");
	assert_null(out[1]);
	/* a room nobody is in */
	assert_int_equal(hearth_context_select(f->ctx, "attic", on_off, NULL, out, 8), 0);
}

/* ==== Limits ==== */

static void
test_too_many_devices(void **state)
{
	struct fx *f = *state;
	const char *detail;

	meta(f, "a", LAMP_META);
	meta(f, "b", LAMP_META);
	sink_reset(&f->sink);

	meta(f, "c", LAMP_META);
	detail = assert_one_error(f, "too_many_devices", "device/c/meta");
	assert_non_null(strstr(detail, "c ignored"));
	assert_int_equal(hearth_context_count(f->ctx), 2);
	assert_null(hearth_context_device(f->ctx, "c"));
	sink_reset(&f->sink);

	state_of(f, "c", "{\"on\":true}");
	assert_one_error(f, "too_many_devices", "device/c/state");
	sink_reset(&f->sink);
	avail(f, "c", true);
	assert_one_error(f, "too_many_devices", "device/c/availability");
	sink_reset(&f->sink);
	assert_int_equal(hearth_context_count(f->ctx), 2);

	/* the known ones still update, and removing one makes room */
	state_of(f, "a", "{\"on\":true}");
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_ERROR), 0);
	meta(f, "b", NULL);
	meta(f, "c", LAMP_META);
	assert_non_null(hearth_context_device(f->ctx, "c"));
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_ERROR), 0);
}

/* ==== Optimistic and JSON ==== */

static void
test_optimistic(void **state)
{
	struct fx *f = *state;

	meta(f, "lamp", LAMP_META);
	meta(f, "ir",
	     "{\"room\":\"living\",\"capabilities\":[\"media.power\"],\"optimistic\":true}");
	/* never reported: optimistic */
	assert_true(hearth_device_optimistic(hearth_context_device(f->ctx, "lamp")));
	state_of(f, "lamp", "{\"on\":false}");
	assert_false(hearth_device_optimistic(hearth_context_device(f->ctx, "lamp")));
	/* meta says so: optimistic even after it reported */
	state_of(f, "ir", "{\"on\":false}");
	assert_true(hearth_device_optimistic(hearth_context_device(f->ctx, "ir")));
}

static void
test_device_json(void **state)
{
	struct fx *f = *state;
	cJSON *j;

	meta(f, "ir",
	     "{\"name\":\"IR blaster\",\"room\":\"Living Room\",\"kind\":\"remote\","
	     "\"transport\":\"coap\",\"uri\":\"coap://10.0.0.7/ir\",\"optimistic\":true,"
	     "\"capabilities\":[\"media.volume\",\"media.power\"]}");
	f->now.wall_ms += 250;
	state_of(f, "ir", "{\"on\":true,\"volume\":12}");
	avail(f, "ir", false);
	j = hearth_device_json(hearth_context_device(f->ctx, "ir"));
	/* capabilities come in table order, whatever order the meta gave; the
	 * freshness of each property says when it was reported and that it was
	 * before the device went offline (confidence 0.2 as of that report) */
	assert_json(j, "{\"id\":\"ir\",\"name\":\"IR blaster\",\"room\":\"Living Room\","
	               "\"kind\":\"remote\",\"capabilities\":[\"media.power\",\"media.volume\"],"
	               "\"transport\":\"coap\",\"uri\":\"coap://10.0.0.7/ir\",\"optimistic\":true,"
	               "\"online\":false,\"state\":{\"on\":true,\"volume\":12},"
	               "\"freshness\":{\"on\":{\"ts\":1700000000250,\"confidence\":0.2,"
	               "\"half_life_ms\":3600000},\"volume\":{\"ts\":1700000000250,"
	               "\"confidence\":0.2,\"half_life_ms\":3600000}},"
	               "\"last_seen\":1700000000250}");
	cJSON_Delete(j);

	/* a bare device: only what is known */
	avail(f, "plug", true);
	j = hearth_device_json(hearth_context_device(f->ctx, "plug"));
	assert_json(j, "{\"id\":\"plug\",\"capabilities\":[],\"transport\":\"mqtt\","
	               "\"online\":true,\"last_seen\":1700000000250}");
	assert_false(hearth_context_device(f->ctx, "plug")->has_meta);
	cJSON_Delete(j);
}

static void
test_restore(void **state)
{
	struct fx *f = *state;
	hearth_context *fresh;
	const struct hearth_device *d;
	cJSON *rec, *bad;

	meta(f, "lamp", LAMP_META);
	state_of(f, "lamp", "{\"on\":true,\"brightness\":40}");
	avail(f, "lamp", false);
	rec = hearth_device_json(hearth_context_device(f->ctx, "lamp"));

	/* a restart: the announcement and the last known state come back,
	 * availability is unknown until the device speaks */
	assert_int_equal(hearth_context_new(1, &fresh), 0);
	assert_int_equal(hearth_context_restore(fresh, rec), 0);
	d = hearth_context_device(fresh, "lamp");
	assert_non_null(d);
	assert_true(d->has_meta);
	assert_string_equal(d->room, "Living Room");
	assert_string_equal(d->room_key, "living_room");
	assert_string_equal(d->name, "Floor lamp");
	assert_int_equal(d->caps, hearth_context_device(f->ctx, "lamp")->caps);
	assert_json(d->state, "{\"on\":true,\"brightness\":40}");
	assert_int_equal(d->online, -1);
	assert_false(hearth_device_optimistic(d));
	/* the same record again changes nothing; another device does not fit */
	assert_int_equal(hearth_context_restore(fresh, rec), 0);
	assert_int_equal(hearth_context_count(fresh), 1);
	cJSON_ReplaceItemInObjectCaseSensitive(rec, "id", cJSON_CreateString("lamp2"));
	assert_int_equal(hearth_context_restore(fresh, rec), HEARTH_E_FULL);
	assert_int_equal(hearth_context_count(fresh), 1);

	/* records that do not decode are refused and add nothing */
	bad = cJSON_Parse("{\"id\":\"bad id\",\"capabilities\":[]}");
	assert_int_equal(hearth_context_restore(f->ctx, bad), HEARTH_E_INVALID);
	cJSON_Delete(bad);
	bad = cJSON_Parse("{\"capabilities\":[]}");
	assert_int_equal(hearth_context_restore(f->ctx, bad), HEARTH_E_INVALID);
	cJSON_Delete(bad);
	bad = cJSON_Parse("{\"id\":\"x\",\"room\":5,\"capabilities\":[]}");
	assert_true(hearth_context_restore(f->ctx, bad) < 0);
	cJSON_Delete(bad);
	assert_int_equal(hearth_context_count(f->ctx), 1);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_ERROR), 0);

	cJSON_Delete(rec);
	hearth_context_free(fresh);
}

/* ==== The index: 1,000 devices against a brute-force reference ==== */

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static int
setup_big(void **state)
{
	return fx_setup_n(state, 2000);
}

static const char *const room_names[] = {"Living Room", "living_room", "Kitchen", "bedroom",
                                         "Bed-Room",    "Hall",        "office",  "Kids room",
                                         "garage",      "attic",       NULL};
static const char *const kinds[] = {"light", "sensor", "tv", "cover", NULL};

/* Announce id with a random room (or none), kind (or none) and capabilities. */
static void
random_meta(struct fx *f, const char *id)
{
	char json[512], caps[384] = "";
	const char *room = room_names[rnd(11)], *kind = kinds[rnd(5)];
	int ncap = hearth_capability_count();

	for (int k = 0; k < ncap; k++) {
		if (rnd(4))
			continue;
		snprintf(caps + strlen(caps), sizeof(caps) - strlen(caps), "%s\"%s\"",
		         caps[0] ? "," : "", hearth_capability_at(k)->name);
	}
	snprintf(json, sizeof(json), "{%s%s%s%s%s%s\"capabilities\":[%s]}",
	         room ? "\"room\":\"" : "", room ? room : "", room ? "\"," : "",
	         kind ? "\"kind\":\"" : "", kind ? kind : "", kind ? "\"," : "", caps);
	meta(f, id, json);
}

/* hearth_context_select and room_known agree with a scan of the listing. */
static void
check_against_scan(struct fx *f)
{
	static const struct hearth_device *got[2000], *want[2000];
	const char *const queries[] = {"LIVING ROOM", "kitchen", "Bedroom", "hall",   "Office",
	                               "kids_room",   "Garage",  "ATTIC",   "cellar", NULL};
	const char *const qkinds[] = {NULL, "light", "sensor", "lamp"};
	int ncap = hearth_capability_count();

	for (size_t qi = 0; qi < sizeof(queries) / sizeof(queries[0]); qi++) {
		const char *room = queries[qi];
		char key[72];
		bool known = false;

		if (room)
			hearth_room_key(room, key, sizeof(key));
		for (int i = 0; i < hearth_context_count(f->ctx); i++) {
			const struct hearth_device *d = hearth_context_at(f->ctx, i);

			known = known || (room && d->room_key && !strcmp(d->room_key, key));
		}
		if (room)
			assert_int_equal(hearth_context_room_known(f->ctx, room), known);
		for (int cap = 0; cap < ncap; cap++) {
			for (size_t ki = 0; ki < 4; ki++) {
				const char *kind = qkinds[ki];
				int n = 0, m;

				for (int i = 0; i < hearth_context_count(f->ctx); i++) {
					const struct hearth_device *d =
					        hearth_context_at(f->ctx, i);

					if (!d->has_meta || !(d->caps & (1u << cap)))
						continue;
					if (room && (!d->room_key || strcmp(d->room_key, key)))
						continue;
					if (kind && (!d->kind || strcmp(d->kind, kind)))
						continue;
					want[n++] = d;
				}
				m = hearth_context_select(f->ctx, room, cap, kind, got, 2000);
				assert_int_equal(m, n);
				for (int i = 0; i < n; i++)
					assert_ptr_equal(got[i], want[i]);
				/* a short buffer: the same total, the first max filled */
				if (n > 3) {
					assert_int_equal(hearth_context_select(f->ctx, room, cap,
					                                       kind, got, 3),
					                 n);
					assert_ptr_equal(got[2], want[2]);
				}
			}
		}
	}
	assert_int_equal(hearth_context_select(f->ctx, NULL, -1, NULL, got, 4), 0);
	assert_int_equal(hearth_context_select(f->ctx, NULL, 40, NULL, got, 4), 0);
}

static void
test_index_thousand_devices(void **state)
{
	struct fx *f = *state;
	static bool present[1000];
	char id[32];
	int n = 0;

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 1000; i++) {
			snprintf(id, sizeof(id), "dev-%03d", i);
			if (round == 0 || (round == 1 && i % 5 == 0) ||
			    (round == 2 && !present[i])) {
				/* new, re-announced (new room, kind, capabilities) or back */
				n += !present[i];
				present[i] = true;
				random_meta(f, id);
			}
			if (round == 0 && i % 3 == 0)
				state_of(f, id, "{\"on\":true}");
		}
		assert_int_equal(hearth_context_count(f->ctx), n);
		check_against_scan(f);
		/* remove every 7th, from the middle of the order */
		for (int i = 3 + round; i < 1000; i += 7) {
			snprintf(id, sizeof(id), "dev-%03d", i);
			if (present[i]) {
				meta(f, id, NULL);
				present[i] = false;
				n--;
			}
		}
		/* a device that only ever reported state is listed, never selected */
		snprintf(id, sizeof(id), "stray-%d", round);
		state_of(f, id, "{\"on\":true}");
		n++;
		assert_int_equal(hearth_context_count(f->ctx), n);
		for (int i = 0; i < 1000; i++) {
			const struct hearth_device *d;

			snprintf(id, sizeof(id), "dev-%03d", i);
			d = hearth_context_device(f->ctx, id);
			if (!present[i]) {
				assert_null(d);
				continue;
			}
			assert_non_null(d);
			assert_string_equal(d->id, id);
		}
		assert_null(hearth_context_device(f->ctx, "dev-1000"));
		assert_null(hearth_context_device(f->ctx, ""));
		check_against_scan(f);
		sink_reset(&f->sink);
	}
	/* listing order: creation order; a re-added device goes last */
	for (int i = 1; i < hearth_context_count(f->ctx); i++) {
		const struct hearth_device *a = hearth_context_at(f->ctx, i - 1);
		const struct hearth_device *b = hearth_context_at(f->ctx, i);

		assert_ptr_equal(hearth_context_device(f->ctx, b->id), b);
		assert_ptr_not_equal(a, b);
	}
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_ERROR), 0);
}

static void
test_index_room_moves(void **state)
{
	struct fx *f = *state;
	const struct hearth_device *out[4];
	int on_off = hearth_capability_find("light.on_off");

	meta(f, "a", "{\"room\":\"hall\",\"capabilities\":[\"light.on_off\"]}");
	meta(f, "b", "{\"room\":\"hall\",\"capabilities\":[\"light.on_off\"]}");
	/* a moves out: the hall keeps b, the kitchen gets a */
	meta(f, "a", "{\"room\":\"Kitchen\",\"capabilities\":[\"light.on_off\"]}");
	assert_int_equal(hearth_context_select(f->ctx, "hall", on_off, NULL, out, 4), 1);
	assert_string_equal(out[0]->id, "b");
	assert_int_equal(hearth_context_select(f->ctx, "kitchen", on_off, NULL, out, 4), 1);
	/* b moves to the kitchen: still after a there (announcement order) */
	meta(f, "b", "{\"room\":\"kitchen\",\"capabilities\":[\"light.on_off\"]}");
	assert_false(hearth_context_room_known(f->ctx, "hall"));
	assert_int_equal(hearth_context_select(f->ctx, "hall", on_off, NULL, out, 4), 0);
	assert_int_equal(hearth_context_select(f->ctx, "kitchen", on_off, NULL, out, 4), 2);
	assert_string_equal(out[0]->id, "a");
	assert_string_equal(out[1]->id, "b");
	/* losing the room or the capability takes it out of the lists */
	meta(f, "a", "{\"capabilities\":[\"light.on_off\"]}");
	meta(f, "b", "{\"room\":\"kitchen\",\"capabilities\":[]}");
	assert_true(hearth_context_room_known(f->ctx, "kitchen")); /* b is still there */
	assert_int_equal(hearth_context_select(f->ctx, "kitchen", on_off, NULL, out, 4), 0);
	assert_int_equal(hearth_context_select(f->ctx, NULL, on_off, NULL, out, 4), 1);
	assert_string_equal(out[0]->id, "a");
}

/* ==== Fusion: freshness and confidence ==== */

static void
test_value_confidence_decays(void **state)
{
	struct fx *f = *state;
	struct hearth_value v;
	hearth_now later;
	int64_t t0 = f->now.wall_ms;

	meta(f, "lamp", LAMP_META);
	meta(f, "pir", "{\"room\":\"hall\",\"capabilities\":[\"sensor.motion\"]}");
	state_of(f, "lamp", "{\"on\":true,\"brightness\":40}");
	state_of(f, "pir", "{\"motion\":true}");

	assert_int_equal(hearth_context_value(f->ctx, "lamp", "on", &f->now, &v), 0);
	assert_true(cJSON_IsTrue(v.value));
	assert_true(v.ts == t0);
	assert_true(v.age_ms == 0);
	assert_float_equal(v.confidence, 1.0, 1e-9);
	assert_false(v.stale);

	/* an hour later the lamp's state is half believed; the motion is gone */
	later = f->now;
	later.wall_ms += 3600 * 1000;
	assert_int_equal(hearth_context_value(f->ctx, "lamp", "on", &later, &v), 0);
	assert_true(v.age_ms == 3600 * 1000);
	assert_float_equal(v.confidence, 0.5, 1e-9);
	later.wall_ms = t0 + 2 * 60 * 1000;
	assert_int_equal(hearth_context_value(f->ctx, "pir", "motion", &later, &v), 0);
	assert_float_equal(v.confidence, 0.5, 1e-9);
	later.wall_ms = t0 + 20 * 60 * 1000;
	assert_int_equal(hearth_context_value(f->ctx, "pir", "motion", &later, &v), 0);
	assert_true(v.confidence < 0.001);
	/* a clock that went back counts as age 0 */
	later.wall_ms = t0 - 5000;
	assert_int_equal(hearth_context_value(f->ctx, "lamp", "on", &later, &v), 0);
	assert_true(v.age_ms == 0);
	assert_float_equal(v.confidence, 1.0, 1e-9);

	/* a new report of one property refreshes that one only */
	f->now.wall_ms = t0 + 3600 * 1000;
	state_of(f, "lamp", "{\"brightness\":20}");
	assert_int_equal(hearth_context_value(f->ctx, "lamp", "brightness", &f->now, &v), 0);
	assert_float_equal(v.confidence, 1.0, 1e-9);
	assert_true(v.value->valuedouble == 20);
	assert_int_equal(hearth_context_value(f->ctx, "lamp", "on", &f->now, &v), 0);
	assert_float_equal(v.confidence, 0.5, 1e-9);

	/* what is not known */
	assert_int_equal(hearth_context_value(f->ctx, "lamp", "volume", &f->now, &v),
	                 HEARTH_E_NOT_FOUND);
	assert_null(v.value);
	assert_int_equal(hearth_context_value(f->ctx, "ghost", "on", &f->now, &v),
	                 HEARTH_E_NOT_FOUND);
	meta(f, "quiet", LAMP_META);
	assert_int_equal(hearth_context_value(f->ctx, "quiet", "on", &f->now, &v),
	                 HEARTH_E_NOT_FOUND);
}

static void
test_value_offline_drops_confidence(void **state)
{
	struct fx *f = *state;
	struct hearth_value v;
	hearth_msg *save;

	meta(f, "lamp", LAMP_META);
	state_of(f, "lamp", "{\"on\":true,\"brightness\":40}");
	avail(f, "lamp", true);
	f->now.wall_ms += 1000;
	sink_reset(&f->sink);

	avail(f, "lamp", false);
	assert_int_equal(hearth_context_value(f->ctx, "lamp", "on", &f->now, &v), 0);
	assert_true(v.stale);
	assert_float_equal(v.confidence, 0.2 * exp2(-1000.0 / 3600000.0), 1e-9);
	/* the stored record says so too, and stays the same while time passes */
	save = sink_nth(&f->sink, HEARTH_MSG_DEVICE_SAVE, 0);
	assert_json(cJSON_GetObjectItemCaseSensitive(save->body, "freshness"),
	            "{\"on\":{\"ts\":1700000000000,\"confidence\":0.2,\"half_life_ms\":3600000},"
	            "\"brightness\":{\"ts\":1700000000000,\"confidence\":0.2,"
	            "\"half_life_ms\":3600000}}");
	/* the planner still never binds it (online is 0) */
	assert_int_equal(hearth_context_device(f->ctx, "lamp")->online, 0);

	/* a report while offline: that property is believed again */
	f->now.wall_ms += 1000;
	state_of(f, "lamp", "{\"brightness\":10}");
	assert_int_equal(hearth_context_value(f->ctx, "lamp", "brightness", &f->now, &v), 0);
	assert_false(v.stale);
	assert_float_equal(v.confidence, 1.0, 1e-9);
	assert_int_equal(hearth_context_value(f->ctx, "lamp", "on", &f->now, &v), 0);
	assert_true(v.stale);
	assert_true(v.confidence < 0.21);

	/* back online: everything recovers, minus its age */
	avail(f, "lamp", true);
	assert_int_equal(hearth_context_value(f->ctx, "lamp", "on", &f->now, &v), 0);
	assert_false(v.stale);
	assert_float_equal(v.confidence, exp2(-2000.0 / 3600000.0), 1e-9);
}

static void
test_restore_freshness(void **state)
{
	struct fx *f = *state;
	hearth_context *fresh;
	struct hearth_value v;
	cJSON *rec;
	int64_t t0 = f->now.wall_ms;

	meta(f, "lamp", LAMP_META);
	state_of(f, "lamp", "{\"on\":true}");
	f->now.wall_ms += 60000;
	state_of(f, "lamp", "{\"brightness\":40}");
	rec = hearth_device_json(hearth_context_device(f->ctx, "lamp"));
	assert_int_equal(hearth_context_new(4, &fresh), 0);
	assert_int_equal(hearth_context_restore(fresh, rec), 0);
	assert_int_equal(hearth_context_value(fresh, "lamp", "on", &f->now, &v), 0);
	assert_true(v.ts == t0);
	assert_true(v.age_ms == 60000);
	assert_int_equal(hearth_context_value(fresh, "lamp", "brightness", &f->now, &v), 0);
	assert_true(v.ts == t0 + 60000);
	hearth_context_free(fresh);

	/* an older record without freshness: its last_seen stands for every value */
	cJSON_DeleteItemFromObjectCaseSensitive(rec, "freshness");
	assert_int_equal(hearth_context_new(4, &fresh), 0);
	assert_int_equal(hearth_context_restore(fresh, rec), 0);
	assert_int_equal(hearth_context_value(fresh, "lamp", "on", &f->now, &v), 0);
	assert_true(v.ts == t0 + 60000);
	hearth_context_free(fresh);
	cJSON_Delete(rec);
}

static void
test_other_messages_ignored(void **state)
{
	struct fx *f = *state;

	meta(f, "lamp", LAMP_META);
	sink_reset(&f->sink);
	feed(f, HEARTH_MSG_INTENT, "i-1", "{\"intent\":\"scene.movie_night\"}", false);
	feed(f, HEARTH_MSG_DEVICE_CHANGED, "lamp", NULL, false);
	assert_int_equal(f->sink.n, 0);
	assert_int_equal(hearth_context_count(f->ctx), 1);
}

/* Derived flags follow the home: motion in a room makes it occupied and
 * someone home; time windows follow the local time the agent is handed. */
static void
test_flags_follow_occupancy(void **state)
{
	struct fx *f = *state;

	f->now.local_minute = 12 * 60; /* noon */
	meta(f, "pir",
	     "{\"room\":\"Hall\",\"kind\":\"sensor\",\"capabilities\":[\"sensor.motion\"]}");
	assert_int_equal(flag_said(f, "night"), 0);
	assert_int_equal(flag_said(f, "someone_home"), 0);
	assert_int_equal(flag_said(f, "away"), 1);
	state_of(f, "pir", "{\"motion\":true}");
	assert_int_equal(flag_said(f, "room.hall.occupied"), 1);
	assert_int_equal(flag_said(f, "someone_home"), 1);
	assert_int_equal(flag_said(f, "away"), 0);
	assert_int_equal(hearth_context_flag(f->ctx, "someone_home"), 1);

	/* an hour of quiet later, at 23:00: the hall is empty, and it is night */
	f->now.wall_ms += 3600 * 1000;
	f->now.mono_ms += 3600 * 1000;
	f->now.local_minute = 23 * 60;
	state_of(f, "pir", "{\"motion\":false}");
	hearth_context_tick(f->ctx, &f->now, &f->out);
	set_flags_aside(f);
	assert_int_equal(flag_said(f, "room.hall.occupied"), 0);
	assert_int_equal(flag_said(f, "night"), 1);
	assert_int_equal(flag_said(f, "away"), 1);

	/* health shows the flags, the privacy counters and the drift sentinel */
	cJSON *h = hearth_context_health_json(f->ctx);

	assert_non_null(cJSON_GetObjectItemCaseSensitive(h, "flags"));
	assert_non_null(cJSON_GetObjectItemCaseSensitive(h, "privacy"));
	assert_non_null(cJSON_GetObjectItemCaseSensitive(h, "drift"));
	cJSON_Delete(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_flags_follow_occupancy, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_meta_announces_device, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_meta_reannounce_replaces, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_meta_wrong_types_refused_whole, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_meta_coap, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_state_merges, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_state_type_errors_refused_whole, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_availability_posts_on_change_only, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_empty_meta_removes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_room_keys, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_select, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_too_many_devices, setup_two, teardown),
	        cmocka_unit_test_setup_teardown(test_optimistic, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_device_json, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_restore, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_other_messages_ignored, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_index_thousand_devices, setup_big, teardown),
	        cmocka_unit_test_setup_teardown(test_index_room_moves, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_value_confidence_decays, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_value_offline_drops_confidence, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_restore_freshness, setup, teardown),
	};

	hearth_alloc_init();
	hearth_log_set_level(HEARTH_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
