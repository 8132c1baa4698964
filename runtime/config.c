/*
 * config.c - defaults, the JSON file and validation (see config.h).
 *
 * The file is described by one table of keys: each entry says where the
 * value goes, its type and bounds. Loading walks the table, so adding a key
 * is adding a row, and every error names the file, the key and what was
 * expected.
 */
#include "runtime/config.h"

#include "hearth_config.h"
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/id.h"
#include "platform/json.h"
#include "platform/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_FILE_MAX (1 << 20)

#ifndef HEARTH_RECIPES_DIR
#define HEARTH_RECIPES_DIR "/usr/share/hearth/recipes"
#endif

enum kind { K_STR, K_INT, K_LONG, K_NUM, K_BOOL, K_LEVEL, K_BROKER, K_ID };

struct key {
	const char *path; /* "mqtt.keepalive" */
	enum kind kind;
	size_t off;
	long min, max;
};

#define OFF(f) offsetof(struct hearth_config, f)

static const struct key keys[] = {
        {"home", K_ID, OFF(home), 0, 0},
        {"broker", K_BROKER, 0, 0, 0},
        {"data_dir", K_STR, OFF(data_dir), 0, 0},
        {"recipes_dir", K_STR, OFF(recipes_dir), 0, 0},
        {"log.level", K_LEVEL, OFF(log_level), 0, 0},
        {"log.syslog", K_BOOL, OFF(log_syslog), 0, 0},
        {"mqtt.client_id", K_STR, OFF(mqtt_client_id), 0, 0},
        {"mqtt.username", K_STR, OFF(mqtt_username), 0, 0},
        {"mqtt.password", K_STR, OFF(mqtt_password), 0, 0},
        {"mqtt.keepalive", K_INT, OFF(mqtt_keepalive), 5, 3600},
        {"mqtt.session_expiry", K_INT, OFF(mqtt_session_expiry), 0, 2147483647},
        {"limits.max_payload", K_INT, OFF(max_payload), 256, CONFIG_HEARTH_MAX_PAYLOAD},
        {"limits.max_plans", K_INT, OFF(max_plans), 1, CONFIG_HEARTH_MAX_PLANS},
        {"plan.retries", K_INT, OFF(step_retries), 0, 10},
        {"plan.retry_backoff_ms", K_INT, OFF(retry_backoff_ms), 10, 60000},
        {"plan.alternatives", K_INT, OFF(plan_alternatives), 1, 8},
        {"approvals.expiry_s", K_INT, OFF(approval_expiry_s), 5, 86400},
        {"approvals.ts_window_s", K_INT, OFF(approval_ts_window_s), 5, 86400},
        {"approvals.preapprove_after", K_INT, OFF(preapprove_after), 0, 100},
        {"plan.weights.latency", K_NUM, OFF(plan_weights[0]), 0, 100},
        {"plan.weights.friction", K_NUM, OFF(plan_weights[1]), 0, 100},
        {"plan.weights.comfort", K_NUM, OFF(plan_weights[2]), 0, 100},
        {"plan.weights.privacy", K_NUM, OFF(plan_weights[3]), 0, 100},
        {"plan.weights.energy", K_NUM, OFF(plan_weights[4]), 0, 100},
        {"plan.resume_settle_ms", K_INT, OFF(resume_settle_ms), 0, 60000},
        {"trace.runs", K_INT, OFF(trace_runs), 1, 10000},
        {"store.sync", K_BOOL, OFF(store_sync), 0, 0},
        {"store.map_size_mb", K_INT, OFF(store_map_mb), 1, 65536},
        {"store.map_max_mb", K_INT, OFF(store_map_max_mb), 1, 65536},
        {"store.episodes_max", K_LONG, OFF(episodes_max), 10, 100000000},
        {"store.episodes_max_age_days", K_INT, OFF(episodes_max_age_days), 0, 36500},
        {"store.maintenance_s", K_INT, OFF(maintenance_s), 10, 86400},
        {"audit.keep_days", K_INT, OFF(audit_keep_days), 1, 36500},
        {"audit.keep_min", K_LONG, OFF(audit_keep_min), 0, 100000000},
        {"audit.key_file", K_STR, OFF(audit_key_file), 0, 0},
        {"constraints.file", K_STR, OFF(constraints_file), 0, 0},
        {"coap.enabled", K_BOOL, OFF(coap_enabled), 0, 0},
        {"coap.listen", K_STR, OFF(coap_listen), 0, 0},
        {"devices_file", K_STR, OFF(devices_file), 0, 0},
        {"zigbee2mqtt.enabled", K_BOOL, OFF(z2m_enabled), 0, 0},
        {"zigbee2mqtt.base_topic", K_STR, OFF(z2m_base_topic), 0, 0},
        {"zigbee2mqtt.max_devices_payload", K_INT, OFF(z2m_max_devices_payload), 65536, 64 << 20},
        {"homeassistant.enabled", K_BOOL, OFF(ha_enabled), 0, 0},
        {"homeassistant.prefix", K_STR, OFF(ha_prefix), 0, 0},
        /* Trust (issue 7): rate limits, broker credentials and TLS. */
        {"limits.intent_rate", K_INT, OFF(intent_rate), 0, 100000},
        {"limits.intent_burst", K_INT, OFF(intent_burst), 1, 100000},
        {"limits.approval_rate", K_INT, OFF(approval_rate), 0, 100000},
        {"limits.approval_burst", K_INT, OFF(approval_burst), 1, 100000},
        {"limits.rate_sources", K_INT, OFF(rate_sources), 16, 1 << 20},
        {"mqtt.password_file", K_STR, OFF(mqtt_password_file), 0, 0},
        {"mqtt.tls_ca_file", K_STR, OFF(mqtt_tls_ca_file), 0, 0},
        {"mqtt.tls_cert_file", K_STR, OFF(mqtt_tls_cert_file), 0, 0},
        {"mqtt.tls_key_file", K_STR, OFF(mqtt_tls_key_file), 0, 0},
};

int
hearth_config_defaults(struct hearth_config *c)
{
	memset(c, 0, sizeof(*c));
	c->home = hearth_strdup("home");
	c->broker_host = hearth_strdup("localhost");
	c->broker_port = CONFIG_HEARTH_DEFAULT_PORT;
	c->data_dir = hearth_strdup(geteuid() == 0 ? "/var/lib/hearth" : "./hearth-data");
	c->recipes_dir = hearth_strdup(HEARTH_RECIPES_DIR);
	c->log_level = HEARTH_LOG_INFO;
	c->mqtt_keepalive = 30;
	c->mqtt_session_expiry = 7 * 24 * 3600;
	c->max_payload = CONFIG_HEARTH_MAX_PAYLOAD;
	c->max_plans = CONFIG_HEARTH_MAX_PLANS;
	c->step_retries = 2;
	c->retry_backoff_ms = 500;
	c->plan_alternatives = 3;
	c->approval_expiry_s = 120;
	c->approval_ts_window_s = 300;
	c->preapprove_after = 3;
	c->plan_weights[0] = 1.0; /* latency */
	c->plan_weights[1] = 1.0; /* friction */
	c->plan_weights[2] = 1.0; /* comfort */
	c->plan_weights[3] = 1.0; /* privacy */
	c->plan_weights[4] = 0.5; /* energy */
	c->resume_settle_ms = 1000;
	c->trace_runs = 20;
	c->store_sync = true;
	c->store_map_mb = CONFIG_HEARTH_STORE_MAP_MB;
	c->store_map_max_mb = 4 * CONFIG_HEARTH_STORE_MAP_MB;
	c->episodes_max = CONFIG_HEARTH_EPISODES_MAX;
	c->episodes_max_age_days = 365;
	c->maintenance_s = 600;
	c->audit_keep_days = CONFIG_HEARTH_AUDIT_KEEP_DAYS;
	c->audit_keep_min = CONFIG_HEARTH_AUDIT_KEEP_MIN;
	c->z2m_enabled = true;
	c->z2m_base_topic = hearth_strdup("zigbee2mqtt");
	c->z2m_max_devices_payload = 4 << 20;
	c->ha_enabled = true;
	c->ha_prefix = hearth_strdup("homeassistant");
	c->coap_enabled = true;
	c->coap_listen = hearth_strdup("[::]:5683");
	c->intent_rate = 20;
	c->intent_burst = 40;
	c->approval_rate = 2;
	c->approval_burst = 10;
	c->rate_sources = 1024;
	if (!c->home || !c->broker_host || !c->data_dir || !c->recipes_dir || !c->z2m_base_topic ||
	    !c->ha_prefix || !c->coap_listen) {
		hearth_config_free(c);
		return -ENOMEM;
	}
	return 0;
}

void
hearth_config_free(struct hearth_config *c)
{
	hearth_free(c->file);
	hearth_free(c->home);
	hearth_free(c->broker_host);
	hearth_free(c->data_dir);
	hearth_free(c->recipes_dir);
	hearth_free(c->mqtt_client_id);
	hearth_free(c->mqtt_username);
	hearth_free(c->mqtt_password);
	hearth_free(c->audit_key_file);
	hearth_free(c->constraints_file);
	cJSON_Delete(c->flags);
	cJSON_Delete(c->drift);
	hearth_free(c->devices_file);
	hearth_free(c->z2m_base_topic);
	hearth_free(c->ha_prefix);
	hearth_free(c->coap_listen);
	hearth_free(c->mqtt_password_file);
	hearth_free(c->mqtt_tls_ca_file);
	hearth_free(c->mqtt_tls_cert_file);
	hearth_free(c->mqtt_tls_key_file);
	memset(c, 0, sizeof(*c));
}

int
hearth_config_set_broker(struct hearth_config *c, const char *spec, char *why, size_t wl)
{
	const char *host = spec, *colon;
	size_t hlen;
	long port = CONFIG_HEARTH_DEFAULT_PORT;
	char *end, *h;

	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');

		if (!rb || rb == spec + 1 || (rb[1] && rb[1] != ':'))
			goto bad;
		host = spec + 1;
		hlen = (size_t)(rb - host);
		colon = rb[1] ? rb + 1 : NULL;
	} else {
		colon = strrchr(spec, ':');
		hlen = colon ? (size_t)(colon - spec) : strlen(spec);
		if (colon && strchr(spec, ':') != colon)
			goto bad; /* a bare IPv6 address needs brackets */
	}
	if (hlen == 0 || hlen > 253)
		goto bad;
	if (colon) {
		if (colon[1] < '0' || colon[1] > '9')
			goto bad; /* strtol would take " 1883" and "+1883" */
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
			goto bad;
	}
	h = hearth_strndup(host, hlen);
	if (!h)
		return -ENOMEM;
	hearth_free(c->broker_host);
	c->broker_host = h;
	c->broker_port = (int)port;
	return 0;
bad:
	snprintf(why, wl,
	         "broker: expected HOST, HOST:PORT or [IPv6]:PORT (port 1-65535), got \"%s\"",
	         spec);
	return HEARTH_E_CONFIG;
}

static const cJSON *
lookup(const cJSON *root, const char *path)
{
	char part[64];
	const char *dot;
	const cJSON *cur = root;

	while (cur && (dot = strchr(path, '.'))) {
		snprintf(part, sizeof(part), "%.*s", (int)(dot - path), path);
		cur = cJSON_GetObjectItemCaseSensitive(cur, part);
		if (cur && !cJSON_IsObject(cur))
			return cur; /* reported as a type error by the caller's parent check */
		path = dot + 1;
	}
	return cur ? cJSON_GetObjectItemCaseSensitive(cur, path) : NULL;
}

static bool
known_key(const char *path)
{
	if (!strcmp(path, "flags") || !strcmp(path, "drift"))
		return true; /* passed whole to the context agent, which checks them */
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].path, path))
			return true;
	return false;
}

static void
warn_unknown(const cJSON *obj, const char *prefix, const char *file, void (*warn)(const char *line))
{
	const cJSON *it;

	cJSON_ArrayForEach(it, obj)
	{
		char path[128], line[256];

		snprintf(path, sizeof(path), "%s%s", prefix, it->string);
		if (known_key(path))
			continue;
		if (cJSON_IsObject(it) && !prefix[0]) {
			char sub[130];
			bool section = false;

			snprintf(sub, sizeof(sub), "%s.", path);
			for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
				section = section || !strncmp(keys[i].path, sub, strlen(sub));
			if (section) {
				warn_unknown(it, sub, file, warn);
				continue;
			}
		}
		snprintf(line, sizeof(line),
		         "%s: %s: unknown key, ignored (see docs/configuration.md)", file, path);
		warn(line);
	}
}

static int
apply(struct hearth_config *c, const struct key *k, const cJSON *v, const char *file, char *why,
      size_t wl)
{
	char *base = (char *)c;
	char got[48];

	if (cJSON_IsString(v))
		snprintf(got, sizeof(got), "\"%.40s\"", v->valuestring);
	else
		snprintf(got, sizeof(got), "%s", hearth_json_type_name(v));
	switch (k->kind) {
	case K_STR:
	case K_ID: {
		char **dst = (char **)(base + k->off), *s;

		if (!cJSON_IsString(v) || !v->valuestring[0])
			goto bad_str;
		if (k->kind == K_ID && !hearth_id_valid_str(v->valuestring)) {
			snprintf(why, wl,
			         "%s: %s: expected 1-64 characters of A-Z a-z 0-9 _ . -, got %s",
			         file, k->path, got);
			return HEARTH_E_CONFIG;
		}
		if (!(s = hearth_strdup(v->valuestring)))
			return -ENOMEM;
		hearth_free(*dst);
		*dst = s;
		return 0;
	}
	case K_BROKER: {
		char sub[200];

		if (!cJSON_IsString(v))
			goto bad_str;
		if (hearth_config_set_broker(c, v->valuestring, sub, sizeof(sub))) {
			snprintf(why, wl, "%s: %s", file, sub);
			return HEARTH_E_CONFIG;
		}
		return 0;
	}
	case K_INT:
	case K_LONG:
		if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long long)v->valuedouble ||
		    v->valuedouble < k->min || v->valuedouble > k->max) {
			snprintf(why, wl, "%s: %s: expected a whole number from %ld to %ld, got %s",
			         file, k->path, k->min, k->max, got);
			if (cJSON_IsNumber(v))
				snprintf(why, wl,
				         "%s: %s: expected a whole number from %ld to %ld, got %g",
				         file, k->path, k->min, k->max, v->valuedouble);
			return HEARTH_E_CONFIG;
		}
		if (k->kind == K_INT)
			*(int *)(base + k->off) = (int)v->valuedouble;
		else
			*(long *)(base + k->off) = (long)v->valuedouble;
		return 0;
	case K_NUM:
		if (!cJSON_IsNumber(v) || v->valuedouble < k->min || v->valuedouble > k->max) {
			snprintf(why, wl, "%s: %s: expected a number from %ld to %ld, got %s", file,
			         k->path, k->min, k->max, got);
			if (cJSON_IsNumber(v))
				snprintf(why, wl,
				         "%s: %s: expected a number from %ld to %ld, got %g", file,
				         k->path, k->min, k->max, v->valuedouble);
			return HEARTH_E_CONFIG;
		}
		*(double *)(base + k->off) = v->valuedouble;
		return 0;
	case K_BOOL:
		if (!cJSON_IsBool(v)) {
			snprintf(why, wl, "%s: %s: expected true or false, got %s", file, k->path,
			         got);
			return HEARTH_E_CONFIG;
		}
		*(bool *)(base + k->off) = cJSON_IsTrue(v);
		return 0;
	case K_LEVEL: {
		int lvl = cJSON_IsString(v) ? hearth_log_level_parse(v->valuestring) : -1;

		if (lvl < 0) {
			snprintf(why, wl,
			         "%s: %s: expected \"error\", \"warn\", \"info\", \"debug\" or "
			         "\"trace\", got %s",
			         file, k->path, got);
			return HEARTH_E_CONFIG;
		}
		*(int *)(base + k->off) = lvl;
		return 0;
	}
	}
	return 0;
bad_str:
	snprintf(why, wl, "%s: %s: expected a non-empty string, got %s", file, k->path, got);
	return HEARTH_E_CONFIG;
}

/* A section handed whole to the agent that checks it (flags, drift). */
static int
take_section(const cJSON *root, const char *key, cJSON_bool (*is)(const cJSON *const),
             const char *what, cJSON **dst, const char *file, char *why, size_t wl)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);

	if (!v || cJSON_IsNull(v))
		return 0;
	if (!is(v)) {
		snprintf(why, wl, "%s: %s: expected %s, got %s", file, key, what,
		         hearth_json_type_name(v));
		return HEARTH_E_CONFIG;
	}
	cJSON_Delete(*dst);
	*dst = cJSON_Duplicate(v, 1);
	return *dst ? 0 : -ENOMEM;
}

static int
read_all(const char *path, char **out, size_t *len)
{
	struct stat sb;
	char *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_size > CONFIG_FILE_MAX) {
		close(fd);
		return HEARTH_E_TOO_LARGE;
	}
	buf = hearth_malloc((size_t)sb.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, buf, (size_t)sb.st_size);
	close(fd);
	if (n < 0 || n != sb.st_size) {
		hearth_free(buf);
		return -EIO;
	}
	buf[n] = '\0';
	*out = buf;
	*len = (size_t)n;
	return 0;
}

/* The first line of a password file, without its line end; warns when others may read it. */
static int
read_password(struct hearth_config *c, const char *file, void (*warn)(const char *line), char *why,
              size_t wl)
{
	char *text = NULL, line[320];
	struct stat sb;
	size_t len = 0, n;
	int rc = read_all(c->mqtt_password_file, &text, &len);

	if (rc) {
		snprintf(why, wl, "%s: mqtt.password_file: cannot read %s: %s", file,
		         c->mqtt_password_file,
		         rc == HEARTH_E_TOO_LARGE ? "not a regular file of at most 1 MiB"
		                                  : hearth_strerror(rc));
		return HEARTH_E_CONFIG;
	}
	n = strcspn(text, "\r\n");
	if (!n || n > 256) {
		snprintf(why, wl,
		         "%s: mqtt.password_file: %s: expected the password (1-256 bytes) "
		         "on the first line",
		         file, c->mqtt_password_file);
		explicit_bzero(text, len);
		hearth_free(text);
		return HEARTH_E_CONFIG;
	}
	hearth_free(c->mqtt_password);
	c->mqtt_password = hearth_strndup(text, n);
	explicit_bzero(text, len);
	hearth_free(text);
	if (!c->mqtt_password)
		return -ENOMEM;
	if (warn && !stat(c->mqtt_password_file, &sb) && (sb.st_mode & 077)) {
		snprintf(line, sizeof(line),
		         "%s: mqtt.password_file: %s may be read by others (mode %03o): chmod 600 "
		         "it",
		         file, c->mqtt_password_file, (unsigned)(sb.st_mode & 0777));
		warn(line);
	}
	return 0;
}

/* Keys that only make sense together; files that must be readable. */
static int
check_broker_auth(struct hearth_config *c, const char *file, void (*warn)(const char *line),
                  char *why, size_t wl)
{
	const char *const tls[] = {c->mqtt_tls_ca_file, c->mqtt_tls_cert_file,
	                           c->mqtt_tls_key_file};
	const char *const names[] = {"mqtt.tls_ca_file", "mqtt.tls_cert_file", "mqtt.tls_key_file"};

	if (c->mqtt_password && c->mqtt_password_file) {
		snprintf(why, wl, "%s: mqtt.password and mqtt.password_file: give one of them",
		         file);
		return HEARTH_E_CONFIG;
	}
	if ((c->mqtt_password || c->mqtt_password_file) && !c->mqtt_username) {
		snprintf(why, wl, "%s: a broker password needs mqtt.username", file);
		return HEARTH_E_CONFIG;
	}
	if (!c->mqtt_tls_cert_file != !c->mqtt_tls_key_file) {
		snprintf(why, wl, "%s: mqtt.tls_cert_file and mqtt.tls_key_file go together", file);
		return HEARTH_E_CONFIG;
	}
	if (c->mqtt_tls_cert_file && !c->mqtt_tls_ca_file) {
		snprintf(why, wl,
		         "%s: a client certificate needs mqtt.tls_ca_file (the broker's CA)", file);
		return HEARTH_E_CONFIG;
	}
	for (int i = 0; i < 3; i++)
		if (tls[i] && access(tls[i], R_OK)) {
			snprintf(why, wl, "%s: %s: cannot read %s: %s", file, names[i], tls[i],
			         strerror(errno));
			return HEARTH_E_CONFIG;
		}
	return c->mqtt_password_file ? read_password(c, file, warn, why, wl) : 0;
}

int
hearth_config_load(struct hearth_config *c, const char *path, bool must_exist,
                   void (*warn)(const char *line), char *why, size_t wl)
{
	char *text = NULL, jwhy[96];
	size_t len = 0;
	cJSON *root = NULL;
	int rc;

	rc = read_all(path, &text, &len);
	if (rc == -ENOENT && !must_exist)
		return 0;
	if (rc) {
		snprintf(why, wl, "%s: cannot read: %s", path,
		         rc == HEARTH_E_TOO_LARGE ? "not a regular file of at most 1 MiB"
		                                  : hearth_strerror(rc));
		return HEARTH_E_CONFIG;
	}
	rc = hearth_json_parse(text, len, &root, jwhy, sizeof(jwhy));
	hearth_free(text);
	if (rc) {
		snprintf(why, wl, "%s: %s", path,
		         rc == HEARTH_E_BAD_JSON ? jwhy : hearth_strerror(rc));
		return HEARTH_E_CONFIG;
	}
	if (!cJSON_IsObject(root)) {
		snprintf(why, wl, "%s: expected a JSON object at the top", path);
		rc = HEARTH_E_CONFIG;
		goto out;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && !rc; i++) {
		const char *dot = strchr(keys[i].path, '.');
		const cJSON *v;

		if (dot) {
			char sec[32];
			const cJSON *so;

			snprintf(sec, sizeof(sec), "%.*s", (int)(dot - keys[i].path), keys[i].path);
			so = cJSON_GetObjectItemCaseSensitive(root, sec);
			if (so && !cJSON_IsObject(so)) {
				snprintf(why, wl, "%s: %s: expected an object of settings, got %s",
				         path, sec, hearth_json_type_name(so));
				rc = HEARTH_E_CONFIG;
				break;
			}
		}
		v = lookup(root, keys[i].path);
		if (v && !cJSON_IsNull(v))
			rc = apply(c, &keys[i], v, path, why, wl);
	}
	if (!rc)
		rc = take_section(root, "flags", cJSON_IsArray, "an array of flag definitions",
		                  &c->flags, path, why, wl);
	if (!rc)
		rc = take_section(root, "drift", cJSON_IsObject, "an object of drift settings",
		                  &c->drift, path, why, wl);
	if (!rc && warn)
		warn_unknown(root, "", path, warn);
	if (!rc)
		rc = check_broker_auth(c, path, warn, why, wl);
	if (!rc) {
		char *f = hearth_strdup(path);

		if (!f) {
			rc = -ENOMEM;
			goto out;
		}
		hearth_free(c->file);
		c->file = f;
	}
out:
	cJSON_Delete(root);
	return rc;
}
