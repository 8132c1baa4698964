/*
 * mqtt.c - the libmosquitto adapter (see mqtt.h). It owns the mosquitto
 * handle and translates libmosquitto's callbacks and error codes into
 * hearth's. It never runs a thread of its own and never blocks except in the
 * TCP connect (loopback or LAN broker: milliseconds, refused at once when
 * the broker is down).
 */
#include "platform/mqtt.h"

#include "platform/alloc.h"
#include "platform/err.h"

#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdlib.h>
#include <string.h>

struct hearth_mqtt {
	struct mosquitto *mosq;
	struct hearth_mqtt_cb cb;
	char *host;
	int port;
	int keepalive;
	uint32_t session_expiry;
	char *will_topic;
	bool will_retain;
};

static int
map_rc(int rc)
{
	switch (rc) {
	case MOSQ_ERR_SUCCESS:
		return 0;
	case MOSQ_ERR_NOMEM:
		return -ENOMEM;
	case MOSQ_ERR_NO_CONN:
	case MOSQ_ERR_CONN_LOST:
		return -ENOTCONN;
	case MOSQ_ERR_INVAL:
	case MOSQ_ERR_MALFORMED_UTF8:
		return -EINVAL;
	case MOSQ_ERR_PAYLOAD_SIZE:
	case MOSQ_ERR_OVERSIZE_PACKET:
		return -EMSGSIZE;
	case MOSQ_ERR_ERRNO:
		return errno ? -errno : -EIO;
	default:
		return -EPROTO;
	}
}

void
hearth_mqtt_lib_init(void)
{
	mosquitto_lib_init();
}

void
hearth_mqtt_lib_cleanup(void)
{
	mosquitto_lib_cleanup();
}

static void
on_connect(struct mosquitto *mosq, void *ud, int rc, int flags, const mosquitto_property *props)
{
	hearth_mqtt *m = ud;

	if (m->cb.on_connect)
		m->cb.on_connect(m->cb.ud, rc, flags & 1);
}

static void
on_disconnect(struct mosquitto *mosq, void *ud, int rc, const mosquitto_property *props)
{
	hearth_mqtt *m = ud;

	if (m->cb.on_disconnect)
		m->cb.on_disconnect(m->cb.ud, rc);
}

static void
on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *mm,
           const mosquitto_property *props)
{
	hearth_mqtt *m = ud;
	struct hearth_mqtt_msg msg = {
	        .topic = mm->topic,
	        .payload = mm->payload,
	        .len = mm->payloadlen,
	        .qos = mm->qos,
	        .retain = mm->retain,
	};
	char *resp = NULL;
	void *corr = NULL;
	uint16_t corr_len = 0;

	if (props) {
		mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &resp, false);
		mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &corr, &corr_len,
		                               false);
	}
	msg.response_topic = resp;
	msg.corr = corr;
	msg.corr_len = corr_len;
	if (m->cb.on_message)
		m->cb.on_message(m->cb.ud, &msg);
	free(resp); /* allocated by libmosquitto with malloc */
	free(corr);
}

int
hearth_mqtt_new(const struct hearth_mqtt_opts *o, const struct hearth_mqtt_cb *cb,
                hearth_mqtt **out)
{
	hearth_mqtt *m;
	int rc;

	*out = NULL;
	m = hearth_calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->cb = *cb;
	m->port = o->port;
	m->keepalive = o->keepalive > 0 ? o->keepalive : 30;
	m->session_expiry = o->session_expiry;
	m->host = hearth_strdup(o->host);
	if (!m->host)
		goto fail_free;
	m->mosq = mosquitto_new(o->client_id, o->clean_start, m);
	if (!m->mosq) {
		rc = errno == EINVAL ? -EINVAL : -ENOMEM;
		goto fail_host;
	}
	mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_v5_callback_set(m->mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(m->mosq, on_disconnect);
	mosquitto_message_v5_callback_set(m->mosq, on_message);
	if (o->username) {
		rc = map_rc(mosquitto_username_pw_set(m->mosq, o->username, o->password));
		if (rc)
			goto fail_mosq;
	}
	if (o->tls_ca_file) {
		rc = map_rc(mosquitto_tls_set(m->mosq, o->tls_ca_file, NULL, o->tls_cert_file,
		                              o->tls_key_file, NULL));
		if (rc)
			goto fail_mosq;
	}
	if (o->will_topic) {
		rc = map_rc(mosquitto_will_set_v5(m->mosq, o->will_topic,
		                                  (int)strlen(o->will_payload), o->will_payload, 1,
		                                  o->will_retain, NULL));
		if (rc)
			goto fail_mosq;
	}
	*out = m;
	return 0;

fail_mosq:
	hearth_free(m->will_topic);
	mosquitto_destroy(m->mosq);
fail_host:
	hearth_free(m->host);
	hearth_free(m);
	return rc;
fail_free:
	hearth_free(m);
	return -ENOMEM;
}

void
hearth_mqtt_free(hearth_mqtt *m)
{
	if (!m)
		return;
	mosquitto_destroy(m->mosq);
	hearth_free(m->will_topic);
	hearth_free(m->host);
	hearth_free(m);
}

int
hearth_mqtt_set_will(hearth_mqtt *m, const char *payload)
{
	if (!m->will_topic)
		return -EINVAL;
	return map_rc(mosquitto_will_set_v5(m->mosq, m->will_topic, (int)strlen(payload), payload,
	                                    1, m->will_retain, NULL));
}

int
hearth_mqtt_connect(hearth_mqtt *m)
{
	mosquitto_property *props = NULL;
	int rc;

	if (m->session_expiry)
		mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
		                             m->session_expiry);
	errno = 0;
	rc = map_rc(
	        mosquitto_connect_bind_v5(m->mosq, m->host, m->port, m->keepalive, NULL, props));
	mosquitto_property_free_all(&props);
	return rc;
}

int
hearth_mqtt_disconnect(hearth_mqtt *m)
{
	return map_rc(mosquitto_disconnect_v5(m->mosq, 0, NULL));
}

int
hearth_mqtt_socket(const hearth_mqtt *m)
{
	return mosquitto_socket(m->mosq);
}

bool
hearth_mqtt_want_write(hearth_mqtt *m)
{
	return mosquitto_want_write(m->mosq);
}

int
hearth_mqtt_read(hearth_mqtt *m)
{
	/* loop_read handles about one packet per call; drain what the socket
	 * holds (bounded) so a burst costs one wakeup, not one per packet. */
	for (int i = 0; i < 256; i++) {
		int rc;

		errno = 0;
		rc = mosquitto_loop_read(m->mosq, 1);
		if (rc)
			return map_rc(rc);
		if (errno == EAGAIN || errno == EWOULDBLOCK || mosquitto_socket(m->mosq) < 0)
			break;
	}
	return 0;
}

int
hearth_mqtt_write(hearth_mqtt *m)
{
	errno = 0;
	return map_rc(mosquitto_loop_write(m->mosq, 1));
}

int
hearth_mqtt_misc(hearth_mqtt *m)
{
	return map_rc(mosquitto_loop_misc(m->mosq));
}

int
hearth_mqtt_publish(hearth_mqtt *m, const char *topic, const void *payload, int len, int qos,
                    bool retain, const void *corr, int corr_len)
{
	mosquitto_property *props = NULL;
	int rc;

	if (corr && corr_len > 0)
		mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, corr,
		                              (uint16_t)corr_len);
	rc = mosquitto_publish_v5(m->mosq, NULL, topic, len, payload, qos, retain, props);
	mosquitto_property_free_all(&props);
	return map_rc(rc);
}

int
hearth_mqtt_subscribe(hearth_mqtt *m, const char *pattern, int qos)
{
	return map_rc(mosquitto_subscribe_v5(m->mosq, NULL, pattern, qos, 0, NULL));
}

const char *
hearth_mqtt_reason(int rc)
{
	return mosquitto_reason_string(rc);
}
