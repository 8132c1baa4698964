/*
 * flags.h - derived flags: named booleans the context agent computes from
 * room occupancy, device state, other flags and local time (DESIGN.md 1.2),
 * so the planner and the rules speak of "night" or "someone_home" rather
 * than of sensors.
 *
 * Definitions come from the JSON configuration, key "flags", an array:
 *
 *   "flags": [
 *     {"name": "night",      "when": {"time": {"from": "23:00", "to": "07:00"}}},
 *     {"name": "cosy",       "when": {"all": [{"flag": "night", "is": true},
 *                                             {"device": "t-1", "property":
 *                                              "temperature", "lt": 19}]}},
 *     {"name": "tv_on",      "when": {"device": "tv", "property": "on", "is": true}}
 *   ]
 *
 *   name   1..64 characters of [A-Za-z0-9_.-], unique, not starting with
 *          "room." (room flags are made by the hub)
 *   when   a condition in the language of constraint rules (memory/
 *          constraints.h, the same validator): all / any / not, flag is,
 *          device property is / lt / gt, time window. A flag condition
 *          names a built-in, another defined flag or "room.<room>.occupied"
 *          (any room: the room flag is false until that room is reported
 *          occupied). Unknown flags and cycles ("a" needs "b" needs "a") are
 *          refused at load.
 *
 * Built-ins. Four flags always exist; a definition of the same name in the
 * configuration replaces the default, which is:
 *
 *   night          {"time": {"from": "22:00", "to": "06:00"}}
 *   quiet_hours    {"time": {"from": "22:00", "to": "07:00"}}
 *   someone_home   true when any room.<room>.occupied is true (any room the
 *                  agent reports; this default has no JSON form)
 *   away           {"not": {"flag": "someone_home", "is": true}}
 *
 * and one flag per room, "room.<room key>.occupied", whose value is the
 * occupancy the agent passes in (room keys as hearth_room_key makes them:
 * lowercase, '_' for '-' and ' '; references in conditions are normalized the
 * same way, so "room.Living-Room.occupied" names room living_room).
 *
 * Semantics. Time windows are local time, from inclusive, to exclusive, and
 * wrap midnight when from > to. A device condition whose value is unknown
 * (the lookup says HEARTH_FLAG_INPUT_NONE) is false; lt / gt on a value that
 * is not a number is false; "is" compares numbers within 1e-9, other values
 * exactly. A lookup may answer HEARTH_FLAG_INPUT_HOLD for an input that is
 * paused (a drifting feature, see drift.h): a flag whose value depends on a
 * held input keeps its last value (and is marked held) until the input comes
 * back; all / any still decide when the other operands settle it (false and
 * anything is false).
 *
 * How the context agent uses it:
 *   1. at start: hearth_flags_load(cfg "flags" array or NULL, file name, ...);
 *      a load error is a configuration error (print why, refuse to start).
 *   2. whenever room occupancy or a device state changed, and on a timer at
 *      least once a minute (time windows): fill hearth_flag_inputs (local
 *      minute of day and weekday from the wall clock, rooms, a lookup over
 *      the registry) and call hearth_flags_eval(); post one "flag changed"
 *      message per change returned. The first evaluation returns every flag
 *      (their first values).
 *   3. answer context queries with hearth_flags_get() / hearth_flags_json().
 * The module does no I/O, reads no clock and never logs.
 */
#ifndef HEARTH_AGENTS_CONTEXT_FLAGS_H
#define HEARTH_AGENTS_CONTEXT_FLAGS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define HEARTH_FLAGS_DEFINED_MAX 64   /* flags in the configuration (built-ins included) */
#define HEARTH_FLAGS_ROOMS_MAX   64   /* room flags */
#define HEARTH_FLAGS_NODES_MAX   4096 /* condition nodes in a whole set */
/* Every flag of a set: enough room for the changes of one evaluation. */
#define HEARTH_FLAGS_MAX (HEARTH_FLAGS_DEFINED_MAX + 4 + HEARTH_FLAGS_ROOMS_MAX)

typedef struct hearth_flags hearth_flags;

/* What a lookup says about one device property. */
enum hearth_flag_input {
	HEARTH_FLAG_INPUT_OK,   /* *value is set (valid until the evaluation returns) */
	HEARTH_FLAG_INPUT_NONE, /* no value: unknown device, never reported, offline... */
	HEARTH_FLAG_INPUT_HOLD, /* paused (e.g. drifting): keep dependent flags as they are */
};

typedef enum hearth_flag_input (*hearth_flag_lookup_fn)(void *ud, const char *device,
                                                        const char *property, const cJSON **value);

struct hearth_flag_room {
	const char *room; /* room key (hearth_room_key) */
	bool occupied;
};

struct hearth_flag_inputs {
	int minute;  /* local time of day, minutes since midnight, 0..1439 */
	int weekday; /* local weekday 0 (Sunday)..6; the condition language has no
	              * weekday yet, kept so the caller need not change when it does */
	const struct hearth_flag_room *rooms; /* every room the agent knows */
	int nrooms;
	hearth_flag_lookup_fn lookup; /* may be NULL: every device value unknown */
	void *ud;
};

struct hearth_flag_change {
	const char *name; /* valid while the set lives */
	bool value;
};

struct hearth_flag_info {
	const char *name;
	bool value;   /* false until known */
	bool known;   /* evaluated at least once (or reported, for a room) */
	bool held;    /* kept at its last value by a held input in the last evaluation */
	bool builtin; /* one of the four built-ins with its default definition */
	bool room;    /* a room.<room>.occupied flag */
};

/*
 * Load and check a definition set: defs is the configuration's "flags"
 * array, or NULL for the built-in defaults alone. source names the file in
 * messages. On error returns HEARTH_E_INVALID (HEARTH_E_TOO_LARGE over a
 * bound) and writes "<source>: flags[2].when.all[0].device: <what is
 * wrong>" into why; -ENOMEM. On success *out is a new set (all flags
 * unknown) the caller frees with hearth_flags_free.
 */
int hearth_flags_load(const cJSON *defs, const char *source, hearth_flags **out, char *why,
                      size_t why_len);
void hearth_flags_free(hearth_flags *f);

/*
 * Evaluate every flag over in. Writes the flags whose value changed (or
 * became known) into changes, up to max (HEARTH_FLAGS_MAX always suffices),
 * room flags first, then the defined ones in dependency order, and returns
 * how many changed. Rooms beyond HEARTH_FLAGS_ROOMS_MAX (or whose flag
 * cannot be allocated) are left out and counted (hearth_flags_json).
 */
int hearth_flags_eval(hearth_flags *f, const struct hearth_flag_inputs *in,
                      struct hearth_flag_change *changes, int max);

/*
 * A flag's value: 1 or 0 (0 too while not yet known, and for the room flag of
 * a room never reported), HEARTH_E_NOT_FOUND for a name that is no flag.
 */
int hearth_flags_get(const hearth_flags *f, const char *name);
/* Does some flag's condition read a property of device? (The agent skips
 * re-evaluating the flags for reports no flag can see.) */
bool hearth_flags_uses_device(const hearth_flags *f, const char *device);
/* Flags in evaluation order: 0..count-1, then 0 from hearth_flags_at or HEARTH_E_NOT_FOUND. */
int hearth_flags_count(const hearth_flags *f);
int hearth_flags_at(const hearth_flags *f, int i, struct hearth_flag_info *out);
/*
 * {"flags": {"night": true, ...}, "held": ["name", ...], "rooms_dropped": n}
 * with the known flags; the caller frees it with cJSON_Delete. NULL on ENOMEM.
 */
cJSON *hearth_flags_json(const hearth_flags *f);

#endif
