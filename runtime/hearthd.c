/*
 * hearthd.c - the daemon's entry point: configuration (defaults, then the
 * JSON file, then flags), logging, then the hub until SIGTERM/SIGINT.
 *
 * Exit status: 0 after a clean stop, 1 when the hub fails, 2 for a usage or
 * configuration error (with a one-line reason on stderr).
 */
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/mqtt.h"
#include "runtime/config.h"
#include "runtime/hub.h"

#include "platform/id.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: hearthd [--config FILE] [--broker HOST:PORT] [--home ID] [--data DIR]\n"
	        "               [--recipes DIR] [--log-level LEVEL] [--syslog]\n"
	        "\n"
	        "The hearth home-hub daemon. Settings come from the defaults, then the JSON\n"
	        "file (%s if it exists, or --config FILE), then these flags.\n"
	        "Stop it with SIGTERM or SIGINT. See docs/configuration.md.\n",
	        HEARTH_CONFIG_DEFAULT_FILE);
}

static int
set_flag(char **dst, const char *value)
{
	char *s;

	if (!value)
		return 0;
	if (!(s = hearth_strdup(value)))
		return -ENOMEM;
	hearth_free(*dst);
	*dst = s;
	return 0;
}

static void
warn_line(const char *line)
{
	LOG_WARN("config", "%s", line);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"broker", required_argument, NULL, 'b'},
	        {"home", required_argument, NULL, 'H'},
	        {"data", required_argument, NULL, 'd'},
	        {"recipes", required_argument, NULL, 'r'},
	        {"log-level", required_argument, NULL, 'l'},
	        {"syslog", no_argument, NULL, 's'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	const char *file = NULL, *broker = NULL, *home = NULL, *data = NULL, *recipes = NULL,
	           *level = NULL;
	bool syslog_flag = false;
	struct hearth_config cfg;
	hearth_hub *hub = NULL;
	char why[512];
	int c, rc;

	while ((c = getopt_long(argc, argv, "c:b:H:d:r:l:shV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			file = optarg;
			break;
		case 'b':
			broker = optarg;
			break;
		case 'H':
			home = optarg;
			break;
		case 'd':
			data = optarg;
			break;
		case 'r':
			recipes = optarg;
			break;
		case 'l':
			level = optarg;
			break;
		case 's':
			syslog_flag = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("hearthd %s\n", HEARTH_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "hearthd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	hearth_alloc_init();
	if (hearth_config_defaults(&cfg)) {
		fprintf(stderr, "hearthd: out of memory\n");
		return 1;
	}
	rc = hearth_config_load(&cfg, file ? file : HEARTH_CONFIG_DEFAULT_FILE, file != NULL,
	                        warn_line, why, sizeof(why));
	if (!rc && broker)
		rc = hearth_config_set_broker(&cfg, broker, why, sizeof(why));
	if (!rc && home && !hearth_id_valid_str(home)) {
		snprintf(why, sizeof(why),
		         "--home: expected 1-64 characters of A-Z a-z 0-9 _ . -, got \"%s\"", home);
		rc = HEARTH_E_CONFIG;
	}
	if (!rc && level && (cfg.log_level = hearth_log_level_parse(level)) < 0) {
		snprintf(why, sizeof(why),
		         "--log-level: expected error, warn, info, debug or trace, got \"%s\"",
		         level);
		rc = HEARTH_E_CONFIG;
	}
	if (!rc && (set_flag(&cfg.home, home) || set_flag(&cfg.data_dir, data) ||
	            set_flag(&cfg.recipes_dir, recipes))) {
		snprintf(why, sizeof(why), "out of memory");
		rc = -ENOMEM;
	}
	if (!rc && !cfg.mqtt_client_id) {
		char id[96];

		snprintf(id, sizeof(id), "hearth-%s", cfg.home);
		if (set_flag(&cfg.mqtt_client_id, id))
			rc = -ENOMEM;
	}
	if (rc) {
		fprintf(stderr, "hearthd: %s\n", why);
		hearth_config_free(&cfg);
		return 2;
	}
	hearth_log_set_level(cfg.log_level);
	if (syslog_flag || cfg.log_syslog)
		hearth_log_use_syslog("hearthd");
	hearth_mqtt_lib_init();
	rc = hearth_hub_new(&cfg, &hub, why, sizeof(why));
	if (rc) {
		LOG_ERR("hearthd", "%s", why);
		if (syslog_flag || cfg.log_syslog)
			fprintf(stderr, "hearthd: %s\n", why);
		rc = 1;
		goto out;
	}
	rc = hearth_hub_run(hub) ? 1 : 0;
out:
	hearth_hub_free(hub);
	hearth_mqtt_lib_cleanup();
	hearth_config_free(&cfg);
	return rc;
}
