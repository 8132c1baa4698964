/*
 * clock.h - time. Monotonic milliseconds for timers and deadlines, wall-clock
 * milliseconds since the Unix epoch for `ts` fields. Agents never call these:
 * the runtime hands them the time, so tests can use a fake clock.
 */
#ifndef HEARTH_PLATFORM_CLOCK_H
#define HEARTH_PLATFORM_CLOCK_H

#include <stdint.h>

int64_t hearth_mono_ms(void);
int64_t hearth_mono_us(void);
int64_t hearth_wall_ms(void);

#endif
