/*
 * strbuf.c - the growing string of strbuf.h: formats straight into the
 * buffer, and grows (doubling) only when a piece does not fit.
 */
#include "platform/strbuf.h"

#include "platform/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void
hearth_strbuf_addf(struct hearth_strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->buf ? b->buf + b->len : NULL, b->buf ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->buf && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = (b->cap ? b->cap * 2 : 256) + (size_t)n;
		char *nb = hearth_realloc(b->buf, ncap);

		if (!nb) {
			b->oom = true;
			return;
		}
		b->buf = nb;
		b->cap = ncap;
	}
}

char *
hearth_strbuf_take(struct hearth_strbuf *b)
{
	char *s = b->oom ? NULL : b->buf ? b->buf : hearth_strdup("");

	if (b->oom)
		hearth_free(b->buf);
	memset(b, 0, sizeof(*b));
	return s;
}

void
hearth_strbuf_free(struct hearth_strbuf *b)
{
	hearth_free(b->buf);
	memset(b, 0, sizeof(*b));
}
