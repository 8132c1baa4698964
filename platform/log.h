/*
 * log.h - one logging call with a module tag and a level.
 *
 * Levels above CONFIG_HEARTH_LOG_LEVEL_MAX compile away. The sink is stderr
 * (one line: time, level, tag, message) or syslog; libraries of ours only
 * call these macros, main() chooses the sink and the run-time level.
 */
#ifndef HEARTH_PLATFORM_LOG_H
#define HEARTH_PLATFORM_LOG_H

#include "hearth_config.h"

enum hearth_log_level {
	HEARTH_LOG_ERROR = 0,
	HEARTH_LOG_WARN = 1,
	HEARTH_LOG_INFO = 2,
	HEARTH_LOG_DEBUG = 3,
	HEARTH_LOG_TRACE = 4,
};

/* Run-time level (default INFO); messages above it are dropped. */
void hearth_log_set_level(int level);
int hearth_log_level(void);
/* Parse "error", "warn", "info", "debug", "trace"; -1 if unknown. */
int hearth_log_level_parse(const char *name);
/* Send log lines to syslog (ident) instead of stderr. */
void hearth_log_use_syslog(const char *ident);

void hearth_log_write(int level, const char *tag, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define HEARTH_LOG_(lvl, tag, ...)                                                                 \
	do {                                                                                       \
		if ((lvl) <= CONFIG_HEARTH_LOG_LEVEL_MAX && (lvl) <= hearth_log_level())           \
			hearth_log_write((lvl), (tag), __VA_ARGS__);                               \
	} while (0)

#define LOG_ERR(tag, ...)   HEARTH_LOG_(HEARTH_LOG_ERROR, tag, __VA_ARGS__)
#define LOG_WARN(tag, ...)  HEARTH_LOG_(HEARTH_LOG_WARN, tag, __VA_ARGS__)
#define LOG_INFO(tag, ...)  HEARTH_LOG_(HEARTH_LOG_INFO, tag, __VA_ARGS__)
#define LOG_DEBUG(tag, ...) HEARTH_LOG_(HEARTH_LOG_DEBUG, tag, __VA_ARGS__)
#define LOG_TRACE(tag, ...) HEARTH_LOG_(HEARTH_LOG_TRACE, tag, __VA_ARGS__)

#endif
