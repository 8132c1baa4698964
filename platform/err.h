/*
 * err.h - the one error space of hearth.
 *
 * 0 is success; errors are negative. Values from -1 to -4095 are negated
 * errno codes (-ENOMEM, -EIO...); hearth's own codes live below that range so
 * hearth_strerror() can tell them apart and fall back to strerror().
 */
#ifndef HEARTH_PLATFORM_ERR_H
#define HEARTH_PLATFORM_ERR_H

enum hearth_err {
	HEARTH_OK = 0,
	HEARTH_E_BASE = -5000,
	HEARTH_E_BAD_JSON,  /* input is not valid JSON */
	HEARTH_E_INVALID,   /* valid JSON, wrong shape or value */
	HEARTH_E_TOO_LARGE, /* input over a configured limit */
	HEARTH_E_NOT_FOUND, /* no such record / device / recipe */
	HEARTH_E_MAP_FULL,  /* the store reached its size ceiling */
	HEARTH_E_SCHEMA,    /* the store was written by a newer hearth */
	HEARTH_E_CORRUPT,   /* the store or a record does not decode */
	HEARTH_E_CONFIG,    /* bad configuration */
	HEARTH_E_FULL,      /* a fixed-size table is full */
	HEARTH_E_BUSY,      /* the resource is held by someone else */
	HEARTH_E_STORE,     /* other LMDB failure */
	HEARTH_E_END
};

/* A static, human-readable description of err (never NULL). */
const char *hearth_strerror(int err);

#endif
