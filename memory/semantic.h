/*
 * semantic.h - semantic memory: what hearth has learned, as small records
 * keyed "kind/name" in the `semantic` database (DESIGN.md section 3).
 *
 * Every record is a JSON object with a "version" counter that increases by
 * one at each update (records are updated in place). The typed kinds are:
 *
 *   recipe/<id>   success posterior Beta(a, b), from the prior Beta(1, 1):
 *                 {"version", "a", "b"}
 *   device/<id>   latency EWMA (alpha 0.2), a log-bucket latency histogram
 *                 for a high percentile, and reliability:
 *                 {"version", "ewma_ms", "hist": [HEARTH_SEMANTIC_LAT_BUCKETS],
 *                  "attempts", "successes"}
 *   habit/<id>    how often a recipe ran in each hour of the day:
 *                 {"version", "hours": [24]}
 *
 * and any other kind (preferences "pref", learned weights "weight", ...)
 * holds a generic JSON value: {"version", "value"}.
 *
 * Updates are queued and read-modify-write inside the flush transaction, so
 * two updates of one record in one loop turn both count. Reads see what is
 * committed. Names are 1..255 bytes, kinds 1..32 bytes of [a-z0-9_.-].
 */
#ifndef HEARTH_MEMORY_SEMANTIC_H
#define HEARTH_MEMORY_SEMANTIC_H

#include "memory/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Latency histogram: bucket 0 holds samples under 1 ms, bucket i (1 <= i <
 * BUCKETS - 1) holds [2^((i-1)/2), 2^(i/2)) ms (each bound sqrt(2) times the
 * one before), the last bucket everything from 2^((BUCKETS-2)/2) ms (about
 * 65 s) up. When the histogram holds HEARTH_SEMANTIC_LAT_HALVE_AT samples,
 * every count is halved, so the percentile follows recent behaviour.
 */
#define HEARTH_SEMANTIC_LAT_BUCKETS  34
#define HEARTH_SEMANTIC_LAT_HALVE_AT 4096
#define HEARTH_SEMANTIC_EWMA_ALPHA   0.2

struct hearth_recipe_stats {
	double a, b;      /* Beta(a, b): 1 + successes, 1 + failures */
	double mean;      /* a / (a + b) */
	uint64_t version; /* 0: never updated (the prior) */
};

struct hearth_device_stats {
	double ewma_ms;     /* latency EWMA; 0 before the first sample */
	double p95_ms;      /* 95th percentile estimate from the histogram; 0 without samples */
	uint64_t samples;   /* latency samples in the histogram (after halving) */
	uint64_t attempts;  /* commands sent */
	uint64_t successes; /* of which succeeded */
	double reliability; /* successes / attempts; 0 when attempts is 0 */
	uint64_t version;   /* 0: never updated */
	uint32_t hist[HEARTH_SEMANTIC_LAT_BUCKETS];
};

struct hearth_habit_stats {
	uint32_t hours[24]; /* runs started in each hour of the day (local time) */
	uint64_t total;
	uint64_t version; /* 0: never updated */
};

/*
 * Queued updates. Each returns 0, HEARTH_E_INVALID (a bad name or value),
 * -ENOMEM or -EROFS, and queues nothing on error.
 */
/* Count one run of recipe: success adds 1 to a, failure adds 1 to b. */
int hearth_semantic_recipe_outcome(hearth_store *st, const char *recipe, bool success);
/*
 * Count one command to device: ok adds a success. latency_ms >= 0 also feeds
 * the EWMA and the histogram; pass a negative latency when there is none
 * (a timeout).
 */
int hearth_semantic_device_sample(hearth_store *st, const char *device, double latency_ms, bool ok);
/* Count one run of recipe starting in hour (0..23, the home's local time). */
int hearth_semantic_habit(hearth_store *st, const char *recipe, int hour);
/*
 * Set the generic record kind/name to the JSON value json (text, checked
 * now), or remove it (json NULL). kind may not be "recipe", "device" or
 * "habit". Also HEARTH_E_BAD_JSON.
 */
int hearth_semantic_put_json(hearth_store *st, const char *kind, const char *name,
                             const char *json);

/*
 * Reads. A record never written reads as its starting value (the prior, or
 * zeros) with version 0 and returns 0. HEARTH_E_CORRUPT when a stored
 * record does not decode.
 */
int hearth_semantic_recipe_get(hearth_store *st, const char *recipe,
                               struct hearth_recipe_stats *out);
int hearth_semantic_device_get(hearth_store *st, const char *device,
                               struct hearth_device_stats *out);
int hearth_semantic_habit_get(hearth_store *st, const char *recipe, struct hearth_habit_stats *out);
/*
 * The generic value of kind/name as compact JSON text in *json (the caller
 * frees it with hearth_free) and its version in *version (may be NULL).
 * HEARTH_E_NOT_FOUND when absent.
 */
int hearth_semantic_get_json(hearth_store *st, const char *kind, const char *name, char **json,
                             uint64_t *version);

/*
 * Visit the committed records of one kind in name order. The callback gets
 * the name (NUL-terminated) and the record's JSON text (not NUL-terminated,
 * valid during the call); a non-zero return stops the walk (a negative one
 * is passed back).
 */
int hearth_semantic_each(hearth_store *st, const char *kind, hearth_store_visit_fn fn, void *ud);

/* The percentile p (0 < p < 1) of a latency histogram, interpolated inside its bucket. */
double hearth_semantic_percentile(const uint32_t hist[HEARTH_SEMANTIC_LAT_BUCKETS], double p);

#endif
