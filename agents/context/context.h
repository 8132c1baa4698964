/*
 * context.h - the context agent: what the hub knows about the home.
 *
 * It takes device announcements, state and availability (DEVICE_META,
 * DEVICE_STATE, DEVICE_AVAIL), keeps the device registry (device -> room ->
 * capabilities, merged state, availability), and tells the resource agent
 * when a device changed (DEVICE_CHANGED). The planner and the resource agent
 * read the registry through the query functions below, which answer from
 * memory and never change it.
 *
 * Every lookup is O(1) or proportional to its answer: devices are found by a
 * hash index on their id (the registry still lists them in announcement
 * order), rooms are interned, and each room keeps its devices per
 * capability, so hearth_context_select(room, cap, ...) visits only the
 * devices of that room with that capability.
 *
 * It also fuses what it hears (DESIGN.md section 1.2, constants in
 * fusion.h): every reported property keeps the time of its report and a
 * confidence that decays with age and drops while its device is offline;
 * rooms get an occupancy score from motion, occupancy, contact and media
 * signals; the home a presence score. Time is only ever the hearth_now the
 * agent is handed.
 */
#ifndef HEARTH_AGENTS_CONTEXT_H
#define HEARTH_AGENTS_CONTEXT_H

#include "agents/context/privacy.h"
#include "agents/msg.h"
#include "recipes/capability.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

struct hearth_device {
	char id[HEARTH_ID_MAX + 1];
	char *name;     /* friendly name or NULL */
	char *room;     /* as announced, or NULL */
	char *room_key; /* normalized (see hearth_room_key), or NULL */
	char *kind;     /* or NULL */
	hearth_capset caps;
	char transport[8]; /* "mqtt" (native), "coap", "z2m" (Zigbee2MQTT), "ha" (HA discovery) */
	char *uri;         /* CoAP URI or NULL */
	cJSON *address;    /* how its binding reaches it (z2m, ha): opaque here, or NULL */
	bool has_meta;     /* announced; devices without meta are not planned on */
	bool meta_optimistic; /* meta says "optimistic": true */
	double power_w;       /* meta "power_w": rated power in watts, or 0 when not given */
	int online;           /* 1, 0, or -1 when unknown */
	cJSON *state;         /* merged reported state, NULL until the first report */
	int64_t last_seen;    /* wall ms of the last message */
};

/* A fused value (hearth_context_value). */
struct hearth_value {
	const cJSON *value; /* in the device's state: valid until the agent's next message */
	int64_t ts;         /* wall ms of the report that set it */
	int64_t age_ms;     /* now - ts, never negative */
	double confidence;  /* 0..1: decayed by age, dropped while the device is offline */
	bool stale;         /* reported before the device went offline, not since */
};

/* A fused occupancy (hearth_context_room_occupancy, hearth_context_home_presence). */
struct hearth_occupancy {
	double score;        /* 0..1, see fusion.h */
	int64_t last_signal; /* wall ms of the latest positive signal, 0 when none */
	bool occupied;       /* score >= HEARTH_FUSION_OCCUPIED */
};

typedef struct hearth_context hearth_context;

int hearth_context_new(int max_devices, hearth_context **out);
void hearth_context_free(hearth_context *c);
void hearth_context_handle(hearth_context *c, hearth_msg *m, const hearth_now *now,
                           const hearth_outbox *out);

/*
 * Restore a device from its stored record (the JSON of hearth_device_json),
 * so the registry survives a restart before the devices speak again: the
 * announcement and the last known state; availability stays unknown until
 * the device speaks. Returns 0 or a negative error.
 */
int hearth_context_restore(hearth_context *c, const cJSON *rec);

/*
 * Derived flags (flags.h: the configuration's "flags" array, NULL for the
 * built-ins) and the drift sentinel (drift.h: the "drift" object, NULL for
 * defaults). source names the file in errors written to why. 0 or an error;
 * hearth_context_new starts with the defaults.
 */
int hearth_context_configure(hearth_context *c, const cJSON *flags, const cJSON *drift,
                             const char *source, char *why, size_t why_len);
/* Once a minute: drift checks (DRIFT messages) and the flags' time windows
 * (FLAG_CHANGED messages). Flags are also evaluated at every state change. */
void hearth_context_tick(hearth_context *c, const hearth_now *now, const hearth_outbox *out);
/* A flag's value: 1, 0 (also while unknown), or HEARTH_E_NOT_FOUND for no such flag. */
int hearth_context_flag(const hearth_context *c, const char *name);
/* The privacy guard, for the runtime to grant what consents allow. */
hearth_privacy *hearth_context_privacy(hearth_context *c);
/* The same guard, read-only (what it permits, without counting a read). */
const hearth_privacy *hearth_context_guard(const hearth_context *c);
/* May who read the signal named what (a capability or a property)? Counted
 * (a denial shows in hearthctl health). */
bool hearth_context_may_read(const hearth_context *c, enum hearth_consumer who, const char *what);
/* {"flags", "privacy", "drift"} for hearthctl health. */
cJSON *hearth_context_health_json(const hearth_context *c);

/* ==== Queries (read-only) ==== */

const struct hearth_device *hearth_context_device(const hearth_context *c, const char *id);
int hearth_context_count(const hearth_context *c);
const struct hearth_device *hearth_context_at(const hearth_context *c, int i);
int hearth_context_online_count(const hearth_context *c);
/* true when some announced device is in room (compared as room keys). */
bool hearth_context_room_known(const hearth_context *c, const char *room);
/*
 * Announced devices with capability cap (index), in room (NULL: anywhere)
 * and of kind (NULL: any), in announcement order. Fills up to max pointers
 * into out and returns how many matched in all.
 */
int hearth_context_select(const hearth_context *c, const char *room, int cap, const char *kind,
                          const struct hearth_device **out, int max);
/* Confirmed on dispatch: never reported state, or meta says optimistic. */
bool hearth_device_optimistic(const struct hearth_device *d);
/*
 * The device as hearthctl shows it (and as the devices store keeps it). The
 * caller frees the result. Besides "state" (unchanged: the merged report) it
 * carries "freshness": {"<property>": {"ts", "confidence", "half_life_ms"}}
 * for every property in "state", where confidence is the value's as of ts
 * (1, or HEARTH_FUSION_OFFLINE_FACTOR while the device has been offline since)
 * and halves every half_life_ms after it: the record stays the same while
 * nothing is said, and hearth_context_value gives the confidence at a time.
 */
cJSON *hearth_device_json(const struct hearth_device *d);

/*
 * The fused value of device's property at now: the reported value, when it
 * was reported, and how much to believe it. Returns 0, or HEARTH_E_NOT_FOUND
 * when the device is unknown or never reported that property (out is then
 * zeroed).
 */
int hearth_context_value(const hearth_context *c, const char *device, const char *property,
                         const hearth_now *now, struct hearth_value *out);
/* How occupied room is at now (an unknown room: score 0, never signalled). */
struct hearth_occupancy hearth_context_room_occupancy(const hearth_context *c, const char *room,
                                                      const hearth_now *now);
/* Whether someone is home at now: any room's signals, recent events anywhere,
 * presence flags. */
struct hearth_occupancy hearth_context_home_presence(const hearth_context *c,
                                                     const hearth_now *now);

/* Room names compare case-insensitively with '_', '-' and ' ' alike: the key
 * is lowercase with '_' for those. */
void hearth_room_key(const char *room, char *out, size_t len);

#endif
