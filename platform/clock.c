/*
 * clock.c - monotonic and wall time in milliseconds / microseconds.
 */
#include "platform/clock.h"

#include <time.h>

int64_t
hearth_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
hearth_mono_ms(void)
{
	return hearth_mono_us() / 1000;
}

int64_t
hearth_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
