/*
 * mqtt.h - hearth's MQTT adapter on libmosquitto, driven by the caller's event
 * loop: no libmosquitto thread, no mosquitto_loop(). The caller watches
 * hearth_mqtt_socket() for reading (and for writing while
 * hearth_mqtt_want_write()), and calls hearth_mqtt_misc() about once a second
 * for keepalives. MQTT v5, TCP_NODELAY, optional persistent session,
 * optional username/password and TLS (CA, client certificate).
 *
 * Callbacks run inside hearth_mqtt_read()/_write()/_misc(); they may publish.
 */
#ifndef HEARTH_PLATFORM_MQTT_H
#define HEARTH_PLATFORM_MQTT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct hearth_mqtt hearth_mqtt;

struct hearth_mqtt_opts {
	const char *host;
	int port;
	const char *client_id;   /* fixed id, so the broker keeps our session */
	int keepalive;           /* seconds */
	bool clean_start;        /* false: resume the broker's session */
	uint32_t session_expiry; /* seconds the broker keeps the session after a disconnect */
	const char *username;    /* NULL: anonymous */
	const char *password;
	/* TLS to the broker when tls_ca_file is set: the broker's certificate
	 * must chain to this CA and match host (no way to skip the check).
	 * tls_cert_file and tls_key_file (PEM, key not encrypted): a client
	 * certificate, both or neither. */
	const char *tls_ca_file;
	const char *tls_cert_file;
	const char *tls_key_file;
	const char *will_topic; /* NULL: no last will */
	const char *will_payload;
	bool will_retain;
};

/* An inbound message; every pointer is valid during the callback only. */
struct hearth_mqtt_msg {
	const char *topic;
	const void *payload;
	int len;
	int qos;
	bool retain;
	const char *response_topic; /* MQTT v5 response topic, or NULL */
	const void *corr;           /* MQTT v5 correlation data, or NULL */
	int corr_len;
};

struct hearth_mqtt_cb {
	/* rc 0: connected (session_present tells whether the broker kept ours);
	 * else the broker refused (reason code). */
	void (*on_connect)(void *ud, int rc, bool session_present);
	/* The connection is gone (rc 0: we asked for it). */
	void (*on_disconnect)(void *ud, int rc);
	void (*on_message)(void *ud, const struct hearth_mqtt_msg *msg);
	void *ud;
};

/* Once per process, before anything else here / at exit. */
void hearth_mqtt_lib_init(void);
void hearth_mqtt_lib_cleanup(void);

/* Make a client (not yet connected). Strings in opts are copied. Returns 0 or
 * a negative hearth error. The caller frees it with hearth_mqtt_free. */
int hearth_mqtt_new(const struct hearth_mqtt_opts *opts, const struct hearth_mqtt_cb *cb,
                    hearth_mqtt **out);
void hearth_mqtt_free(hearth_mqtt *m);

/* Open the TCP connection and queue CONNECT (first time and after a loss).
 * Returns 0 or a negative error; the CONNACK arrives through on_connect. */
int hearth_mqtt_connect(hearth_mqtt *m);
/* Replace the last will's payload (topic, QoS 1 and retain as in opts); it
 * takes effect at the next hearth_mqtt_connect(). Returns 0 or an error. */
int hearth_mqtt_set_will(hearth_mqtt *m, const char *payload);
/* Send DISCONNECT (the broker then drops the last will). */
int hearth_mqtt_disconnect(hearth_mqtt *m);

int hearth_mqtt_socket(const hearth_mqtt *m); /* -1 when not connected */
bool hearth_mqtt_want_write(hearth_mqtt *m);
/* Socket readable / writable / once a second. Return 0, or a negative error
 * when the connection was lost (on_disconnect has run). */
int hearth_mqtt_read(hearth_mqtt *m);
int hearth_mqtt_write(hearth_mqtt *m);
int hearth_mqtt_misc(hearth_mqtt *m);

/* Queue a publish. corr (MQTT v5 correlation data) may be NULL. Returns 0 or
 * a negative error. */
int hearth_mqtt_publish(hearth_mqtt *m, const char *topic, const void *payload, int len, int qos,
                        bool retain, const void *corr, int corr_len);
int hearth_mqtt_subscribe(hearth_mqtt *m, const char *pattern, int qos);

/* Text for a reason code given to on_connect/on_disconnect. */
const char *hearth_mqtt_reason(int rc);

#endif
