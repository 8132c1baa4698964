/*
 * ha.h - the Home Assistant MQTT discovery binding: devices that announce
 * themselves the way Home Assistant expects (Tasmota, ESPHome, OpenMQTTGateway,
 * custom firmware) become hearth devices, without Home Assistant running. A
 * state machine like the Zigbee2MQTT binding (see ecosystem.h): no I/O.
 *
 * Discovery: <prefix>/<component>/[<node_id>/]<object_id>/config, retained,
 * for the components light (default and "json" schema), switch, cover, lock,
 * climate, binary_sensor and sensor. Abbreviated keys (stat_t, cmd_t, avty_t,
 * uniq_id, dev.sa, ...) and the "~" base topic are expanded as Home
 * Assistant does. Each entity is hearth device "ha.<unique_id>" (characters
 * outside [A-Za-z0-9_.-] become '_'; a unique_id too long for an id is cut
 * and ends in a hash of the whole). An entity without unique_id is refused:
 * Home Assistant itself keeps only those with one. An empty config removes
 * the entity.
 *
 * State topics a config names are subscribed through the subscribe callback
 * as they are learned; their payloads go through the entity's value template
 * when it is one of the common forms ("{{ value }}", "{{ value_json.a.b }}",
 * "{{ value_json['a'] }}", optionally "| int", "| float", "| round(n)");
 * any other template leaves the raw payload. Commands go to the entity's own
 * command topics with its own payloads (payload_on, payload_lock, the
 * brightness scale, position_open/position_closed ...).
 */
#ifndef HEARTH_RUNTIME_HA_H
#define HEARTH_RUNTIME_HA_H

#include "runtime/ecosystem.h"

typedef struct hearth_ha hearth_ha;

struct hearth_ha_opts {
	const char *prefix;  /* "homeassistant" */
	int max_payload;     /* bytes, for every topic */
	hearth_room_fn room; /* device file lookup, or NULL */
	void *room_ud;
	hearth_subscribe_fn subscribe; /* a state topic was learned */
	void *sub_ud;
	/* Leave out the discovery configs Zigbee2MQTT itself publishes (its
	 * devices come through the Zigbee2MQTT binding). */
	bool skip_z2m;
};

int hearth_ha_new(const struct hearth_ha_opts *opts, const hearth_outbox *out, hearth_ha **ha);
void hearth_ha_free(hearth_ha *ha);
/* The discovery patterns, NULL-terminated; owned by the binding. */
const char *const *hearth_ha_subscriptions(const hearth_ha *ha);
/* Call fn(ud, topic) for every state / availability topic learned so far. */
void hearth_ha_each_topic(const hearth_ha *ha, hearth_subscribe_fn fn, void *ud);
/* true when topic is a discovery topic or a topic a config named. */
bool hearth_ha_owns(const hearth_ha *ha, const char *topic);
bool hearth_ha_on_message(hearth_ha *ha, const char *topic, const void *payload, int len,
                          int64_t now);
/* Like hearth_z2m_command: appends one message per topic the command needs
 * (a light's on/off and brightness topics are two). */
int hearth_ha_command(hearth_ha *ha, const struct hearth_device *d, const cJSON *args,
                      struct hearth_pubs *pubs, char *why, size_t why_len);
int hearth_ha_count(const hearth_ha *ha);

#endif
