/*
 * test_config.c - hearthd's run-time configuration: the defaults, a file
 * that overrides every section (tests/unit/fixtures/configs/full.json), and
 * the one line a user gets when the file is wrong, which must name the
 * file, the key and what was expected. Unknown keys are warnings, not
 * errors. Error cases are written to temporary files so each test shows
 * its input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hearth_config.h"
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/log.h"
#include "runtime/config.h"

#define FIXTURES HEARTH_SOURCE_DIR "/tests/unit/fixtures/configs"

/* ==== Warnings: the callback has no user data, so they land here ==== */

static struct {
	char *v[16];
	int n;
} warned;

static void
on_warn(const char *line)
{
	if (warned.n < 16)
		warned.v[warned.n] = strdup(line);
	warned.n++;
}

static void
warned_clear(void)
{
	for (int i = 0; i < warned.n && i < 16; i++)
		free(warned.v[i]);
	warned.n = 0;
}

static int
teardown(void **state)
{
	warned_clear();
	return 0;
}

/* ==== Temporary config files ==== */

struct tmpfile {
	char path[64];
};

static void
tmp_write(struct tmpfile *t, const char *text)
{
	int fd;

	snprintf(t->path, sizeof(t->path), "/tmp/hearth-test-config-XXXXXX.json");
	fd = mkstemps(t->path, 5);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Load text over the defaults; expect an error line equal to FILE ": " want. */
static void
load_bad(const char *text, const char *want)
{
	struct hearth_config c;
	struct tmpfile t;
	char why[512] = "", full[600];

	tmp_write(&t, text);
	assert_int_equal(hearth_config_defaults(&c), 0);
	assert_int_equal(hearth_config_load(&c, t.path, true, on_warn, why, sizeof(why)),
	                 HEARTH_E_CONFIG);
	snprintf(full, sizeof(full), "%s: %s", t.path, want);
	if (strcmp(why, full))
		fail_msg("got  \"%s\"\nwant \"%s\"", why, full);
	assert_null(c.file);
	hearth_config_free(&c);
	unlink(t.path);
}

static void
load_ok(struct hearth_config *c, const char *text)
{
	struct tmpfile t;
	char why[512] = "";

	tmp_write(&t, text);
	assert_int_equal(hearth_config_defaults(c), 0);
	if (hearth_config_load(c, t.path, true, on_warn, why, sizeof(why)))
		fail_msg("refused: %s", why);
	unlink(t.path);
}

/* ==== Defaults and a full file ==== */

static void
test_defaults(void **state)
{
	struct hearth_config c;

	assert_int_equal(hearth_config_defaults(&c), 0);
	assert_null(c.file);
	assert_string_equal(c.home, "home");
	assert_string_equal(c.broker_host, "localhost");
	assert_int_equal(c.broker_port, 1883);
	assert_string_equal(c.data_dir, geteuid() == 0 ? "/var/lib/hearth" : "./hearth-data");
	assert_string_equal(c.recipes_dir, HEARTH_RECIPES_DIR);
	assert_int_equal(c.log_level, HEARTH_LOG_INFO);
	assert_false(c.log_syslog);
	assert_null(c.mqtt_client_id);
	assert_null(c.mqtt_username);
	assert_null(c.mqtt_password);
	assert_int_equal(c.mqtt_keepalive, 30);
	assert_int_equal(c.mqtt_session_expiry, 7 * 24 * 3600);
	assert_int_equal(c.max_payload, CONFIG_HEARTH_MAX_PAYLOAD);
	assert_int_equal(c.max_plans, CONFIG_HEARTH_MAX_PLANS);
	assert_int_equal(c.step_retries, 2);
	assert_int_equal(c.retry_backoff_ms, 500);
	assert_int_equal(c.resume_settle_ms, 1000);
	assert_int_equal(c.trace_runs, 20);
	assert_true(c.store_sync);
	assert_int_equal(c.store_map_mb, CONFIG_HEARTH_STORE_MAP_MB);
	assert_int_equal(c.store_map_max_mb, 4 * CONFIG_HEARTH_STORE_MAP_MB);
	assert_int_equal(c.episodes_max, CONFIG_HEARTH_EPISODES_MAX);
	hearth_config_free(&c);
	assert_null(c.home); /* free leaves a zeroed struct */
}

static void
test_full_file(void **state)
{
	struct hearth_config c;
	char why[256] = "";

	assert_int_equal(hearth_config_defaults(&c), 0);
	assert_int_equal(
	        hearth_config_load(&c, FIXTURES "/full.json", true, on_warn, why, sizeof(why)), 0);
	assert_int_equal(warned.n, 0);
	assert_string_equal(c.file, FIXTURES "/full.json");
	assert_string_equal(c.home, "cottage");
	assert_string_equal(c.broker_host, "fd00::1");
	assert_int_equal(c.broker_port, 8883);
	assert_string_equal(c.data_dir, "/srv/hearth");
	assert_string_equal(c.recipes_dir, "/srv/hearth/recipes");
	assert_int_equal(c.log_level, HEARTH_LOG_DEBUG);
	assert_true(c.log_syslog);
	assert_string_equal(c.mqtt_client_id, "hub-1");
	assert_string_equal(c.mqtt_username, "hub");
	assert_string_equal(c.mqtt_password, "s3cret");
	assert_int_equal(c.mqtt_keepalive, 60);
	assert_int_equal(c.mqtt_session_expiry, 3600);
	assert_int_equal(c.max_payload, 4096);
	assert_int_equal(c.max_plans, 8);
	assert_int_equal(c.step_retries, 3);
	assert_int_equal(c.retry_backoff_ms, 250);
	assert_false(c.store_sync);
	assert_int_equal(c.store_map_mb, 64);
	assert_int_equal(c.store_map_max_mb, 512);
	assert_int_equal(c.episodes_max, 5000);
	hearth_config_free(&c);
}

static void
test_partial_file_and_nulls(void **state)
{
	struct hearth_config c;

	/* what the file leaves out (or sets to null) keeps its default */
	load_ok(&c, "{\"mqtt\":{\"keepalive\":5},\"home\":null,\"plan\":{\"retries\":0}}");
	assert_int_equal(c.mqtt_keepalive, 5);
	assert_int_equal(c.step_retries, 0);
	assert_string_equal(c.home, "home");
	assert_int_equal(c.broker_port, 1883);
	assert_true(c.store_sync);
	hearth_config_free(&c);

	load_ok(&c, "{}");
	assert_string_equal(c.home, "home");
	assert_non_null(c.file);
	hearth_config_free(&c);
}

/* ==== Errors ==== */

static void
test_wrong_type(void **state)
{
	load_bad("{\"mqtt\":{\"keepalive\":\"30\"}}",
	         "mqtt.keepalive: expected a whole number from 5 to 3600, got \"30\"");
	load_bad("{\"store\":{\"sync\":\"yes\"}}",
	         "store.sync: expected true or false, got \"yes\"");
	load_bad("{\"log\":{\"syslog\":1}}", "log.syslog: expected true or false, got number");
	load_bad("{\"home\":5}", "home: expected a non-empty string, got number");
	load_bad("{\"data_dir\":\"\"}", "data_dir: expected a non-empty string, got \"\"");
	load_bad("{\"mqtt\":{\"password\":[\"x\"]}}",
	         "mqtt.password: expected a non-empty string, got array");
	load_bad("{\"broker\":1883}", "broker: expected a non-empty string, got number");
	load_bad("{\"mqtt\":5}", "mqtt: expected an object of settings, got number");
	load_bad("{\"store\":[]}", "store: expected an object of settings, got array");
}

static void
test_out_of_range(void **state)
{
	load_bad("{\"mqtt\":{\"keepalive\":1}}",
	         "mqtt.keepalive: expected a whole number from 5 to 3600, got 1");
	load_bad("{\"mqtt\":{\"keepalive\":30.5}}",
	         "mqtt.keepalive: expected a whole number from 5 to 3600, got 30.5");
	load_bad("{\"limits\":{\"max_plans\":0}}",
	         "limits.max_plans: expected a whole number from 1 to 1024, got 0");
	load_bad("{\"plan\":{\"retries\":11}}",
	         "plan.retries: expected a whole number from 0 to 10, got 11");
	load_bad("{\"plan\":{\"retry_backoff_ms\":-5}}",
	         "plan.retry_backoff_ms: expected a whole number from 10 to 60000, got -5");
	load_bad("{\"plan\":{\"resume_settle_ms\":60001}}",
	         "plan.resume_settle_ms: expected a whole number from 0 to 60000, got 60001");
	load_bad("{\"store\":{\"episodes_max\":5}}",
	         "store.episodes_max: expected a whole number from 10 to 100000000, got 5");
	load_bad("{\"mqtt\":{\"session_expiry\":1e12}}",
	         "mqtt.session_expiry: expected a whole number from 0 to 2147483647, got 1e+12");
}

static void
test_bad_broker(void **state)
{
	struct hearth_config c;

	load_bad("{\"broker\":\"a:b:c\"}",
	         "broker: expected HOST, HOST:PORT or [IPv6]:PORT (port 1-65535), got \"a:b:c\"");
	load_bad("{\"broker\":\"host:0\"}",
	         "broker: expected HOST, HOST:PORT or [IPv6]:PORT (port 1-65535), got \"host:0\"");

	load_ok(&c, "{\"broker\":\"[::1]:1883\"}");
	assert_string_equal(c.broker_host, "::1");
	assert_int_equal(c.broker_port, 1883);
	hearth_config_free(&c);
	load_ok(&c, "{\"broker\":\"hub.local:8883\"}");
	assert_string_equal(c.broker_host, "hub.local");
	assert_int_equal(c.broker_port, 8883);
	hearth_config_free(&c);
}

static void
test_set_broker(void **state)
{
	static const char *const bad[] = {
	        "a:b:c", "host:0",  "host:65536", "host:",  ":1883",  "host:12ab",
	        "[::1",  "[]:1883", "::1",        "[::1]x", "[::1]:", "",
	};
	struct hearth_config c;
	char why[256];

	assert_int_equal(hearth_config_defaults(&c), 0);
	assert_int_equal(hearth_config_set_broker(&c, "[::1]:1883", why, sizeof(why)), 0);
	assert_string_equal(c.broker_host, "::1");
	assert_int_equal(c.broker_port, 1883);
	assert_int_equal(hearth_config_set_broker(&c, "[fe80::2]", why, sizeof(why)), 0);
	assert_string_equal(c.broker_host, "fe80::2");
	assert_int_equal(c.broker_port, 1883);
	assert_int_equal(hearth_config_set_broker(&c, "10.0.0.2:65535", why, sizeof(why)), 0);
	assert_string_equal(c.broker_host, "10.0.0.2");
	assert_int_equal(c.broker_port, 65535);
	assert_int_equal(hearth_config_set_broker(&c, "broker", why, sizeof(why)), 0);
	assert_string_equal(c.broker_host, "broker");
	assert_int_equal(c.broker_port, 1883);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[256];

		why[0] = '\0';
		if (hearth_config_set_broker(&c, bad[i], why, sizeof(why)) != HEARTH_E_CONFIG)
			fail_msg("\"%s\" was accepted", bad[i]);
		snprintf(want, sizeof(want),
		         "broker: expected HOST, HOST:PORT or [IPv6]:PORT (port 1-65535), got "
		         "\"%s\"",
		         bad[i]);
		assert_string_equal(why, want);
		/* a refused spec changes nothing */
		assert_string_equal(c.broker_host, "broker");
		assert_int_equal(c.broker_port, 1883);
	}
	hearth_config_free(&c);
}

static void
test_broker_port_strict(void **state)
{
	static const char *const bad[] = {"host: 1883", "host:+1883", "host:\t80"};
	struct hearth_config c;
	char why[256];

	/*
	 * Regression (fixed): runtime/config.c hearth_config_set_broker() (line 133) parses the
	 * port with strtol, which skips leading white space and takes a sign, so
	 * "host: 1883" and "host:+1883" are accepted. Require the first
	 * character after ':' to be a digit.
	 */
	assert_int_equal(hearth_config_defaults(&c), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (hearth_config_set_broker(&c, bad[i], why, sizeof(why)) != HEARTH_E_CONFIG)
			fail_msg("\"%s\" was accepted", bad[i]);
	hearth_config_free(&c);
}

static void
test_bad_log_level(void **state)
{
	struct hearth_config c;

	load_bad("{\"log\":{\"level\":\"loud\"}}",
	         "log.level: expected \"error\", \"warn\", \"info\", \"debug\" or \"trace\", got "
	         "\"loud\"");
	load_bad("{\"log\":{\"level\":3}}",
	         "log.level: expected \"error\", \"warn\", \"info\", \"debug\" or \"trace\", got "
	         "number");
	load_ok(&c, "{\"log\":{\"level\":\"trace\"}}");
	assert_int_equal(c.log_level, HEARTH_LOG_TRACE);
	hearth_config_free(&c);
}

static void
test_bad_home_id(void **state)
{
	struct hearth_config c;

	load_bad("{\"home\":\"my home\"}",
	         "home: expected 1-64 characters of A-Z a-z 0-9 _ . -, got \"my home\"");
	/* '+', '#' and '/' would leak into topics */
	load_bad("{\"home\":\"a/b\"}", "home: expected 1-64 characters of A-Z a-z 0-9 _ . -, got "
	                               "\"a/b\"");
	load_bad("{\"home\":\"#\"}", "home: expected 1-64 characters of A-Z a-z 0-9 _ . -, got "
	                             "\"#\"");
	load_bad("{\"home\":\"h-0123456789012345678901234567890123456789012345678901234567890123"
	         "456789\"}",
	         "home: expected 1-64 characters of A-Z a-z 0-9 _ . -, got "
	         "\"h-01234567890123456789012345678901234567\"");
	load_ok(&c, "{\"home\":\"Flat_2.b-side\"}");
	assert_string_equal(c.home, "Flat_2.b-side");
	hearth_config_free(&c);
}

static void
test_not_an_object_or_not_json(void **state)
{
	struct hearth_config c;
	struct tmpfile t;
	char why[512] = "";

	load_bad("[1,2,3]", "expected a JSON object at the top");
	tmp_write(&t, "{\"home\": \"x\",");
	assert_int_equal(hearth_config_defaults(&c), 0);
	assert_int_equal(hearth_config_load(&c, t.path, true, NULL, why, sizeof(why)),
	                 HEARTH_E_CONFIG);
	assert_int_equal(strncmp(why, t.path, strlen(t.path)), 0);
	assert_true(strlen(why) > strlen(t.path) + 2);
	assert_string_equal(c.home, "home");
	hearth_config_free(&c);
	unlink(t.path);
}

/* ==== Unknown keys and missing files ==== */

static void
test_unknown_keys_warn(void **state)
{
	static const char *const keys[] = {"colour", "mqtt.qos", "extras", "log.format"};
	struct hearth_config c;
	char why[256] = "";

	assert_int_equal(hearth_config_defaults(&c), 0);
	assert_int_equal(
	        hearth_config_load(&c, FIXTURES "/unknown.json", true, on_warn, why, sizeof(why)),
	        0);
	/* the known keys still apply */
	assert_string_equal(c.home, "flat-2");
	assert_int_equal(c.mqtt_keepalive, 45);
	assert_int_equal(c.log_level, HEARTH_LOG_WARN);
	assert_int_equal(warned.n, 4);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char want[512];

		snprintf(want, sizeof(want), "%s: %s: unknown key", FIXTURES "/unknown.json",
		         keys[i]);
		if (!strstr(warned.v[i], want))
			fail_msg("warning %zu: \"%s\" lacks \"%s\"", i, warned.v[i], want);
	}
	hearth_config_free(&c);

	/* without a callback the warnings go nowhere, and nothing fails */
	assert_int_equal(hearth_config_defaults(&c), 0);
	assert_int_equal(
	        hearth_config_load(&c, FIXTURES "/unknown.json", true, NULL, why, sizeof(why)), 0);
	hearth_config_free(&c);
}

static void
test_missing_file(void **state)
{
	struct hearth_config c;
	char why[256] = "";
	const char *path = FIXTURES "/no-such-file.json";

	assert_int_equal(hearth_config_defaults(&c), 0);
	assert_int_equal(hearth_config_load(&c, path, false, on_warn, why, sizeof(why)), 0);
	assert_null(c.file);
	assert_string_equal(c.home, "home");

	assert_int_equal(hearth_config_load(&c, path, true, on_warn, why, sizeof(why)),
	                 HEARTH_E_CONFIG);
	assert_int_equal(strncmp(why, path, strlen(path)), 0);
	assert_non_null(strstr(why, "cannot read"));

	/* a folder is not a config file, even when the file is optional */
	assert_int_equal(hearth_config_load(&c, FIXTURES, false, on_warn, why, sizeof(why)),
	                 HEARTH_E_CONFIG);
	assert_non_null(strstr(why, "not a regular file"));
	assert_int_equal(warned.n, 0);
	hearth_config_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_defaults, teardown),
	        cmocka_unit_test_teardown(test_full_file, teardown),
	        cmocka_unit_test_teardown(test_partial_file_and_nulls, teardown),
	        cmocka_unit_test_teardown(test_wrong_type, teardown),
	        cmocka_unit_test_teardown(test_out_of_range, teardown),
	        cmocka_unit_test_teardown(test_bad_broker, teardown),
	        cmocka_unit_test_teardown(test_set_broker, teardown),
	        cmocka_unit_test_teardown(test_broker_port_strict, teardown),
	        cmocka_unit_test_teardown(test_bad_log_level, teardown),
	        cmocka_unit_test_teardown(test_bad_home_id, teardown),
	        cmocka_unit_test_teardown(test_not_an_object_or_not_json, teardown),
	        cmocka_unit_test_teardown(test_unknown_keys_warn, teardown),
	        cmocka_unit_test_teardown(test_missing_file, teardown),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
