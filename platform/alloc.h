/*
 * alloc.h - every allocation in hearth goes through these, so a test can make
 * the Nth one fail (hearth_alloc_fail_after) and check the error paths.
 * cJSON is pointed at them too (hearth_alloc_init).
 */
#ifndef HEARTH_PLATFORM_ALLOC_H
#define HEARTH_PLATFORM_ALLOC_H

#include <stddef.h>

void *hearth_malloc(size_t n);
void *hearth_calloc(size_t count, size_t n);
void *hearth_realloc(void *p, size_t n);
void hearth_free(void *p);
/* A copy of s, or NULL; the caller frees it. */
char *hearth_strdup(const char *s);
char *hearth_strndup(const char *s, size_t n);
void *hearth_memdup(const void *p, size_t n);

/* Route cJSON's allocations through the functions above. Call once at start. */
void hearth_alloc_init(void);

/* Test hook: the allocation after the next n succeeds fails (n < 0: never). */
void hearth_alloc_fail_after(long n);

#endif
