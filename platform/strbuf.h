/*
 * strbuf.h - a growing string for text built a piece at a time (a plan's
 * rationale, a table cell). After a failed allocation it stays failed (oom)
 * and ignores further pieces, so callers check once at the end.
 */
#ifndef HEARTH_PLATFORM_STRBUF_H
#define HEARTH_PLATFORM_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

/* Zero-initialise ({0}); buf is NULL until the first piece. */
struct hearth_strbuf {
	char *buf; /* NUL-terminated once anything was added */
	size_t len, cap;
	bool oom;
};

void hearth_strbuf_addf(struct hearth_strbuf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* The text built: the caller frees it with hearth_free; "" when nothing was
 * added; NULL when out of memory. b is empty again afterwards. */
char *hearth_strbuf_take(struct hearth_strbuf *b);
/* Free the text and empty b. */
void hearth_strbuf_free(struct hearth_strbuf *b);

#endif
