/*
 * id.h - the protocol's id rule (DESIGN.md section 4): 1..64 characters of
 * [A-Za-z0-9_.-]. Used for intent, plan, device and approver ids and for every
 * topic segment that comes from outside, so `+`, `#` and `/` cannot be smuggled
 * into a topic the hub publishes.
 */
#ifndef HEARTH_PLATFORM_ID_H
#define HEARTH_PLATFORM_ID_H

#include <stdbool.h>
#include <stddef.h>

#define HEARTH_ID_LEN_MAX 64

/* true when s[0..len) is a valid id. */
bool hearth_id_valid(const char *s, size_t len);
/* Same for a NUL-terminated string. */
bool hearth_id_valid_str(const char *s);

#endif
