/*
 * alloc.c - the one allocator of hearth. A thin layer over malloc whose only
 * job is to let tests inject an allocation failure at a chosen point, the way
 * SQLite tests its out-of-memory paths. It never aborts: callers handle NULL.
 */
#include "platform/alloc.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static long fail_after = -1; /* test hook; < 0 means never fail */

static int
should_fail(void)
{
	if (fail_after < 0)
		return 0;
	if (fail_after == 0) {
		fail_after = -1;
		return 1;
	}
	fail_after--;
	return 0;
}

void
hearth_alloc_fail_after(long n)
{
	fail_after = n;
}

void *
hearth_malloc(size_t n)
{
	if (should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *
hearth_calloc(size_t count, size_t n)
{
	if (should_fail())
		return NULL;
	return calloc(count ? count : 1, n ? n : 1);
}

void *
hearth_realloc(void *p, size_t n)
{
	if (should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

void
hearth_free(void *p)
{
	free(p);
}

char *
hearth_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *d = hearth_malloc(len + 1);

	if (!d)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

char *
hearth_strdup(const char *s)
{
	return hearth_strndup(s, strlen(s));
}

void *
hearth_memdup(const void *p, size_t n)
{
	void *d = hearth_malloc(n);

	if (d && n)
		memcpy(d, p, n);
	return d;
}

static void *
cjson_malloc(size_t n)
{
	return hearth_malloc(n);
}

void
hearth_alloc_init(void)
{
	cJSON_Hooks hooks = {.malloc_fn = cjson_malloc, .free_fn = hearth_free};

	cJSON_InitHooks(&hooks);
}
