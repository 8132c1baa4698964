/*
 * fusion.c - the half-life table and the decay arithmetic of the context
 * agent's fusion (see fusion.h). It owns no state and reads no clock: every
 * age is computed by the caller from the hearth_now it was handed. Changing
 * how long a kind of signal is believed is changing one row here.
 */
#include "agents/context/fusion.h"

#include <math.h>
#include <string.h>

#define MIN_MS  (60LL * 1000)
#define HOUR_MS (60 * MIN_MS)

/*
 * Half-lives per property class. Actuator state is what the device last
 * said it did: it holds until someone changes it, so it is believed for an
 * hour. Sensors report what they see now: motion is stale within minutes
 * (sensors re-trigger while someone moves), occupancy (presence radar,
 * PIRs that clear it themselves) is held while someone is there, temperature drifts over half an hour, illuminance
 * follows clouds and lamps. A presence flag (a phone, an alarm panel) is set
 * on purpose and held for hours. Anything else (linkquality, battery...)
 * gets the default row.
 */
static const struct hearth_fusion_class table[] = {
        {"on", "actuator", HOUR_MS},
        {"brightness", "actuator", HOUR_MS},
        {"color_temp", "actuator", HOUR_MS},
        {"position", "actuator", HOUR_MS},
        {"locked", "actuator", HOUR_MS},
        {"setpoint", "actuator", HOUR_MS},
        {"volume", "actuator", HOUR_MS},
        {"motion", "motion", 2 * MIN_MS},
        {"occupancy", "occupancy", 30 * MIN_MS},
        {"contact", "contact", HOUR_MS},
        {"temperature", "temperature", 30 * MIN_MS},
        {"illuminance", "illuminance", 10 * MIN_MS},
        {"presence", "presence", 6 * HOUR_MS},
        {NULL, "other", HOUR_MS},
};

const struct hearth_fusion_class *
hearth_fusion_class(const char *prop)
{
	const struct hearth_fusion_class *r = table;

	for (; r->property; r++)
		if (prop && !strcmp(r->property, prop))
			return r;
	return r;
}

int64_t
hearth_fusion_half_life_ms(const char *prop)
{
	return hearth_fusion_class(prop)->half_life_ms;
}

double
hearth_fusion_decay(double weight, int64_t age_ms, int64_t half_life_ms)
{
	if (age_ms <= 0)
		return weight;
	if (half_life_ms <= 0)
		return 0;
	return weight * exp2(-(double)age_ms / (double)half_life_ms);
}

double
hearth_fusion_confidence(const char *prop, int64_t age_ms, bool stale)
{
	return hearth_fusion_decay(stale ? HEARTH_FUSION_OFFLINE_FACTOR : 1.0, age_ms,
	                           hearth_fusion_half_life_ms(prop));
}
