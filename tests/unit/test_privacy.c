/*
 * test_privacy.c - the privacy guard: the class table, the defaults a device
 * maker ships (planner all but audio, camera and location; suggestions device
 * and environment; learner and export nothing), grants from consent scopes,
 * switching a default off, reset, and the denial counters and their JSON
 * form for `hearthctl health`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "agents/context/privacy.h"
#include "platform/alloc.h"
#include "platform/err.h"

static void
test_classes(void **state)
{
	static const struct {
		const char *what;
		enum hearth_data_class cls;
	} cases[] = {
	        {"sensor.motion", HEARTH_CLASS_PRESENCE},
	        {"sensor.occupancy", HEARTH_CLASS_PRESENCE},
	        {"sensor.contact", HEARTH_CLASS_PRESENCE},
	        {"motion", HEARTH_CLASS_PRESENCE},
	        {"someone_home", HEARTH_CLASS_PRESENCE},
	        {"room.living.occupied", HEARTH_CLASS_PRESENCE},
	        {"media.power", HEARTH_CLASS_MEDIA},
	        {"media.volume", HEARTH_CLASS_MEDIA},
	        {"volume", HEARTH_CLASS_MEDIA},
	        {"sensor.sound", HEARTH_CLASS_AUDIO},
	        {"sensor.temperature", HEARTH_CLASS_ENVIRONMENT},
	        {"climate.setpoint", HEARTH_CLASS_ENVIRONMENT},
	        {"illuminance", HEARTH_CLASS_ENVIRONMENT},
	        {"energy.meter", HEARTH_CLASS_ENERGY},
	        {"power", HEARTH_CLASS_ENERGY},
	        {"location.gps", HEARTH_CLASS_LOCATION},
	        {"latitude", HEARTH_CLASS_LOCATION},
	        {"camera.snapshot", HEARTH_CLASS_CAMERA},
	        {"light.brightness", HEARTH_CLASS_DEVICE},
	        {"lock.lock", HEARTH_CLASS_DEVICE},
	        {"on", HEARTH_CLASS_DEVICE},
	        {"media.", HEARTH_CLASS_OTHER},
	        {"media", HEARTH_CLASS_OTHER},
	        {"vacuum.start", HEARTH_CLASS_OTHER},
	        {"", HEARTH_CLASS_OTHER},
	        {NULL, HEARTH_CLASS_OTHER},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (hearth_privacy_class_of(cases[i].what) != cases[i].cls)
			fail_msg("%s: class %s, want %s", cases[i].what ? cases[i].what : "NULL",
			         hearth_privacy_class_name(hearth_privacy_class_of(cases[i].what)),
			         hearth_privacy_class_name(cases[i].cls));
	assert_int_equal(hearth_privacy_class_find("camera"), HEARTH_CLASS_CAMERA);
	assert_int_equal(hearth_privacy_class_find("cameras"), -1);
	assert_int_equal(hearth_privacy_consumer_find("export"), HEARTH_CONSUMER_EXPORT);
	assert_int_equal(hearth_privacy_consumer_find(NULL), -1);
}

static void
test_defaults(void **state)
{
	hearth_privacy *g = hearth_privacy_new();

	(void)state;
	assert_non_null(g);
	for (int c = 0; c < HEARTH_CLASS_COUNT; c++) {
		bool sensitive = c == HEARTH_CLASS_AUDIO || c == HEARTH_CLASS_CAMERA ||
		                 c == HEARTH_CLASS_LOCATION;

		assert_int_equal(hearth_privacy_permits(g, HEARTH_CONSUMER_PLANNER, c), !sensitive);
		assert_false(hearth_privacy_permits(g, HEARTH_CONSUMER_LEARNER, c));
		assert_false(hearth_privacy_permits(g, HEARTH_CONSUMER_EXPORT, c));
		assert_int_equal(hearth_privacy_permits(g, HEARTH_CONSUMER_SUGGESTIONS, c),
		                 c == HEARTH_CLASS_DEVICE || c == HEARTH_CLASS_ENVIRONMENT);
	}
	assert_true(hearth_privacy_allowed(g, HEARTH_CONSUMER_PLANNER, "sensor.motion"));
	assert_true(hearth_privacy_allowed(g, HEARTH_CONSUMER_PLANNER, "media.volume"));
	assert_false(hearth_privacy_allowed(g, HEARTH_CONSUMER_PLANNER, "camera.snapshot"));
	assert_false(hearth_privacy_allowed(g, HEARTH_CONSUMER_LEARNER, "motion"));
	assert_false(hearth_privacy_allowed(g, HEARTH_CONSUMER_EXPORT, "temperature"));
	assert_true(hearth_privacy_allowed(g, HEARTH_CONSUMER_SUGGESTIONS, "temperature"));
	assert_false(hearth_privacy_allowed(g, (enum hearth_consumer)99, "temperature"));
	hearth_privacy_free(g);
}

static void
test_grants(void **state)
{
	hearth_privacy *g = hearth_privacy_new();
	char scope[64];

	(void)state;
	hearth_privacy_scope(HEARTH_CONSUMER_LEARNER, HEARTH_CLASS_PRESENCE, scope, sizeof(scope));
	assert_string_equal(scope, "class:presence/learner");
	assert_int_equal(hearth_privacy_grant_scope(g, scope), 0);
	assert_true(hearth_privacy_allowed(g, HEARTH_CONSUMER_LEARNER, "sensor.occupancy"));
	assert_false(hearth_privacy_allowed(g, HEARTH_CONSUMER_LEARNER, "temperature"));
	assert_int_equal(hearth_privacy_grant_scope(g, "class:camera/planner"), 0);
	assert_true(hearth_privacy_allowed(g, HEARTH_CONSUMER_PLANNER, "camera.stream"));

	/* other scopes are not ours */
	assert_int_equal(hearth_privacy_grant_scope(g, "recipe:scene.movie_night"),
	                 HEARTH_E_INVALID);
	assert_int_equal(hearth_privacy_grant_scope(g, "class:presence"), HEARTH_E_INVALID);
	assert_int_equal(hearth_privacy_grant_scope(g, "class:pres/learner"), HEARTH_E_INVALID);
	assert_int_equal(hearth_privacy_grant_scope(g, "class:presence/cloud"), HEARTH_E_INVALID);
	assert_int_equal(hearth_privacy_grant_scope(g, "class:presence/learner/x"),
	                 HEARTH_E_INVALID);

	/* a default switched off by configuration */
	hearth_privacy_set(g, HEARTH_CONSUMER_PLANNER, HEARTH_CLASS_PRESENCE, false);
	assert_false(hearth_privacy_allowed(g, HEARTH_CONSUMER_PLANNER, "motion"));

	/* consent revoked: reset, then grant what still holds */
	hearth_privacy_reset(g);
	assert_false(hearth_privacy_allowed(g, HEARTH_CONSUMER_LEARNER, "sensor.occupancy"));
	assert_false(hearth_privacy_allowed(g, HEARTH_CONSUMER_PLANNER, "camera.stream"));
	assert_true(hearth_privacy_allowed(g, HEARTH_CONSUMER_PLANNER, "motion"));
	hearth_privacy_free(g);
}

static void
test_counters(void **state)
{
	hearth_privacy *g = hearth_privacy_new();
	cJSON *j, *denied, *allowed;

	(void)state;
	for (int i = 0; i < 3; i++)
		hearth_privacy_allowed(g, HEARTH_CONSUMER_LEARNER, "sensor.motion");
	hearth_privacy_allowed(g, HEARTH_CONSUMER_LEARNER, "contact");
	hearth_privacy_allowed(g, HEARTH_CONSUMER_EXPORT, "camera.snapshot");
	hearth_privacy_allowed(g, HEARTH_CONSUMER_PLANNER, "motion");
	assert_int_equal(hearth_privacy_denied(g, HEARTH_CONSUMER_LEARNER, HEARTH_CLASS_PRESENCE),
	                 4);
	assert_int_equal(hearth_privacy_denied(g, HEARTH_CONSUMER_EXPORT, HEARTH_CLASS_CAMERA), 1);
	assert_int_equal(hearth_privacy_denied(g, HEARTH_CONSUMER_PLANNER, HEARTH_CLASS_PRESENCE),
	                 0);
	assert_int_equal(hearth_privacy_denied_total(g), 5);

	/* counters survive a reset (consents reloaded) */
	hearth_privacy_reset(g);
	assert_int_equal(hearth_privacy_denied_total(g), 5);

	j = hearth_privacy_health_json(g);
	assert_non_null(j);
	assert_int_equal(cJSON_GetObjectItem(j, "checks")->valueint, 6);
	assert_int_equal(cJSON_GetObjectItem(j, "denied_total")->valueint, 5);
	denied = cJSON_GetObjectItem(j, "denied");
	assert_int_equal(cJSON_GetArraySize(denied), 2);
	assert_int_equal(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(denied, "learner"), "presence")->valueint,
	        4);
	assert_int_equal(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(denied, "export"), "camera")->valueint, 1);
	assert_null(cJSON_GetObjectItem(denied, "planner"));
	allowed = cJSON_GetObjectItem(j, "allowed");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(allowed, "planner")), 6);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(allowed, "learner")), 0);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(allowed, "suggestions")), 2);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(allowed, "export")), 0);
	cJSON_Delete(j);

	/* out of memory: NULL, nothing leaks */
	for (long n = 0; n < 40; n++) {
		hearth_alloc_fail_after(n);
		j = hearth_privacy_health_json(g);
		hearth_alloc_fail_after(-1);
		cJSON_Delete(j);
	}
	hearth_privacy_free(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_classes),
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_grants),
	        cmocka_unit_test(test_counters),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
