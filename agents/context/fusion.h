/*
 * fusion.h - how much the context agent believes what it was told: the
 * constants and the arithmetic of fusion (DESIGN.md section 1.2), kept apart
 * from the registry so they live in one table and can be tested alone.
 *
 * A reported value starts at confidence 1 and halves every half-life of its
 * property's class (hearth_fusion_half_life_ms: a motion sensor's "true" is
 * stale in minutes, a lamp's "on" holds for an hour). A value reported before
 * its device went offline is multiplied by HEARTH_FUSION_OFFLINE_FACTOR
 * until the property is reported again or the device is back online.
 *
 * Occupancy: a room's score (0..1) is the largest of its positive events
 * (motion or occupancy true, a contact that changed, media switched on),
 * each weighing 1 and halving every HEARTH_FUSION_ROOM_HALF_LIFE_MS, and its
 * sustained signals (a motion or occupancy sensor still true, weight 1;
 * media still on, weight HEARTH_FUSION_MEDIA_WEIGHT), each times the
 * confidence of that value. Home presence is the same over the whole home,
 * with events halving every HEARTH_FUSION_HOME_HALF_LIFE_MS, plus presence
 * flags (a "presence": true property on any device). Occupied / present
 * means a score of at least HEARTH_FUSION_OCCUPIED: with the constants
 * below, a room is occupied for 10 minutes after its last motion.
 */
#ifndef HEARTH_AGENTS_FUSION_H
#define HEARTH_AGENTS_FUSION_H

#include <stdbool.h>
#include <stdint.h>

#define HEARTH_FUSION_OFFLINE_FACTOR    0.2
#define HEARTH_FUSION_ROOM_HALF_LIFE_MS (10LL * 60 * 1000)
#define HEARTH_FUSION_HOME_HALF_LIFE_MS (30LL * 60 * 1000)
#define HEARTH_FUSION_MEDIA_WEIGHT      0.9
#define HEARTH_FUSION_OCCUPIED          0.5

/* A property's class: its name in hearth_fusion_class and its half-life. */
struct hearth_fusion_class {
	const char *property; /* NULL: the default row */
	const char *class_name;
	int64_t half_life_ms;
};

/* The row for property prop (the default row for a property not listed). */
const struct hearth_fusion_class *hearth_fusion_class(const char *prop);
/* Shorthand: hearth_fusion_class(prop)->half_life_ms. */
int64_t hearth_fusion_half_life_ms(const char *prop);
/* weight * 0.5^(age / half_life); a negative age counts as 0. */
double hearth_fusion_decay(double weight, int64_t age_ms, int64_t half_life_ms);
/* Confidence of a value of prop reported age_ms ago, stale when it was
 * reported before its device went offline (and not since). */
double hearth_fusion_confidence(const char *prop, int64_t age_ms, bool stale);

#endif
