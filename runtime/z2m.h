/*
 * z2m.h - the Zigbee2MQTT binding: a state machine that turns Zigbee2MQTT's
 * MQTT API into hearth device messages and hearth commands into Zigbee2MQTT
 * set payloads (DESIGN.md section 4). It does no I/O (see ecosystem.h).
 *
 * Topics, under the base topic (default "zigbee2mqtt"):
 * - <base>/bridge/devices (retained): the device list. Each device with a
 *   definition becomes hearth device "z2m.<ieee_address>", named by its
 *   friendly_name, with the capabilities its exposes map to, transport "z2m"
 *   and address {"friendly_name": ...}. A device missing from a later list
 *   is removed (an empty meta).
 * - <base>/<friendly_name>: state, translated to hearth properties;
 *   <base>/<friendly_name>/availability: "online"/"offline" or
 *   {"state":"online"}. Friendly names may contain '/': the binding
 *   subscribes <base>/# and matches topics against the names it knows.
 * - commands go to <base>/<friendly_name>/set.
 *
 * Value translation: state ON/OFF <-> on; brightness 0..value_max (254) <->
 * 0-100 % (rounded both ways, so a commanded percentage reads back exactly);
 * color_temp mired <-> kelvin; position 0-100; a lock's state LOCK/UNLOCK
 * (and lock_state "locked"/"unlocked") <-> locked; occupancy, contact,
 * temperature, illuminance(_lux) as they are. Zigbee2MQTT's contact=true
 * means the contacts touch: door closed; hearth keeps that meaning.
 */
#ifndef HEARTH_RUNTIME_Z2M_H
#define HEARTH_RUNTIME_Z2M_H

#include "runtime/ecosystem.h"

typedef struct hearth_z2m hearth_z2m;

struct hearth_z2m_opts {
	const char *base_topic;  /* "zigbee2mqtt" */
	int max_payload;         /* bytes, for state and availability */
	int max_devices_payload; /* bytes, for bridge/devices */
	hearth_room_fn room;     /* device file lookup, or NULL */
	void *room_ud;
};

/* Returns 0 and *out, or -ENOMEM / HEARTH_E_INVALID (bad base topic).
 * opts is copied; out must outlive the binding. */
int hearth_z2m_new(const struct hearth_z2m_opts *opts, const hearth_outbox *out, hearth_z2m **z);
void hearth_z2m_free(hearth_z2m *z);
/* The patterns to subscribe, NULL-terminated; owned by the binding. */
const char *const *hearth_z2m_subscriptions(const hearth_z2m *z);
/* true when topic is under the base topic (the binding's, handled or not). */
bool hearth_z2m_owns(const hearth_z2m *z, const char *topic);
/* Take one inbound message; true when the topic was the binding's. */
bool hearth_z2m_on_message(hearth_z2m *z, const char *topic, const void *payload, int len,
                           int64_t now);
/*
 * The set message for args (hearth properties; plan_id, intent_id and step
 * are left out) to device d. Returns 0 and appends to pubs, or
 * HEARTH_E_INVALID / HEARTH_E_NOT_FOUND with why filled.
 */
int hearth_z2m_command(hearth_z2m *z, const struct hearth_device *d, const cJSON *args,
                       struct hearth_pubs *pubs, char *why, size_t why_len);
/* How many devices the last bridge/devices gave. */
int hearth_z2m_count(const hearth_z2m *z);

#endif
