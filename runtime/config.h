/*
 * config.h - hearthd's run-time configuration (DESIGN.md section 6):
 * defaults, then the JSON file, then command-line flags. Every key of the
 * file is optional. docs/configuration.md lists them; keep the two in step.
 */
#ifndef HEARTH_RUNTIME_CONFIG_H
#define HEARTH_RUNTIME_CONFIG_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define HEARTH_CONFIG_DEFAULT_FILE "/etc/hearth/hearth.json"

struct hearth_config {
	char *file; /* the file read, or NULL */
	char *home; /* home id: topics are hearth/<home>/... */
	char *broker_host;
	int broker_port;
	char *data_dir;
	char *recipes_dir;
	int log_level; /* enum hearth_log_level */
	bool log_syslog;
	char *mqtt_client_id; /* default hearth-<home> */
	char *mqtt_username;
	char *mqtt_password;
	int mqtt_keepalive;      /* s */
	int mqtt_session_expiry; /* s the broker keeps our session (and queued intents) */
	int max_payload;         /* bytes */
	int max_plans;
	int step_retries;
	int retry_backoff_ms;
	int plan_alternatives;  /* candidate plans kept and shown (plan.alternatives) */
	double plan_weights[5]; /* plan.weights.*: latency, friction, comfort, privacy, energy */
	int resume_settle_ms;   /* after a restart: wait for device states before resuming plans */
	int trace_runs;         /* hearthctl trace: runs of a recipe shown by default */
	int approval_expiry_s;  /* approvals.expiry_s: how long a request waits */
	int approval_ts_window_s; /* approvals.ts_window_s: accepted clock skew of a response */
	int preapprove_after;     /* approvals.preapprove_after: K approvals -> standing */
	bool store_sync;
	int maintenance_s;         /* s between maintenance runs (retention, usage check) */
	int episodes_max_age_days; /* 0: no age limit */
	int audit_keep_days;
	long audit_keep_min;
	char *audit_key_file;   /* seal key (CONFIG_HEARTH_AUDIT_SEAL), or NULL */
	char *constraints_file; /* hard rules loaded at start, or NULL */
	cJSON *flags;           /* the "flags" array (derived flags), or NULL for the built-ins */
	cJSON *drift;           /* the "drift" object (drift sentinel settings), or NULL */
	int store_map_mb;
	int store_map_max_mb;
	long episodes_max;
	char *devices_file;          /* rooms of ecosystem devices, or NULL */
	bool z2m_enabled;            /* the Zigbee2MQTT binding runs */
	char *z2m_base_topic;        /* "zigbee2mqtt" */
	int z2m_max_devices_payload; /* bytes of <base>/bridge/devices */
	bool ha_enabled;             /* the Home Assistant discovery binding runs */
	char *ha_prefix;             /* "homeassistant" */
	bool coap_enabled;           /* the CoAP endpoint and CoAP devices run (when built in) */
	char *coap_listen;           /* "[::]:5683": UDP address of the CoAP endpoint */
	/* Per-source token buckets: tokens per second (0: no limit) and burst. */
	int intent_rate, intent_burst;
	int approval_rate, approval_burst;
	int rate_sources;         /* buckets kept per limiter (least recently used forgotten) */
	char *mqtt_password_file; /* the broker password's file (first line), or NULL */
	char *mqtt_tls_ca_file;   /* TLS to the broker when set: the CA to trust */
	char *mqtt_tls_cert_file; /* client certificate and its key, both or neither */
	char *mqtt_tls_key_file;
};

/* Fill defaults. Returns 0 or -ENOMEM. */
int hearth_config_defaults(struct hearth_config *c);
void hearth_config_free(struct hearth_config *c);

/*
 * Apply a JSON file over c. Missing file: 0 when !must_exist. Any problem:
 * HEARTH_E_CONFIG with "FILE: key.path: expected ..., got ..." in why.
 * Unknown keys are reported through warn (may be NULL) and otherwise ignored.
 */
int hearth_config_load(struct hearth_config *c, const char *path, bool must_exist,
                       void (*warn)(const char *line), char *why, size_t why_len);

/* Parse "host", "host:port", "[v6]:port" into c's broker fields. */
int hearth_config_set_broker(struct hearth_config *c, const char *spec, char *why, size_t why_len);

#endif
