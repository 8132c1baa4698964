/*
 * capability.c - the constant capability table (DESIGN.md section 4).
 * Adding a capability is adding a row; its index is its bit in a capset.
 */
#include "recipes/capability.h"

#include "platform/err.h"

#include <stdio.h>
#include <string.h>

static const struct hearth_capability table[] = {
        {"light.on_off", "on", HEARTH_VALUE_BOOL, 0, 1, true},
        {"switch.on_off", "on", HEARTH_VALUE_BOOL, 0, 1, true},
        {"media.power", "on", HEARTH_VALUE_BOOL, 0, 1, true},
        {"light.brightness", "brightness", HEARTH_VALUE_NUMBER, 0, 100, true},
        {"light.color_temp", "color_temp", HEARTH_VALUE_NUMBER, 1000, 10000, true},
        {"cover.position", "position", HEARTH_VALUE_NUMBER, 0, 100, true},
        {"lock.lock", "locked", HEARTH_VALUE_BOOL, 0, 1, true},
        {"climate.setpoint", "setpoint", HEARTH_VALUE_NUMBER, 5, 35, true},
        {"media.volume", "volume", HEARTH_VALUE_NUMBER, 0, 100, true},
        {"sensor.motion", "motion", HEARTH_VALUE_BOOL, 0, 1, false},
        {"sensor.occupancy", "occupancy", HEARTH_VALUE_BOOL, 0, 1, false},
        {"sensor.contact", "contact", HEARTH_VALUE_BOOL, 0, 1, false},
        {"sensor.temperature", "temperature", HEARTH_VALUE_NUMBER, -100, 200, false},
        {"sensor.illuminance", "illuminance", HEARTH_VALUE_NUMBER, 0, 1e6, false},
};

#define NCAPS ((int)(sizeof(table) / sizeof(table[0])))
_Static_assert(NCAPS <= 32, "a capset is 32 bits");

int
hearth_capability_count(void)
{
	return NCAPS;
}

const struct hearth_capability *
hearth_capability_at(int i)
{
	return i >= 0 && i < NCAPS ? &table[i] : NULL;
}

int
hearth_capability_find(const char *name)
{
	for (int i = 0; i < NCAPS; i++)
		if (!strcmp(table[i].name, name))
			return i;
	return -1;
}

bool
hearth_capset_has_property(hearth_capset set, const char *prop)
{
	for (int i = 0; i < NCAPS; i++)
		if ((set & (1u << i)) && !strcmp(table[i].property, prop))
			return true;
	return false;
}

int
hearth_capability_check_value(const char *prop, const cJSON *v, char *why, size_t why_len)
{
	for (int i = 0; i < NCAPS; i++) {
		const struct hearth_capability *c = &table[i];

		if (strcmp(c->property, prop))
			continue;
		if (c->kind == HEARTH_VALUE_BOOL) {
			if (cJSON_IsBool(v))
				return 0;
			snprintf(why, why_len, "%s must be true or false", prop);
			return HEARTH_E_INVALID;
		}
		if (cJSON_IsNumber(v) && v->valuedouble >= c->min && v->valuedouble <= c->max)
			return 0;
		snprintf(why, why_len, "%s must be a number from %g to %g", prop, c->min, c->max);
		return HEARTH_E_INVALID;
	}
	return 0;
}
