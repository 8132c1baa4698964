/*
 * episodic.h - queries and upkeep over episodic memory: the `episodes`
 * database, one record per plan run (DESIGN.md section 3).
 *
 * Episodes are written by hearth_store_episode_add() (store.h) under 16-byte
 * keys: the big-endian time in ms, then a big-endian sequence number, so the
 * database is in time order. The value is the episode JSON as the runtime
 * writes it: {id, intent_id, intent, recipe, slots, outcome, ts, ended_at,
 * latency_ms {first_command, total}, steps [{id, device, capability, args,
 * state, note, rebound_to, timeline}], rationale}, plus fields added later by hearth_episode_annotate().
 *
 * Reads see what is committed. Writes (pruning, annotations) are queued and
 * run inside the next hearth_store_flush() transaction, after the writes
 * queued before them, so an annotation may follow the episode it annotates
 * in the same loop turn.
 */
#ifndef HEARTH_MEMORY_EPISODIC_H
#define HEARTH_MEMORY_EPISODIC_H

#include "memory/store.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How far hearth_episode_annotate() looks back for a plan (newest first). */
#define HEARTH_EPISODE_ANNOTATE_SCAN 4096

/*
 * A query. Zero-initialized it means "every episode, newest first". String
 * filters are compared exactly; NULL means any. Strings are the caller's and
 * only read during the call.
 */
struct hearth_episode_query {
	int64_t from_ms;     /* key time >= from_ms (ms since epoch; <= 0: no bound) */
	int64_t to_ms;       /* key time < to_ms (<= 0: no bound) */
	const char *recipe;  /* "recipe" field */
	const char *device;  /* any step whose "device" is this */
	const char *outcome; /* "outcome" field ("completed", "failed", ...) */
	long limit;          /* at most this many matches (<= 0: all) */
	bool oldest_first;   /* default: newest first */
};

/* One episode handed to a visitor; everything is valid during the call only. */
struct hearth_episode {
	int64_t ts_ms;    /* time from the key (the episode's ended_at) */
	uint64_t seq;     /* sequence from the key */
	const char *json; /* the stored text, not NUL-terminated */
	size_t len;
	const cJSON *doc; /* the parsed record (an object), owned by the query */
};

/* A non-zero return stops the walk; a negative one is passed back. */
typedef int (*hearth_episode_visit_fn)(void *ud, const struct hearth_episode *ep);

/*
 * Visit the committed episodes that match q, in key order (newest first
 * unless q->oldest_first). The time range walks the keys (the cost is the
 * episodes inside the range); the other filters look into each record. A
 * stored record that is not a JSON object is skipped with a warning.
 * Returns the number of episodes visited, or a negative hearth error
 * (HEARTH_E_INVALID for a NULL argument or from_ms >= to_ms when both are
 * set, or the visitor's negative return).
 */
long hearth_episodes_query(hearth_store *st, const struct hearth_episode_query *q,
                           hearth_episode_visit_fn visit, void *ud);

/*
 * Queue the removal of every episode whose key time is before
 * now_ms - max_age_ms. The daemon calls it from its maintenance timer with
 * the wall clock; tests pass any time. 0 (nothing is queued when
 * now_ms <= max_age_ms), HEARTH_E_INVALID (max_age_ms <= 0), -ENOMEM or
 * -EROFS; nothing is queued on error.
 */
int hearth_episodes_prune(hearth_store *st, int64_t now_ms, int64_t max_age_ms);

/*
 * The rolling window by age, applied at every flush that commits writes (a
 * commit hook, after the count window of hearth_store_opts.episodes_max):
 * episodes whose key time is before now - max_age_ms are deleted in the same
 * transaction. A daemon that writes nothing for a while prunes nothing
 * meanwhile: its maintenance timer calls hearth_episodes_prune() for that.
 */
struct hearth_episode_age {
	int64_t max_age_ms;       /* <= 0: no age limit (may be changed at any time) */
	int64_t (*now)(void *ud); /* wall ms since epoch; NULL: hearth_wall_ms() */
	void *now_ud;
	hearth_store *store; /* set by hearth_episodes_set_max_age() */
};

/*
 * Install the age window. The store keeps a pointer to age, which the caller
 * owns and must keep alive (and unchanged in place, or changed between
 * flushes) until hearth_store_close(); install it once per open store.
 * Returns 0, HEARTH_E_INVALID, -EROFS (read-only store) or HEARTH_E_FULL
 * (the store has no room for another commit hook).
 */
int hearth_episodes_set_max_age(hearth_store *st, struct hearth_episode_age *age);

/*
 * Queue setting field key of the episode of plan plan_id to the JSON value
 * json_value (text, parsed now; replaces any earlier value). Used for
 * "feedback" and "overrides". At flush the newest HEARTH_EPISODE_ANNOTATE_SCAN
 * episodes are searched, newest first; a plan not among them is logged and
 * left alone. key must not be "id". Returns 0, HEARTH_E_INVALID (bad plan id
 * or key), HEARTH_E_BAD_JSON, -ENOMEM or -EROFS; nothing is queued on error.
 */
int hearth_episode_annotate(hearth_store *st, const char *plan_id, const char *key,
                            const char *json_value);

/*
 * Traces: the last runs of a recipe with every step's timeline, taken from
 * the committed episodes (each episode's steps carry a "timeline" of ms
 * offsets since the intent arrived). Fills *out with a new array (the caller
 * frees it), newest run first, at most limit runs (<= 0: all), each
 * {"plan_id","intent_id","intent","slots","outcome","reason","ts",
 *  "ended_at","latency_ms","rationale","steps":[{"id","device","state",
 *  "note","rebound_to","timeline"}]} (absent fields left out). Returns the
 * number of runs or a negative hearth error (HEARTH_E_INVALID for an empty
 * recipe).
 */
long hearth_episodes_trace(hearth_store *st, const char *recipe, long limit, cJSON **out);

#endif
