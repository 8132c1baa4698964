/*
 * test_ha.c - the Home Assistant MQTT discovery binding as a state machine,
 * fed with discovery configs in Home Assistant's documented format
 * (tests/fixtures/ha: a Tasmota-style dimmer with "~" and on_command_type
 * brightness, a plain light with two command topics, an ESPHome JSON-schema
 * light, a Shelly cover with set_pos_t, a switch, a lock with an
 * availability list, a thermostat, a motion and a door binary_sensor, a
 * temperature sensor and its battery sibling, and one config Zigbee2MQTT
 * itself publishes), and with what those devices put on their state topics.
 * It checks the announcements (ids, rooms from dev.sa or the device file,
 * capabilities), the subscriptions asked for, state in hearth terms, the
 * command messages (one per topic), exact read-back of commanded values,
 * the common value templates, removal and refusals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/msg.h"
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/json.h"
#include "recipes/capability.h"
#include "runtime/ha.h"
#include "tests/unit/support/sink.h"

#define FIX HEARTH_SOURCE_DIR "/tests/fixtures/ha/"

#define READING "ha.A1B2C3_LI_1"
#define DESK    "ha.desk-lamp-7f3e"
#define CEILING "ha.esp-living-ceiling"
#define SHUTTER "ha.shelly25-C45BBE-cover"
#define KETTLE  "ha.kettle-plug-01"
#define LOCK    "ha.lock-frontdoor-3a4b5c"
#define TRV     "ha.trv-office-1"
#define MOTION  "ha.pir-hallway-motion"
#define DOOR    "ha.back-door-contact"
#define TEMP    "ha.bme280-bedroom-temperature"

struct fx {
	hearth_ha *ha;
	struct sink sink;
	hearth_outbox out;
	cJSON *disc, *states;
	cJSON *subs;  /* topics the binding asked to subscribe */
	cJSON *metas; /* id -> last meta */
};

static cJSON *
load(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;
	cJSON *j;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	j = cJSON_Parse(buf);
	free(buf);
	assert_non_null(j);
	return j;
}

static const char *
room_of(void *ud, const char *id)
{
	(void)ud;
	return !strcmp(id, LOCK) ? "hall" : NULL;
}

static void
on_subscribe(void *ud, const char *topic)
{
	struct fx *f = ud;

	cJSON_AddItemToArray(f->subs, cJSON_CreateString(topic));
}

static void
make(struct fx *f, bool skip_z2m)
{
	struct hearth_ha_opts o = {.prefix = "homeassistant",
	                           .max_payload = 4096,
	                           .room = room_of,
	                           .subscribe = on_subscribe,
	                           .sub_ud = f,
	                           .skip_z2m = skip_z2m};

	assert_int_equal(hearth_ha_new(&o, &f->out, &f->ha), 0);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->out = (hearth_outbox){.post = sink_post, .ud = &f->sink};
	f->disc = load(FIX "discovery.json");
	f->states = load(FIX "states.json");
	f->subs = cJSON_CreateArray();
	f->metas = cJSON_CreateObject();
	make(f, true);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	hearth_ha_free(f->ha);
	sink_reset(&f->sink);
	free(f->sink.msgs);
	cJSON_Delete(f->disc);
	cJSON_Delete(f->states);
	cJSON_Delete(f->subs);
	cJSON_Delete(f->metas);
	free(f);
	return 0;
}

static bool
feed(struct fx *f, const char *topic, const char *payload)
{
	int before = f->sink.n;
	bool took = hearth_ha_on_message(f->ha, topic, payload, (int)strlen(payload), 1000);

	for (int i = before; i < f->sink.n; i++) {
		hearth_msg *m = &f->sink.msgs[i];

		if (m->type != HEARTH_MSG_DEVICE_META)
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(f->metas, m->id);
		if (m->body)
			cJSON_AddItemToObject(f->metas, m->id, cJSON_Duplicate(m->body, 1));
	}
	return took;
}

static void
feed_json(struct fx *f, const char *topic, const cJSON *cfg)
{
	char *text = cJSON_PrintUnformatted(cfg);

	assert_true(feed(f, topic, text));
	hearth_free(text);
}

static void
feed_discovery(struct fx *f)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, f->disc)
	{
		feed_json(f, c->string, c);
	}
}

static hearth_msg *
msg_for(struct fx *f, enum hearth_msg_type type, const char *id)
{
	hearth_msg *found = NULL;

	for (int i = 0; i < f->sink.n; i++)
		if (f->sink.msgs[i].type == type && !strcmp(f->sink.msgs[i].id, id))
			found = &f->sink.msgs[i];
	if (!found)
		fail_msg("no %s message for %s", hearth_msg_type_name(type), id);
	return found;
}

static void
expect_meta(struct fx *f, const char *id, const char *room, const char *kind, const char *caps)
{
	hearth_msg *m = msg_for(f, HEARTH_MSG_DEVICE_META, id);

	if (room)
		assert_string_equal(jstr(m->body, "room"), room);
	else
		assert_null(jstr(m->body, "room"));
	assert_string_equal(jstr(m->body, "kind"), kind);
	assert_string_equal(jstr(m->body, "transport"), "ha");
	assert_json(cJSON_GetObjectItemCaseSensitive(m->body, "capabilities"), caps);
}

/* ==== Discovery ==== */

static void
test_discovery_becomes_hearth_devices(void **state)
{
	struct fx *f = *state;
	const cJSON *s;
	hearth_msg *m;

	feed_discovery(f);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_ERROR), 0);
	/* The battery sensor maps to nothing; Zigbee2MQTT's own config is left
	 * to the Zigbee2MQTT binding. */
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_META), 10);
	assert_int_equal(hearth_ha_count(f->ha), 10);
	m = msg_for(f, HEARTH_MSG_DEVICE_META, READING);
	assert_json(m->body, "{\"name\":\"Reading lamp\",\"room\":\"Study\",\"kind\":\"light\","
	                     "\"capabilities\":[\"light.on_off\",\"light.brightness\"],"
	                     "\"transport\":\"ha\",\"address\":{\"discovery_topic\":"
	                     "\"homeassistant/light/tasmota_A1B2C3/light_1/config\"}}");
	expect_meta(f, DESK, "Study", "light", "[\"light.on_off\",\"light.brightness\"]");
	expect_meta(f, CEILING, "Kitchen", "light", "[\"light.on_off\",\"light.brightness\"]");
	expect_meta(f, SHUTTER, "Living", "cover", "[\"cover.position\"]");
	expect_meta(f, KETTLE, "Kitchen", "switch", "[\"switch.on_off\"]");
	expect_meta(f, LOCK, "hall", "lock", "[\"lock.lock\"]"); /* the device file */
	expect_meta(f, TRV, "Office", "climate", "[\"climate.setpoint\",\"sensor.temperature\"]");
	expect_meta(f, MOTION, "Hallway", "sensor", "[\"sensor.motion\"]");
	expect_meta(f, DOOR, "Kitchen", "sensor", "[\"sensor.contact\"]");
	expect_meta(f, TEMP, "Bedroom", "sensor", "[\"sensor.temperature\"]");

	/* Exactly the state and availability topics, each once, "~" expanded. */
	assert_int_equal(cJSON_GetArraySize(f->subs), cJSON_GetArraySize(f->states));
	cJSON_ArrayForEach(s, f->states)
	{
		const cJSON *t;
		bool seen = false;

		cJSON_ArrayForEach(t, f->subs)
		{
			seen = seen || !strcmp(t->valuestring, s->string);
		}
		if (!seen)
			fail_msg("%s was not subscribed", s->string);
		assert_true(hearth_ha_owns(f->ha, s->string));
	}
	assert_string_equal(hearth_ha_subscriptions(f->ha)[0], "homeassistant/+/+/config");
	assert_string_equal(hearth_ha_subscriptions(f->ha)[1], "homeassistant/+/+/+/config");
	assert_null(hearth_ha_subscriptions(f->ha)[2]);

	/* The same configs again (a reconnect): same announcements, no new topics. */
	cJSON_Delete(f->subs);
	f->subs = cJSON_CreateArray();
	feed_discovery(f);
	assert_int_equal(cJSON_GetArraySize(f->subs), 0);
	assert_int_equal(hearth_ha_count(f->ha), 10);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_ERROR), 0);
}

static void
test_zigbee2mqtt_configs_when_its_binding_is_off(void **state)
{
	struct fx *f = *state;

	hearth_ha_free(f->ha);
	make(f, false);
	feed_json(f, "homeassistant/light/0x000b57fffec6a5b2/light/config",
	          cJSON_GetObjectItemCaseSensitive(
	                  f->disc, "homeassistant/light/0x000b57fffec6a5b2/light/config"));
	/* name null: the device's name */
	assert_string_equal(
	        jstr(msg_for(f, HEARTH_MSG_DEVICE_META, "ha.0x000b57fffec6a5b2_light_zigbee2mqtt")
	                     ->body,
	             "name"),
	        "living/sofa lamp");
	expect_meta(f, "ha.0x000b57fffec6a5b2_light_zigbee2mqtt", NULL, "light",
	            "[\"light.on_off\",\"light.brightness\",\"light.color_temp\"]");
}

/* ==== State ==== */

static void
state_is(struct fx *f, const char *topic, const char *id, const char *want)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(f->states, topic);

	assert_non_null(p);
	sink_reset(&f->sink);
	assert_true(feed(f, topic, p->valuestring));
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_ERROR), 0);
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, id)->body, want);
}

static void
avail_is(struct fx *f, const char *topic, const char *id, bool want)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(f->states, topic);

	sink_reset(&f->sink);
	assert_true(feed(f, topic, p->valuestring));
	assert_int_equal(msg_for(f, HEARTH_MSG_DEVICE_AVAIL, id)->flag, want);
}

static void
test_state_in_hearth_terms(void **state)
{
	struct fx *f = *state;

	feed_discovery(f);
	state_is(f, "tasmota/reading/stat/POWER", READING, "{\"on\":true}");
	state_is(f, "tasmota/reading/stat/RESULT", READING, "{\"brightness\":40}");
	avail_is(f, "tasmota/reading/tele/LWT", READING, true);
	state_is(f, "home/desk/light/status", DESK, "{\"on\":false}");
	state_is(f, "home/desk/brightness/status", DESK, "{\"brightness\":50}");
	state_is(f, "esp-living/light/ceiling/state", CEILING, "{\"on\":true,\"brightness\":75}");
	avail_is(f, "esp-living/status", CEILING, true);
	state_is(f, "shellies/shutter-living/roller/0/pos", SHUTTER, "{\"position\":100}");
	avail_is(f, "shellies/shutter-living/online", SHUTTER, true);
	state_is(f, "kitchen/kettle/relay", KETTLE, "{\"on\":false}");
	state_is(f, "locks/frontdoor/state", LOCK, "{\"locked\":true}");
	avail_is(f, "locks/frontdoor/availability", LOCK, true);
	state_is(f, "office/trv/target", TRV, "{\"setpoint\":20.5}");
	state_is(f, "office/trv/temperature", TRV, "{\"temperature\":19.2}");
	state_is(f, "sensors/hallway", MOTION, "{\"motion\":true}");
	/* HA's door "off" is closed: hearth's contact=true, as Zigbee2MQTT says it. */
	state_is(f, "sensors/back_door", DOOR, "{\"contact\":true}");
	state_is(f, "sensors/bedroom/bme280", TEMP, "{\"temperature\":21.4}");

	/* The shutter's state topic says "open", but its position topic rules. */
	sink_reset(&f->sink);
	assert_true(feed(f, "shellies/shutter-living/roller/0", "open"));
	assert_int_equal(f->sink.n, 0);
	/* Unknown payloads say nothing; so do topics nobody reads. */
	assert_true(feed(f, "kitchen/kettle/relay", "maybe"));
	assert_true(feed(f, "locks/frontdoor/state", "not json"));
	assert_false(feed(f, "some/other/topic", "ON"));
	assert_true(feed(f, "homeassistant/status", "online"));
	assert_int_equal(f->sink.n, 0);
	state_is(f, "sensors/back_door", DOOR, "{\"contact\":true}");
	assert_true(feed(f, "sensors/back_door", "OPEN"));
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, DOOR)->body, "{\"contact\":false}");
}

/* ==== Commands ==== */

struct sent {
	int n;
	char topic[HEARTH_PUBS_MAX][128];
	char payload[HEARTH_PUBS_MAX][128];
};

static int
command(struct fx *f, const char *id, const char *args, struct sent *out)
{
	struct hearth_pubs pubs = {0};
	struct hearth_device d;
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(f->metas, id), *c;
	cJSON *a = cJSON_Parse(args);
	char why[256];
	int rc;

	assert_non_null(a);
	memset(&d, 0, sizeof(d));
	memset(out, 0, sizeof(*out));
	snprintf(d.id, sizeof(d.id), "%s", id);
	snprintf(d.transport, sizeof(d.transport), "ha");
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(meta, "capabilities"))
	{
		d.caps |= 1u << hearth_capability_find(c->valuestring);
	}
	rc = hearth_ha_command(f->ha, &d, a, &pubs, why, sizeof(why));
	cJSON_Delete(a);
	if (rc) {
		assert_true(why[0]);
		assert_int_equal(pubs.n, 0);
		return rc;
	}
	out->n = pubs.n;
	for (int i = 0; i < pubs.n; i++) {
		snprintf(out->topic[i], sizeof(out->topic[i]), "%s", pubs.p[i].topic);
		snprintf(out->payload[i], sizeof(out->payload[i]), "%s", pubs.p[i].payload);
	}
	hearth_pubs_clear(&pubs);
	return 0;
}

static void
sent_is(const struct sent *s, int i, const char *topic, const char *payload)
{
	assert_true(i < s->n);
	assert_string_equal(s->topic[i], topic);
	assert_string_equal(s->payload[i], payload);
}

static void
test_commands_on_their_own_topics(void **state)
{
	struct fx *f = *state;
	struct sent s;

	feed_discovery(f);
	/* on_command_type brightness: the dimmer alone turns it on. */
	assert_int_equal(command(f, READING,
	                         "{\"on\":true,\"brightness\":30,\"plan_id\":\"p-1\","
	                         "\"intent_id\":\"i-1\",\"step\":\"lights\"}",
	                         &s),
	                 0);
	assert_int_equal(s.n, 1);
	sent_is(&s, 0, "tasmota/reading/cmnd/Dimmer", "30");
	assert_int_equal(command(f, READING, "{\"on\":false}", &s), 0);
	assert_int_equal(s.n, 1);
	sent_is(&s, 0, "tasmota/reading/cmnd/POWER", "OFF");
	/* on_command_type last (default): brightness first, then ON; scale 255. */
	assert_int_equal(command(f, DESK, "{\"on\":true,\"brightness\":30}", &s), 0);
	assert_int_equal(s.n, 2);
	sent_is(&s, 0, "home/desk/brightness/set", "77");
	sent_is(&s, 1, "home/desk/light/switch", "ON");
	assert_int_equal(command(f, CEILING, "{\"on\":true,\"brightness\":30}", &s), 0);
	assert_int_equal(s.n, 1);
	sent_is(&s, 0, "esp-living/light/ceiling/command", "{\"state\":\"ON\",\"brightness\":77}");
	assert_int_equal(command(f, CEILING, "{\"on\":false}", &s), 0);
	sent_is(&s, 0, "esp-living/light/ceiling/command", "{\"state\":\"OFF\"}");
	assert_int_equal(command(f, SHUTTER, "{\"position\":0}", &s), 0);
	assert_int_equal(s.n, 1);
	sent_is(&s, 0, "shellies/shutter-living/roller/0/command/pos", "0");
	assert_int_equal(command(f, KETTLE, "{\"on\":true}", &s), 0);
	sent_is(&s, 0, "kitchen/kettle/relay/set", "1");
	assert_int_equal(command(f, LOCK, "{\"locked\":true}", &s), 0);
	sent_is(&s, 0, "locks/frontdoor/set", "LOCK");
	assert_int_equal(command(f, LOCK, "{\"locked\":false}", &s), 0);
	sent_is(&s, 0, "locks/frontdoor/set", "UNLOCK");
	assert_int_equal(command(f, TRV, "{\"setpoint\":21.5}", &s), 0);
	sent_is(&s, 0, "office/trv/target/set", "21.5");

	/* Refusals. */
	assert_int_equal(command(f, MOTION, "{\"motion\":true}", &s), HEARTH_E_INVALID);
	assert_int_equal(command(f, SHUTTER, "{\"position\":140}", &s), HEARTH_E_INVALID);
	assert_int_equal(command(f, "ha.unknown", "{\"on\":true}", &s), HEARTH_E_NOT_FOUND);
}

static void
test_commanded_values_read_back_exactly(void **state)
{
	struct fx *f = *state;
	struct sent s;
	char args[64];

	feed_discovery(f);
	for (int pct = 0; pct <= 100; pct++) {
		snprintf(args, sizeof(args), "{\"on\":true,\"brightness\":%d}", pct);
		assert_int_equal(command(f, DESK, args, &s), 0);
		sink_reset(&f->sink);
		assert_true(feed(f, "home/desk/brightness/status", s.payload[0]));
		assert_int_equal(
		        cJSON_GetObjectItemCaseSensitive(
		                msg_for(f, HEARTH_MSG_DEVICE_STATE, DESK)->body, "brightness")
		                ->valueint,
		        pct);
	}
	/* A scale coarser than percent: 33 % of 10 is 3, which reads back 33. */
	feed(f, "homeassistant/light/coarse/config",
	     "{\"name\":\"Coarse\",\"uniq_id\":\"coarse-1\",\"cmd_t\":\"c/set\",\"stat_t\":\"c/"
	     "state\","
	     "\"bri_cmd_t\":\"c/bri/set\",\"bri_stat_t\":\"c/bri\",\"bri_scl\":10}");
	assert_int_equal(command(f, "ha.coarse-1", "{\"brightness\":33}", &s), 0);
	assert_int_equal(s.n, 1);
	sent_is(&s, 0, "c/bri/set", "3");
	sink_reset(&f->sink);
	assert_true(feed(f, "c/bri", "3"));
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, "ha.coarse-1")->body,
	            "{\"brightness\":33}");
	/* Shutter: position 0 reads back 0. */
	assert_int_equal(command(f, SHUTTER, "{\"position\":0}", &s), 0);
	sink_reset(&f->sink);
	assert_true(feed(f, "shellies/shutter-living/roller/0/pos", s.payload[0]));
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, SHUTTER)->body, "{\"position\":0}");
}

/* ==== Templates ==== */

static void
template_gives(struct fx *f, const char *tpl, const char *payload, const char *want)
{
	cJSON *cfg =
	        cJSON_Parse("{\"name\":\"T\",\"uniq_id\":\"tpl-1\",\"dev_cla\":\"temperature\","
	                    "\"stat_t\":\"t/state\"}");

	cJSON_AddStringToObject(cfg, "val_tpl", tpl);
	feed_json(f, "homeassistant/sensor/tpl/config", cfg);
	cJSON_Delete(cfg);
	sink_reset(&f->sink);
	assert_true(feed(f, "t/state", payload));
	if (!want) {
		assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_STATE), 0);
		return;
	}
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, "ha.tpl-1")->body, want);
}

static void
test_value_templates(void **state)
{
	struct fx *f = *state;

	template_gives(f, "{{ value }}", "21.5", "{\"temperature\":21.5}");
	template_gives(f, "{{value_json.t}}", "{\"t\":19}", "{\"temperature\":19}");
	template_gives(f, "{{ value_json.a.b }}", "{\"a\":{\"b\":-3.5}}", "{\"temperature\":-3.5}");
	template_gives(f, "{{ value_json['temp'] }}", "{\"temp\":22}", "{\"temperature\":22}");
	template_gives(f, "{{ value_json.list[1] }}", "{\"list\":[1,2]}", "{\"temperature\":2}");
	template_gives(f, "{{ value_json.t | int }}", "{\"t\":\"23.9\"}", "{\"temperature\":23}");
	template_gives(f, "{{ value_json.t | float | round(1) }}", "{\"t\":23.94}",
	               "{\"temperature\":23.9}");
	template_gives(f, "{{ value | float }}", "18", "{\"temperature\":18}");
	/* A missing key, not JSON: nothing. Anything else: the raw payload. */
	template_gives(f, "{{ value_json.nope }}", "{\"t\":1}", NULL);
	template_gives(f, "{{ value_json.t }}", "warm", NULL);
	template_gives(f, "{% if value %}{{ value }}{% endif %}", "17", "{\"temperature\":17}");
	template_gives(f, "{{ (value | float) * 2 }}", "17", "{\"temperature\":17}");
}

/* ==== Removal and refusals ==== */

static void
expect_error(struct fx *f, const char *code, const char *topic)
{
	hearth_msg *m = sink_last(&f->sink, HEARTH_MSG_ERROR);

	assert_string_equal(jstr(m->body, "error"), code);
	assert_string_equal(jstr(m->body, "topic"), topic);
	assert_non_null(jstr(m->body, "detail"));
}

static void
test_removal_and_bad_configs(void **state)
{
	struct fx *f = *state;
	char big[5000];

	feed_discovery(f);
	sink_reset(&f->sink);
	assert_true(feed(f, "homeassistant/cover/shutter_living/config", ""));
	assert_null(msg_for(f, HEARTH_MSG_DEVICE_META, SHUTTER)->body);
	assert_int_equal(hearth_ha_count(f->ha), 9);
	/* Its state topic says nothing any more. */
	sink_reset(&f->sink);
	feed(f, "shellies/shutter-living/roller/0/pos", "40");
	assert_int_equal(f->sink.n, 0);

	assert_true(feed(f, "homeassistant/light/bad/config", "{\"name\":"));
	expect_error(f, "bad_json", "homeassistant/light/bad/config");
	assert_true(feed(f, "homeassistant/light/bad/config", "[1]"));
	expect_error(f, "bad_request", "homeassistant/light/bad/config");
	assert_true(feed(f, "homeassistant/light/bad/config",
	                 "{\"name\":\"No id\",\"cmd_t\":\"x/set\",\"stat_t\":\"x\"}"));
	expect_error(f, "bad_request", "homeassistant/light/bad/config");
	assert_non_null(
	        strstr(jstr(sink_last(&f->sink, HEARTH_MSG_ERROR)->body, "detail"), "unique_id"));
	assert_true(feed(f, "homeassistant/switch/again/config",
	                 "{\"name\":\"Dup\",\"uniq_id\":\"kettle-plug-01\",\"cmd_t\":\"k/set\"}"));
	expect_error(f, "bad_request", "homeassistant/switch/again/config");
	assert_true(feed(f, "homeassistant/switch/wild/config",
	                 "{\"name\":\"W\",\"uniq_id\":\"w-1\",\"cmd_t\":\"k/+/set\"}"));
	expect_error(f, "bad_request", "homeassistant/switch/wild/config");
	assert_true(feed(f, "homeassistant/light/tmpl/config",
	                 "{\"name\":\"T\",\"uniq_id\":\"t-1\",\"schema\":\"template\"}"));
	expect_error(f, "bad_request", "homeassistant/light/tmpl/config");
	memset(big, ' ', sizeof(big) - 1);
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	big[sizeof(big) - 1] = '\0';
	assert_true(feed(f, "homeassistant/light/big/config", big));
	expect_error(f, "too_large", "homeassistant/light/big/config");
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_META), 0);
	assert_int_equal(hearth_ha_count(f->ha), 9);

	/* Components hearth does not map, and odd topics, are taken silently. */
	sink_reset(&f->sink);
	assert_true(feed(f, "homeassistant/button/x/config", "{\"uniq_id\":\"b\"}"));
	assert_true(feed(f, "homeassistant/device_automation/x/y/config", "{}"));
	assert_int_equal(f->sink.n, 0);

	/* A unique_id with characters ids do not take, and a long one. */
	sink_reset(&f->sink);
	feed(f, "homeassistant/switch/odd/config",
	     "{\"name\":\"Odd\",\"uniq_id\":\"aa:bb cc/1\",\"cmd_t\":\"o/set\"}");
	msg_for(f, HEARTH_MSG_DEVICE_META, "ha.aa_bb_cc_1");
	feed(f, "homeassistant/switch/long/config",
	     "{\"name\":\"Long\",\"uniq_id\":\"a-very-long-unique-id-that-goes-on-and-on-and-on-"
	     "beyond-sixty-four\",\"cmd_t\":\"l/set\"}");
	{
		hearth_msg *m = sink_last(&f->sink, HEARTH_MSG_DEVICE_META);

		assert_true(strlen(m->id) <= HEARTH_ID_MAX);
		assert_int_equal(strncmp(m->id, "ha.a-very-long", 14), 0);
	}
}

static void
test_out_of_memory(void **state)
{
	struct fx *f = *state;
	char *cfg = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(
	        f->disc, "homeassistant/light/esp-living/ceiling/config"));
	const char *st = "{\"state\":\"ON\",\"brightness\":10}";

	for (long n = 0; n < 3000; n++) {
		sink_reset(&f->sink);
		hearth_ha_free(f->ha);
		make(f, true);
		hearth_alloc_fail_after(n);
		hearth_ha_on_message(f->ha, "homeassistant/light/esp-living/ceiling/config", cfg,
		                     (int)strlen(cfg), 0);
		hearth_ha_on_message(f->ha, "esp-living/light/ceiling/state", st, (int)strlen(st),
		                     0);
		hearth_alloc_fail_after(-1);
		/* Whatever was announced was announced whole. */
		for (int i = 0; i < f->sink.n; i++)
			if (f->sink.msgs[i].type == HEARTH_MSG_DEVICE_META)
				assert_non_null(cJSON_GetObjectItemCaseSensitive(
				        f->sink.msgs[i].body, "address"));
	}
	hearth_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_discovery_becomes_hearth_devices, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_zigbee2mqtt_configs_when_its_binding_is_off,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_state_in_hearth_terms, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_commands_on_their_own_topics, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_commanded_values_read_back_exactly, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_value_templates, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_removal_and_bad_configs, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
