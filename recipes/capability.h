/*
 * capability.h - the capability vocabulary of DESIGN.md section 4: what a
 * device can do, the state property each capability reads and writes, and
 * the values that property takes. Recipes, the registry and the transports
 * all speak in these terms.
 */
#ifndef HEARTH_RECIPES_CAPABILITY_H
#define HEARTH_RECIPES_CAPABILITY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

enum hearth_value_kind {
	HEARTH_VALUE_BOOL,
	HEARTH_VALUE_NUMBER, /* within [min, max] */
};

struct hearth_capability {
	const char *name;     /* "light.brightness" */
	const char *property; /* "brightness" */
	enum hearth_value_kind kind;
	double min, max;
	bool actuator; /* can be commanded (sensors cannot) */
};

typedef uint32_t hearth_capset; /* bit i: capability i of the table */

int hearth_capability_count(void);
const struct hearth_capability *hearth_capability_at(int i);
/* Index of the capability called name, or -1. */
int hearth_capability_find(const char *name);
/* true when some capability in set uses property prop (e.g. "on"). */
bool hearth_capset_has_property(hearth_capset set, const char *prop);
/*
 * Check value against what property prop allows for a capability in set.
 * Returns 0, or HEARTH_E_INVALID with a reason in why ("brightness must be a
 * number from 0 to 100"). A property no capability knows is accepted.
 */
int hearth_capability_check_value(const char *prop, const cJSON *value, char *why, size_t why_len);

#endif
