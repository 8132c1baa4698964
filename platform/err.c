/*
 * err.c - text for hearth's error codes. hearth's own codes sit below errno's
 * range; anything else is a negated errno and goes to strerror().
 */
#include "platform/err.h"

#include <string.h>

static const char *const texts[] = {
        [HEARTH_E_BAD_JSON - HEARTH_E_BASE] = "not valid JSON",
        [HEARTH_E_INVALID - HEARTH_E_BASE] = "invalid value",
        [HEARTH_E_TOO_LARGE - HEARTH_E_BASE] = "too large",
        [HEARTH_E_NOT_FOUND - HEARTH_E_BASE] = "not found",
        [HEARTH_E_MAP_FULL - HEARTH_E_BASE] = "store is full",
        [HEARTH_E_SCHEMA - HEARTH_E_BASE] = "store schema is newer than this program",
        [HEARTH_E_CORRUPT - HEARTH_E_BASE] = "store is corrupt",
        [HEARTH_E_CONFIG - HEARTH_E_BASE] = "bad configuration",
        [HEARTH_E_FULL - HEARTH_E_BASE] = "table full",
        [HEARTH_E_BUSY - HEARTH_E_BASE] = "busy",
        [HEARTH_E_STORE - HEARTH_E_BASE] = "store error",
};

const char *
hearth_strerror(int err)
{
	if (err == 0)
		return "success";
	if (err > HEARTH_E_BASE && err < HEARTH_E_END)
		return texts[err - HEARTH_E_BASE];
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}
