/*
 * json.h - helpers on cJSON: safe parsing of untrusted bytes and typed field
 * access that says what was wrong.
 *
 * cJSON's length-bounded parser has had out-of-bounds reads, so
 * hearth_json_parse() copies the bytes into a NUL-terminated buffer first.
 */
#ifndef HEARTH_PLATFORM_JSON_H
#define HEARTH_PLATFORM_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Parse len bytes of untrusted input. Returns 0 and a new tree in *out (the
 * caller frees it with cJSON_Delete) or HEARTH_E_BAD_JSON (with a short reason
 * in why, if why is not NULL) or -ENOMEM. Trailing garbage is an error.
 */
int hearth_json_parse(const void *buf, size_t len, cJSON **out, char *why, size_t why_len);

/*
 * Typed getters on an object. Each returns 0 and the value, -ENOENT when the
 * key is absent (or JSON null), HEARTH_E_INVALID when it has another type.
 * Strings point into the tree (valid while it lives).
 */
int hearth_json_get_str(const cJSON *obj, const char *key, const char **out);
int hearth_json_get_num(const cJSON *obj, const char *key, double *out);
int hearth_json_get_int(const cJSON *obj, const char *key, long long *out);
int hearth_json_get_bool(const cJSON *obj, const char *key, bool *out);
/* The value under key if it is an object / array, else NULL. */
cJSON *hearth_json_obj(const cJSON *obj, const char *key);
cJSON *hearth_json_arr(const cJSON *obj, const char *key);

/* Compact text of item, or NULL on ENOMEM; the caller frees it with hearth_free. */
char *hearth_json_print(const cJSON *item);

/* Name of the item's JSON type ("string", "number", ...), for error messages. */
const char *hearth_json_type_name(const cJSON *item);

/*
 * Equality of two JSON values for confirmation: numbers equal within eps,
 * other types by cJSON_Compare (objects are compared key by key).
 */
bool hearth_json_value_equal(const cJSON *a, const cJSON *b, double eps);

#endif
