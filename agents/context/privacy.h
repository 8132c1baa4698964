/*
 * privacy.h - the privacy guard: which signal each consumer of the home's
 * data may use (DESIGN.md 1.2, 1.8 "consent compliance").
 *
 * Every signal has a data class, found from its capability ("sensor.motion")
 * or its state property ("motion") by a constant table:
 *
 *   class        capabilities                              properties
 *   presence     sensor.motion, sensor.occupancy,          motion, occupancy,
 *                sensor.contact, sensor.presence,          contact, presence
 *                presence.*; flags someone_home, away,
 *                room.<room>.occupied
 *   media        media.* (power, volume, source, title)    volume, media_title,
 *                                                          source
 *   audio        audio.*, sensor.sound, microphone.*       sound, noise,
 *                                                          audio_level
 *   environment  sensor.temperature, sensor.humidity,      temperature, humidity,
 *                sensor.illuminance, sensor.co2,           illuminance, co2,
 *                sensor.pressure, climate.*, weather.*     pressure, setpoint
 *   energy       energy.*, meter.*, sensor.power,          power, energy,
 *                sensor.energy                             current, voltage
 *   location     location.*, device_tracker.*              location, latitude,
 *                                                          longitude, gps
 *   camera       camera.*                                  image, snapshot, stream
 *   device       light.*, switch.*, cover.*, lock.*        on, brightness,
 *                (the state of what the hub commands)      color_temp, position,
 *                                                          locked
 *   other        anything not in the table
 *
 * (a name "x.*" is every capability starting with "x."; capability names are
 * tried before property names, so "media.power" is media although "on" is
 * device).
 *
 * Consumers: the on-hub planner, the learner, proactive suggestions and
 * export (anything that leaves the hub: federated learning, backups sent
 * elsewhere, diagnostics). Defaults, what a device maker would ship:
 *
 *   planner      every class except audio, camera and location
 *   suggestions  device and environment
 *   learner      nothing
 *   export       nothing
 *
 * Anything beyond that is granted by consent: the scope
 * "class:<class>/<consumer>" in memory/consents.h (e.g.
 * "class:presence/learner") allows that pair while it holds an unexpired
 * grant or is standing. Consent only adds; a pair the defaults allow can be
 * switched off with hearth_privacy_set (a configuration choice).
 *
 * Every check is counted: denials per (consumer, class) are what `hearthctl
 * health` shows (hearth_privacy_health_json).
 *
 * How the agents use it (the guard is owned by the runtime and handed to
 * them; it does no I/O, reads no clock, never logs):
 *   1. at start and whenever a consent under "class:" changes: for each
 *      class and consumer, hearth_consent_allowed(store, scope, NULL, now) ->
 *      hearth_privacy_reset() then hearth_privacy_grant_scope() for every
 *      scope that is allowed;
 *   2. before a consumer reads a signal: hearth_privacy_allowed(guard,
 *      consumer, capability or property); a denied read is skipped (the value
 *      is treated as unknown), never an error.
 */
#ifndef HEARTH_AGENTS_CONTEXT_PRIVACY_H
#define HEARTH_AGENTS_CONTEXT_PRIVACY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum hearth_data_class {
	HEARTH_CLASS_PRESENCE,
	HEARTH_CLASS_MEDIA,
	HEARTH_CLASS_AUDIO,
	HEARTH_CLASS_ENVIRONMENT,
	HEARTH_CLASS_ENERGY,
	HEARTH_CLASS_LOCATION,
	HEARTH_CLASS_CAMERA,
	HEARTH_CLASS_DEVICE,
	HEARTH_CLASS_OTHER,
	HEARTH_CLASS_COUNT
};

enum hearth_consumer {
	HEARTH_CONSUMER_PLANNER,
	HEARTH_CONSUMER_LEARNER,
	HEARTH_CONSUMER_SUGGESTIONS,
	HEARTH_CONSUMER_EXPORT,
	HEARTH_CONSUMER_COUNT
};

typedef struct hearth_privacy hearth_privacy;

/* A new guard with the defaults; NULL on ENOMEM. The caller frees it. */
hearth_privacy *hearth_privacy_new(void);
void hearth_privacy_free(hearth_privacy *g);

/* The class of a capability or property name (HEARTH_CLASS_OTHER when unknown). */
enum hearth_data_class hearth_privacy_class_of(const char *what);
/* "presence", "planner"... and back (-1 when unknown). */
const char *hearth_privacy_class_name(enum hearth_data_class c);
const char *hearth_privacy_consumer_name(enum hearth_consumer c);
int hearth_privacy_class_find(const char *name);
int hearth_privacy_consumer_find(const char *name);

/* Back to the defaults (counters are kept). */
void hearth_privacy_reset(hearth_privacy *g);
/* Allow or forbid one pair. */
void hearth_privacy_set(hearth_privacy *g, enum hearth_consumer who, enum hearth_data_class c,
                        bool allowed);
/*
 * Allow the pair a consent scope "class:<class>/<consumer>" names. 0, or
 * HEARTH_E_INVALID for a scope of another form or an unknown class or
 * consumer (the caller skips it).
 */
int hearth_privacy_grant_scope(hearth_privacy *g, const char *scope);
/*
 * Write the consent scope of a pair ("class:presence/learner") into out, which
 * holds at least 64 bytes.
 */
void hearth_privacy_scope(enum hearth_consumer who, enum hearth_data_class c, char *out,
                          size_t len);

/* May who use the class of this pair? Not counted (for planning what to ask). */
bool hearth_privacy_permits(const hearth_privacy *g, enum hearth_consumer who,
                            enum hearth_data_class c);
/*
 * May who read the signal named what (a capability or a property)? Counts the
 * check, and the denial when it is one.
 */
bool hearth_privacy_allowed(hearth_privacy *g, enum hearth_consumer who, const char *what);

/* Denials so far for a pair, and in all. */
uint64_t hearth_privacy_denied(const hearth_privacy *g, enum hearth_consumer who,
                               enum hearth_data_class c);
uint64_t hearth_privacy_denied_total(const hearth_privacy *g);

/*
 * {"checks": n, "denied_total": n,
 *  "denied": {"learner": {"presence": 3}, ...}      (non-zero pairs only)
 *  "allowed": {"planner": ["presence", ...], ...}}   (every consumer)
 * for `hearthctl health`; the caller frees it with cJSON_Delete. NULL on ENOMEM.
 */
cJSON *hearth_privacy_health_json(const hearth_privacy *g);

#endif
