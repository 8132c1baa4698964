/*
 * test_z2m.c - the Zigbee2MQTT binding as a state machine, fed with payloads
 * in Zigbee2MQTT's documented formats (tests/fixtures/z2m: a bridge/devices
 * list with an IKEA dimmable bulb, a plug, a Danalock, a FYRTUR blind, a Hue
 * motion sensor, an Aqara temperature sensor and door contact, a Tuya
 * radiator valve, the coordinator and a device still interviewing; the
 * states those devices publish). It checks what the context agent would
 * get (ids, names, rooms, capabilities, addresses, state in hearth terms,
 * availability, removals), the set messages for hearth commands, that a
 * commanded percentage or colour temperature reads back exactly, and that
 * bad input gives an error and nothing else.
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
#include "runtime/z2m.h"
#include "tests/unit/support/sink.h"

#define FIX HEARTH_SOURCE_DIR "/tests/fixtures/z2m/"

#define LAMP    "z2m.0x000b57fffec6a5b2"
#define PLUG    "z2m.0x588e81fffe3c4d5e"
#define LOCK    "z2m.0x000d6f0011223344"
#define BLIND   "z2m.0x680ae2fffe7b8c9d"
#define MOTION  "z2m.0x0017880106a1b2c3"
#define CLIMATE "z2m.0x00158d00045f6e7a"
#define CONTACT "z2m.0x00158d0001e5f6a7"
#define VALVE   "z2m.0x847127fffe0a1b2c"

struct fx {
	hearth_z2m *z;
	struct sink sink;
	hearth_outbox out;
	char *devices;
	cJSON *states;
	cJSON *metas; /* id -> the last meta posted, kept across sink resets */
};

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The device file of these tests: the Aqara sensor has no room in its name. */
static const char *
room_of(void *ud, const char *id)
{
	(void)ud;
	return !strcmp(id, CLIMATE) ? "bedroom" : NULL;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct hearth_z2m_opts o = {.base_topic = "zigbee2mqtt",
	                            .max_payload = 4096,
	                            .max_devices_payload = 1 << 20,
	                            .room = room_of};
	char *st;

	assert_non_null(f);
	f->out = (hearth_outbox){.post = sink_post, .ud = &f->sink};
	assert_int_equal(hearth_z2m_new(&o, &f->out, &f->z), 0);
	f->devices = slurp(FIX "bridge_devices.json");
	st = slurp(FIX "states.json");
	f->states = cJSON_Parse(st);
	f->metas = cJSON_CreateObject();
	free(st);
	assert_non_null(f->states);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	hearth_z2m_free(f->z);
	sink_reset(&f->sink);
	free(f->sink.msgs);
	free(f->devices);
	cJSON_Delete(f->states);
	cJSON_Delete(f->metas);
	free(f);
	return 0;
}

static bool
feed(struct fx *f, const char *topic, const char *payload)
{
	return hearth_z2m_on_message(f->z, topic, payload, (int)strlen(payload), 1000);
}

static void
feed_devices(struct fx *f)
{
	assert_true(feed(f, "zigbee2mqtt/bridge/devices", f->devices));
	for (int i = 0; i < f->sink.n; i++) {
		hearth_msg *m = &f->sink.msgs[i];

		if (m->type != HEARTH_MSG_DEVICE_META || !m->body)
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(f->metas, m->id);
		cJSON_AddItemToObject(f->metas, m->id, cJSON_Duplicate(m->body, 1));
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
assert_caps(const cJSON *meta, const char *want)
{
	assert_json(cJSON_GetObjectItemCaseSensitive(meta, "capabilities"), want);
}

/* A registry entry as the context agent would hold it. */
static void
device_of(const cJSON *meta, const char *id, struct hearth_device *d)
{
	const cJSON *c;

	memset(d, 0, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "%s", id);
	snprintf(d->transport, sizeof(d->transport), "z2m");
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(meta, "capabilities"))
	{
		d->caps |= 1u << hearth_capability_find(c->valuestring);
	}
	d->address = cJSON_GetObjectItemCaseSensitive(meta, "address");
}

/* ==== The device list ==== */

static void
test_devices_become_hearth_devices(void **state)
{
	struct fx *f = *state;
	hearth_msg *m;

	feed_devices(f);
	/* The coordinator and the device still interviewing are left out. */
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_META), 8);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_ERROR), 0);
	assert_int_equal(hearth_z2m_count(f->z), 8);

	m = msg_for(f, HEARTH_MSG_DEVICE_META, LAMP);
	assert_json(m->body,
	            "{\"name\":\"living/sofa lamp\",\"room\":\"living\",\"kind\":\"light\","
	            "\"capabilities\":[\"light.on_off\",\"light.brightness\","
	            "\"light.color_temp\"],\"transport\":\"z2m\","
	            "\"address\":{\"friendly_name\":\"living/sofa lamp\"}}");
	m = msg_for(f, HEARTH_MSG_DEVICE_META, PLUG);
	assert_string_equal(jstr(m->body, "room"), "bedroom");
	assert_string_equal(jstr(m->body, "kind"), "switch");
	assert_caps(m->body, "[\"switch.on_off\"]");
	m = msg_for(f, HEARTH_MSG_DEVICE_META, LOCK);
	assert_null(jstr(m->body, "room"));
	assert_string_equal(jstr(m->body, "kind"), "lock");
	assert_caps(m->body, "[\"lock.lock\"]");
	m = msg_for(f, HEARTH_MSG_DEVICE_META, BLIND);
	assert_string_equal(jstr(m->body, "room"), "living");
	assert_string_equal(jstr(m->body, "kind"), "cover");
	assert_caps(m->body, "[\"cover.position\"]");
	m = msg_for(f, HEARTH_MSG_DEVICE_META, MOTION);
	assert_string_equal(jstr(m->body, "room"), "hall");
	assert_string_equal(jstr(m->body, "kind"), "sensor");
	assert_caps(m->body,
	            "[\"sensor.occupancy\",\"sensor.temperature\",\"sensor.illuminance\"]");
	/* No '/' in its name: the room comes from the device file. */
	m = msg_for(f, HEARTH_MSG_DEVICE_META, CLIMATE);
	assert_string_equal(jstr(m->body, "room"), "bedroom");
	assert_caps(m->body, "[\"sensor.temperature\"]");
	m = msg_for(f, HEARTH_MSG_DEVICE_META, CONTACT);
	assert_caps(m->body, "[\"sensor.contact\"]");
	m = msg_for(f, HEARTH_MSG_DEVICE_META, VALVE);
	assert_string_equal(jstr(m->body, "kind"), "climate");
	assert_caps(m->body, "[\"climate.setpoint\",\"sensor.temperature\"]");
}

static void
test_same_list_again_posts_nothing_and_removal(void **state)
{
	struct fx *f = *state;
	cJSON *list;
	char *text;
	hearth_msg *m;

	feed_devices(f);
	sink_reset(&f->sink);
	feed_devices(f);
	assert_int_equal(f->sink.n, 0);

	/* The blind leaves the network; the lamp is renamed. */
	list = cJSON_Parse(f->devices);
	for (int i = cJSON_GetArraySize(list) - 1; i >= 0; i--) {
		cJSON *d = cJSON_GetArrayItem(list, i);

		if (!strcmp(jstr(d, "friendly_name"), "living/blind"))
			cJSON_DeleteItemFromArray(list, i);
		else if (!strcmp(jstr(d, "friendly_name"), "living/sofa lamp"))
			cJSON_ReplaceItemInObjectCaseSensitive(d, "friendly_name",
			                                       cJSON_CreateString("den/sofa lamp"));
	}
	text = cJSON_PrintUnformatted(list);
	cJSON_Delete(list);
	assert_true(feed(f, "zigbee2mqtt/bridge/devices", text));
	hearth_free(text);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_META), 2);
	m = msg_for(f, HEARTH_MSG_DEVICE_META, BLIND);
	assert_null(m->body);
	m = msg_for(f, HEARTH_MSG_DEVICE_META, LAMP);
	assert_string_equal(jstr(m->body, "room"), "den");
	assert_int_equal(hearth_z2m_count(f->z), 7);

	/* State now comes on the new name. */
	sink_reset(&f->sink);
	assert_true(feed(f, "zigbee2mqtt/den/sofa lamp", "{\"state\":\"OFF\"}"));
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, LAMP)->body, "{\"on\":false}");
}

/* ==== State and availability ==== */

static void
feed_state(struct fx *f, const char *name)
{
	char topic[256], *text;

	text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(f->states, name));
	snprintf(topic, sizeof(topic), "zigbee2mqtt/%s", name);
	assert_true(feed(f, topic, text));
	hearth_free(text);
}

static void
test_state_in_hearth_terms(void **state)
{
	struct fx *f = *state;
	const cJSON *s;

	feed_devices(f);
	sink_reset(&f->sink);
	cJSON_ArrayForEach(s, f->states)
	{
		feed_state(f, s->string);
	}
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_ERROR), 0);
	/* brightness 204/254 = 80 %, 370 mired = 2703 K */
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, LAMP)->body,
	            "{\"on\":true,\"brightness\":80,\"color_temp\":2703}");
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, PLUG)->body, "{\"on\":false}");
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, LOCK)->body, "{\"locked\":true}");
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, BLIND)->body, "{\"position\":100}");
	/* illuminance_lux wins over the raw illuminance */
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, MOTION)->body,
	            "{\"occupancy\":true,\"temperature\":21.37,\"illuminance\":70}");
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, CLIMATE)->body, "{\"temperature\":19.84}");
	/* Zigbee2MQTT's contact=true (closed) stays true */
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, CONTACT)->body, "{\"contact\":true}");
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, VALVE)->body,
	            "{\"setpoint\":21,\"temperature\":19.5}");

	/* Only link quality: nothing to say. Unlock: lock_state wins last. */
	sink_reset(&f->sink);
	assert_true(feed(f, "zigbee2mqtt/living/sofa lamp", "{\"linkquality\":99}"));
	assert_int_equal(f->sink.n, 0);
	assert_true(feed(f, "zigbee2mqtt/front door lock",
	                 "{\"state\":\"UNLOCK\",\"lock_state\":\"unlocked\"}"));
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, LOCK)->body, "{\"locked\":false}");
}

static void
test_availability_forms(void **state)
{
	struct fx *f = *state;
	hearth_msg *m;

	feed_devices(f);
	sink_reset(&f->sink);
	assert_true(feed(f, "zigbee2mqtt/living/sofa lamp/availability", "offline"));
	m = msg_for(f, HEARTH_MSG_DEVICE_AVAIL, LAMP);
	assert_false(m->flag);
	assert_true(feed(f, "zigbee2mqtt/living/blind/availability", "{\"state\":\"online\"}"));
	m = msg_for(f, HEARTH_MSG_DEVICE_AVAIL, BLIND);
	assert_true(m->flag);
	assert_true(feed(f, "zigbee2mqtt/living/blind/availability", "maybe"));
	m = sink_last(&f->sink, HEARTH_MSG_ERROR);
	assert_string_equal(jstr(m->body, "error"), "bad_request");
	assert_string_equal(jstr(m->body, "topic"), "zigbee2mqtt/living/blind/availability");
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_AVAIL), 2);
}

/* Retained availability and state often arrive before the retained list. */
static void
test_messages_before_the_list_are_replayed(void **state)
{
	struct fx *f = *state;

	assert_true(feed(f, "zigbee2mqtt/hall/motion/availability", "online"));
	assert_true(feed(f, "zigbee2mqtt/hall/motion", "{\"occupancy\":false}"));
	assert_int_equal(f->sink.n, 0);
	feed_devices(f);
	assert_true(msg_for(f, HEARTH_MSG_DEVICE_AVAIL, MOTION)->flag);
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, MOTION)->body, "{\"occupancy\":false}");
	/* ...once: a second list replays nothing. */
	sink_reset(&f->sink);
	feed_devices(f);
	assert_int_equal(f->sink.n, 0);
}

/* ==== Commands ==== */

static void
command(struct fx *f, const char *id, const char *args, char *topic, char *payload, int want_rc)
{
	struct hearth_pubs pubs = {0};
	struct hearth_device d;
	cJSON *a = cJSON_Parse(args);
	char why[256] = "";
	int rc;

	assert_non_null(a);
	device_of(cJSON_GetObjectItemCaseSensitive(f->metas, id), id, &d);
	rc = hearth_z2m_command(f->z, &d, a, &pubs, why, sizeof(why));
	cJSON_Delete(a);
	if (rc != want_rc)
		fail_msg("command %s %s: rc %d (%s), want %d", id, args, rc, why, want_rc);
	if (rc) {
		assert_true(why[0]);
		assert_int_equal(pubs.n, 0);
		return;
	}
	assert_int_equal(pubs.n, 1);
	strcpy(topic, pubs.p[0].topic);
	strcpy(payload, pubs.p[0].payload);
	assert_int_equal(pubs.p[0].len, (int)strlen(payload));
	hearth_pubs_clear(&pubs);
}

static void
test_commands_in_z2m_values(void **state)
{
	struct fx *f = *state;
	char topic[256], payload[256];

	feed_devices(f);
	command(f, LAMP,
	        "{\"on\":true,\"brightness\":30,\"plan_id\":\"p-1\",\"intent_id\":\"i-42\","
	        "\"step\":\"lights\"}",
	        topic, payload, 0);
	assert_string_equal(topic, "zigbee2mqtt/living/sofa lamp/set");
	assert_string_equal(payload, "{\"state\":\"ON\",\"brightness\":76}");
	command(f, LAMP, "{\"on\":false}", topic, payload, 0);
	assert_string_equal(payload, "{\"state\":\"OFF\"}");
	command(f, LAMP, "{\"color_temp\":2700}", topic, payload, 0);
	assert_string_equal(payload, "{\"color_temp\":370}");
	command(f, PLUG, "{\"on\":true}", topic, payload, 0);
	assert_string_equal(topic, "zigbee2mqtt/bedroom/heater plug/set");
	assert_string_equal(payload, "{\"state\":\"ON\"}");
	command(f, LOCK, "{\"locked\":true}", topic, payload, 0);
	assert_string_equal(topic, "zigbee2mqtt/front door lock/set");
	assert_string_equal(payload, "{\"state\":\"LOCK\"}");
	command(f, LOCK, "{\"locked\":false}", topic, payload, 0);
	assert_string_equal(payload, "{\"state\":\"UNLOCK\"}");
	command(f, BLIND, "{\"position\":0}", topic, payload, 0);
	assert_string_equal(topic, "zigbee2mqtt/living/blind/set");
	assert_string_equal(payload, "{\"position\":0}");
	command(f, VALVE, "{\"setpoint\":20.5}", topic, payload, 0);
	assert_string_equal(payload, "{\"current_heating_setpoint\":20.5}");
	/* A non-dimmable device ignores brightness, like a native one would. */
	command(f, PLUG, "{\"on\":true,\"brightness\":30}", topic, payload, 0);
	assert_string_equal(payload, "{\"state\":\"ON\"}");

	/* Refusals: a sensor, an out-of-range value, nothing it takes. */
	command(f, MOTION, "{\"occupancy\":true}", topic, payload, HEARTH_E_INVALID);
	command(f, LAMP, "{\"brightness\":150}", topic, payload, HEARTH_E_INVALID);
	command(f, LAMP, "{\"plan_id\":\"p-1\"}", topic, payload, HEARTH_E_INVALID);
}

/* brightness N % -> Z2M -> reported back reads N, for every N; 2700 K too. */
static void
test_commanded_values_read_back_exactly(void **state)
{
	struct fx *f = *state;
	char topic[256], payload[256], args[64];

	feed_devices(f);
	for (int pct = 0; pct <= 100; pct++) {
		cJSON *st;

		snprintf(args, sizeof(args), "{\"on\":true,\"brightness\":%d}", pct);
		command(f, LAMP, args, topic, payload, 0);
		sink_reset(&f->sink);
		assert_true(feed(f, "zigbee2mqtt/living/sofa lamp", payload));
		st = msg_for(f, HEARTH_MSG_DEVICE_STATE, LAMP)->body;
		assert_int_equal(cJSON_GetObjectItemCaseSensitive(st, "brightness")->valueint, pct);
	}
	command(f, LAMP, "{\"color_temp\":2700}", topic, payload, 0);
	assert_true(feed(f, "zigbee2mqtt/living/sofa lamp", "{\"color_temp\":370}"));
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, LAMP)->body, "{\"color_temp\":2700}");
}

/* A device restored from the store before Zigbee2MQTT lists it again. */
static void
test_command_from_address_alone(void **state)
{
	struct fx *f = *state;
	struct hearth_pubs pubs = {0};
	struct hearth_device d;
	cJSON *args = cJSON_Parse("{\"on\":true,\"brightness\":50}");
	char why[128];

	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "z2m.0x0011223344556677");
	snprintf(d.transport, sizeof(d.transport), "z2m");
	d.caps = 1u << hearth_capability_find("light.on_off") |
	         1u << hearth_capability_find("light.brightness");
	d.address = cJSON_Parse("{\"friendly_name\":\"kitchen/spots\"}");
	assert_int_equal(hearth_z2m_command(f->z, &d, args, &pubs, why, sizeof(why)), 0);
	assert_int_equal(pubs.n, 1);
	assert_string_equal(pubs.p[0].topic, "zigbee2mqtt/kitchen/spots/set");
	assert_string_equal(pubs.p[0].payload, "{\"state\":\"ON\",\"brightness\":127}");
	hearth_pubs_clear(&pubs);
	cJSON_Delete(d.address);
	d.address = NULL;
	assert_int_equal(hearth_z2m_command(f->z, &d, args, &pubs, why, sizeof(why)),
	                 HEARTH_E_NOT_FOUND);
	cJSON_Delete(args);
}

/* ==== Bad input ==== */

static void
expect_error(struct fx *f, const char *code, const char *topic)
{
	hearth_msg *m = sink_last(&f->sink, HEARTH_MSG_ERROR);

	assert_string_equal(jstr(m->body, "error"), code);
	assert_string_equal(jstr(m->body, "topic"), topic);
	assert_non_null(jstr(m->body, "detail"));
}

static void
test_bad_input_errors_and_changes_nothing(void **state)
{
	struct fx *f = *state;
	char big[5000];

	assert_true(feed(f, "zigbee2mqtt/bridge/devices", "[{\"ieee_address\":"));
	expect_error(f, "bad_json", "zigbee2mqtt/bridge/devices");
	assert_true(feed(f, "zigbee2mqtt/bridge/devices", "{\"devices\":[]}"));
	expect_error(f, "bad_request", "zigbee2mqtt/bridge/devices");
	assert_true(feed(f, "zigbee2mqtt/bridge/devices", "[7,{\"friendly_name\":\"x\"}]"));
	expect_error(f, "bad_request", "zigbee2mqtt/bridge/devices");
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_META), 0);

	feed_devices(f);
	sink_reset(&f->sink);
	assert_true(feed(f, "zigbee2mqtt/living/sofa lamp", "ON"));
	expect_error(f, "bad_json", "zigbee2mqtt/living/sofa lamp");
	assert_true(feed(f, "zigbee2mqtt/living/sofa lamp", "[1,2]"));
	expect_error(f, "bad_request", "zigbee2mqtt/living/sofa lamp");
	memset(big, ' ', sizeof(big) - 1);
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	big[sizeof(big) - 1] = '\0';
	assert_true(feed(f, "zigbee2mqtt/living/sofa lamp", big));
	expect_error(f, "too_large", "zigbee2mqtt/living/sofa lamp");
	/* Values of the wrong type are dropped, not passed on. */
	assert_true(feed(f, "zigbee2mqtt/living/sofa lamp", "{\"brightness\":\"lots\"}"));
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_STATE), 0);
	assert_int_equal(sink_count(&f->sink, HEARTH_MSG_DEVICE_META), 0);

	/* Our own commands, the bridge's other topics, other bases. */
	sink_reset(&f->sink);
	assert_true(feed(f, "zigbee2mqtt/living/sofa lamp/set", "{\"state\":\"ON\"}"));
	assert_true(feed(f, "zigbee2mqtt/bridge/state", "{\"state\":\"online\"}"));
	assert_true(feed(f, "zigbee2mqtt/bridge/logging", "{\"level\":\"info\"}"));
	assert_false(feed(f, "zigbee2mqttx/lamp", "{}"));
	assert_false(feed(f, "hearth/home/intent", "{}"));
	assert_int_equal(f->sink.n, 0);
	assert_true(hearth_z2m_owns(f->z, "zigbee2mqtt/anything"));
	assert_false(hearth_z2m_owns(f->z, "zigbee2mqtt"));
}

/* Every allocation that can fail, failing: no crash, no leak (ASan build). */
static void
test_out_of_memory(void **state)
{
	struct fx *f = *state;

	for (long n = 0; n < 4000; n++) {
		sink_reset(&f->sink);
		hearth_alloc_fail_after(n);
		feed(f, "zigbee2mqtt/bridge/devices", f->devices);
		feed(f, "zigbee2mqtt/living/sofa lamp", "{\"state\":\"ON\",\"brightness\":76}");
		hearth_alloc_fail_after(-1);
		/* Whatever was announced was announced whole. */
		for (int i = 0; i < f->sink.n; i++)
			if (f->sink.msgs[i].type == HEARTH_MSG_DEVICE_META && f->sink.msgs[i].body)
				assert_non_null(jstr(cJSON_GetObjectItemCaseSensitive(
				                             f->sink.msgs[i].body, "address"),
				                     "friendly_name"));
	}
	sink_reset(&f->sink);
	feed_devices(f);
	feed_state(f, "hall/motion");
	assert_json(msg_for(f, HEARTH_MSG_DEVICE_STATE, MOTION)->body,
	            "{\"occupancy\":true,\"temperature\":21.37,\"illuminance\":70}");
}

static void
test_bad_base_topic(void **state)
{
	hearth_z2m *z;
	struct hearth_z2m_opts o = {.base_topic = "zigbee2mqtt/#"};
	hearth_outbox out = {0};

	(void)state;
	assert_int_equal(hearth_z2m_new(&o, &out, &z), HEARTH_E_INVALID);
	o.base_topic = "";
	assert_int_equal(hearth_z2m_new(&o, &out, &z), HEARTH_E_INVALID);
	o.base_topic = "z2m/home";
	assert_int_equal(hearth_z2m_new(&o, &out, &z), 0);
	assert_string_equal(hearth_z2m_subscriptions(z)[0], "z2m/home/#");
	assert_null(hearth_z2m_subscriptions(z)[1]);
	hearth_z2m_free(z);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_devices_become_hearth_devices, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_same_list_again_posts_nothing_and_removal,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_state_in_hearth_terms, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_availability_forms, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_messages_before_the_list_are_replayed, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_commands_in_z2m_values, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_commanded_values_read_back_exactly, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_command_from_address_alone, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bad_input_errors_and_changes_nothing, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
	        cmocka_unit_test(test_bad_base_topic),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
