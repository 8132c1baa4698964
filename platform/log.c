/*
 * log.c - the log sink. One line per call: wall time, level, module tag,
 * message; to stderr (default) or syslog. The level filter is a plain int read
 * by the LOG_* macros before any formatting happens.
 */
#include "platform/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

static int run_level = HEARTH_LOG_INFO;
static bool to_syslog;

static const char *const names[] = {"error", "warn", "info", "debug", "trace"};

void
hearth_log_set_level(int level)
{
	run_level = level;
}

int
hearth_log_level(void)
{
	return run_level;
}

int
hearth_log_level_parse(const char *name)
{
	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (!strcasecmp(name, names[i]))
			return i;
	return -1;
}

void
hearth_log_use_syslog(const char *ident)
{
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	to_syslog = true;
}

void
hearth_log_write(int level, const char *tag, const char *fmt, ...)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_DEBUG};
	char msg[1024];
	va_list ap;

	if (level < 0)
		level = 0;
	if (level > HEARTH_LOG_TRACE)
		level = HEARTH_LOG_TRACE;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (to_syslog) {
		syslog(prio[level], "%s: %s", tag, msg);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char when[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld %-5s %-8s %s\n", when, ts.tv_nsec / 1000000L, names[level], tag,
	        msg);
}
