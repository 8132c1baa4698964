/*
 * ecosystem.h - what the ecosystem bindings (Zigbee2MQTT, Home Assistant
 * MQTT discovery) share, and the one object the hub drives them through.
 *
 * A binding does no I/O: the hub hands it (topic, payload) pairs and asks it
 * for the messages that carry a device command, which it returns as a small
 * list of {topic, payload} (struct hearth_pubs) for the hub to publish. What
 * a binding learns goes to the context agent as DEVICE_META / DEVICE_STATE /
 * DEVICE_AVAIL messages, in hearth terms (DESIGN.md section 4), through the
 * outbox it was given; bad input goes out as ERROR messages naming the
 * absolute ecosystem topic.
 *
 * Rooms of ecosystem devices (DESIGN.md section 4, first match wins): the
 * device file named by the configuration ({"<device id>": {"room": "..."}}),
 * then what the binding knows (a Zigbee2MQTT friendly name "<room>/<name>",
 * Home Assistant's device.suggested_area).
 */
#ifndef HEARTH_RUNTIME_ECOSYSTEM_H
#define HEARTH_RUNTIME_ECOSYSTEM_H

#include "agents/context/context.h"
#include "agents/msg.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hearth_config;

/* ==== Messages to publish ==== */

#define HEARTH_PUBS_MAX 4

/* Commands go out at QoS 1, not retained. Each topic and payload is owned by
 * the list (NUL-terminated; len excludes the NUL). */
struct hearth_pubs {
	struct {
		char *topic;
		char *payload;
		int len;
	} p[HEARTH_PUBS_MAX];
	int n;
};

/* Append copies of topic and payload. Returns 0, HEARTH_E_FULL or -ENOMEM. */
int hearth_pubs_add(struct hearth_pubs *l, const char *topic, const char *payload);
/* Free what the list holds; the list is empty afterwards. */
void hearth_pubs_clear(struct hearth_pubs *l);

/* ==== Rooms ==== */

/* The room a device file gives device id, or NULL. The string stays valid
 * while the file's tree lives. */
typedef const char *(*hearth_room_fn)(void *ud, const char *device_id);

/*
 * Load the device file: a JSON object {"<device id>": {"room": "living"}, ...}.
 * Returns 0 and the tree in *out (the caller frees it with cJSON_Delete), or
 * HEARTH_E_CONFIG with "FILE: ..." in why.
 */
int hearth_devfile_load(const char *path, cJSON **out, char *why, size_t why_len);
/* A hearth_room_fn over a tree from hearth_devfile_load (ud). */
const char *hearth_devfile_room(void *ud, const char *device_id);

/* ==== Helpers the bindings share ==== */

/* "online"/"offline", "{"state":"online"}" or "\"online\"" (len bytes).
 * Returns 0 and *online, or HEARTH_E_INVALID. Custom payloads: see ha.c. */
int hearth_eco_parse_avail(const void *payload, int len, const char *on, const char *off,
                           bool *online);
/* A NUL-terminated copy of len bytes, or NULL (ENOMEM). */
char *hearth_eco_text(const void *payload, int len);
/* Post DEVICE_META (body NULL: removal), DEVICE_STATE, DEVICE_AVAIL. body is taken. */
void hearth_eco_post(const hearth_outbox *out, enum hearth_msg_type type, const char *id,
                     cJSON *body, bool flag);

/* ==== The bindings, as the hub drives them ==== */

typedef struct hearth_eco hearth_eco;

/* Called when a binding needs a new subscription (an HA state topic). */
typedef void (*hearth_subscribe_fn)(void *ud, const char *pattern);

/*
 * Make the bindings the configuration enables, and load its device file.
 * out and subscribe(sub_ud, pattern) must outlive the object. Returns 0, or an
 * error with why filled (a bad device file names the file).
 */
int hearth_eco_new(const struct hearth_config *cfg, const hearth_outbox *out,
                   hearth_subscribe_fn subscribe, void *sub_ud, hearth_eco **eco, char *why,
                   size_t why_len);
void hearth_eco_free(hearth_eco *e);
/* true when the binding for transport ("z2m", "ha") runs. */
bool hearth_eco_runs(const hearth_eco *e, const char *transport);
/* Call subscribe for every pattern the bindings need (after each connect). */
void hearth_eco_subscribe_all(hearth_eco *e);
/* Give an inbound message to the bindings; true when one of them took it. */
bool hearth_eco_on_message(hearth_eco *e, const char *topic, const void *payload, int len,
                           int64_t now);
/* true when topic belongs to a binding (errors keep such topics absolute). */
bool hearth_eco_owns_topic(const hearth_eco *e, const char *topic);
/*
 * The messages that carry command args (a DEVICE_COMMAND body) to device d.
 * Returns 0 and fills pubs (the caller clears it), -ENOENT when d's
 * transport is no binding's, or another error with why filled.
 */
int hearth_eco_command(hearth_eco *e, const struct hearth_device *d, const cJSON *args,
                       struct hearth_pubs *pubs, char *why, size_t why_len);

#endif
