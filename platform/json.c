/*
 * json.c - the one door through which untrusted JSON enters hearth, and the
 * typed accessors every module uses on cJSON trees. Parsing copies the bytes
 * into a NUL-terminated buffer (cJSON's length-bounded parser has read out of
 * bounds before), refuses embedded NUL bytes and trailing garbage, and tells
 * a syntax error apart from running out of memory. The getters never
 * coerce: a field of the wrong type is an error, not a zero. This module owns
 * no tree it returns and never prints.
 */
#include "platform/json.h"

#include "platform/alloc.h"
#include "platform/err.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ==== Strict syntax check ==== */

/*
 * cJSON returns NULL both for bad syntax and for a failed allocation. To
 * tell them apart after a failure, the input is checked against RFC 8259
 * plus cJSON's own limits (nesting depth, 63-character numbers). This check
 * accepts only a subset of what cJSON accepts, so when it passes, cJSON can
 * only have failed for want of memory. It allocates nothing.
 */
enum scan_result {
	SCAN_OK,
	SCAN_BAD,
	SCAN_TOO_DEEP,
};

struct scan {
	const unsigned char *p;
	const unsigned char *end;
	size_t depth;
};

static enum scan_result scan_value(struct scan *s);

static void
scan_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int
hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits after "\u" at p; -1 if they are not there. */
static long
scan_hex4(const struct scan *s, const unsigned char *p)
{
	long v = 0;

	if (s->end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int d = hex_digit(p[i]);

		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static enum scan_result
scan_string(struct scan *s)
{
	s->p++; /* the opening quote */
	while (s->p < s->end) {
		unsigned char c = *s->p;

		if (c == '"') {
			s->p++;
			return SCAN_OK;
		}
		if (c < 0x20)
			return SCAN_BAD;
		if (c != '\\') {
			s->p++;
			continue;
		}
		if (s->end - s->p < 2)
			return SCAN_BAD;
		c = s->p[1];
		if (strchr("\"\\/bfnrt", c) && c != '\0') {
			s->p += 2;
			continue;
		}
		if (c != 'u')
			return SCAN_BAD;
		long hi = scan_hex4(s, s->p + 2);
		if (hi < 0 || (hi >= 0xDC00 && hi <= 0xDFFF))
			return SCAN_BAD;
		s->p += 6;
		if (hi < 0xD800 || hi > 0xDBFF)
			continue;
		/* a high surrogate must be followed by a low one */
		if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u')
			return SCAN_BAD;
		long lo = scan_hex4(s, s->p + 2);
		if (lo < 0xDC00 || lo > 0xDFFF)
			return SCAN_BAD;
		s->p += 6;
	}
	return SCAN_BAD;
}

static enum scan_result
scan_number(struct scan *s)
{
	const unsigned char *start = s->p;

	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p >= s->end)
		return SCAN_BAD;
	if (*s->p == '0') {
		s->p++;
	} else if (*s->p >= '1' && *s->p <= '9') {
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	} else {
		return SCAN_BAD;
	}
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return SCAN_BAD;
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return SCAN_BAD;
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	/* cJSON hands at most 63 characters of a number to strtod */
	return s->p - start <= 63 ? SCAN_OK : SCAN_BAD;
}

static enum scan_result
scan_literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return SCAN_BAD;
	s->p += n;
	return SCAN_OK;
}

/* An array (close ']') or an object (close '}'), the opening byte at s->p. */
static enum scan_result
scan_container(struct scan *s, unsigned char close)
{
	enum scan_result r;

	if (s->depth >= CJSON_NESTING_LIMIT)
		return SCAN_TOO_DEEP;
	s->depth++;
	s->p++;
	scan_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		return SCAN_OK;
	}
	for (;;) {
		if (close == '}') {
			if (s->p >= s->end || *s->p != '"')
				return SCAN_BAD;
			r = scan_string(s);
			if (r != SCAN_OK)
				return r;
			scan_ws(s);
			if (s->p >= s->end || *s->p != ':')
				return SCAN_BAD;
			s->p++;
			scan_ws(s);
		}
		r = scan_value(s);
		if (r != SCAN_OK)
			return r;
		scan_ws(s);
		if (s->p >= s->end)
			return SCAN_BAD;
		if (*s->p == close) {
			s->p++;
			s->depth--;
			return SCAN_OK;
		}
		if (*s->p != ',')
			return SCAN_BAD;
		s->p++;
		scan_ws(s);
	}
}

static enum scan_result
scan_value(struct scan *s)
{
	if (s->p >= s->end)
		return SCAN_BAD;
	switch (*s->p) {
	case '{':
		return scan_container(s, '}');
	case '[':
		return scan_container(s, ']');
	case '"':
		return scan_string(s);
	case 't':
		return scan_literal(s, "true");
	case 'f':
		return scan_literal(s, "false");
	case 'n':
		return scan_literal(s, "null");
	default:
		return scan_number(s);
	}
}

static enum scan_result
scan_document(const char *text, size_t len)
{
	struct scan s = {(const unsigned char *)text, (const unsigned char *)text + len, 0};
	enum scan_result r;

	scan_ws(&s);
	r = scan_value(&s);
	if (r != SCAN_OK)
		return r;
	scan_ws(&s);
	return s.p == s.end ? SCAN_OK : SCAN_BAD;
}

/* ==== Parsing ==== */

static void
set_why(char *why, size_t why_len, const char *msg, size_t at)
{
	if (why && why_len)
		snprintf(why, why_len, "%s %zu", msg, at);
}

int
hearth_json_parse(const void *buf, size_t len, cJSON **out, char *why, size_t why_len)
{
	const void *nul;
	const char *end = NULL;
	char *text;
	size_t at;
	enum scan_result r;

	assert(out);
	*out = NULL;
	if (why && why_len)
		why[0] = '\0';
	if (len == 0) {
		if (why && why_len)
			snprintf(why, why_len, "empty input");
		return HEARTH_E_BAD_JSON;
	}
	if (!buf)
		return -EINVAL; /* a caller's bug, not bad input */
	/* cJSON would stop at a NUL and take what comes before as the whole text */
	nul = memchr(buf, '\0', len);
	if (nul) {
		set_why(why, why_len, "NUL byte in input at byte",
		        (size_t)((const char *)nul - (const char *)buf));
		return HEARTH_E_BAD_JSON;
	}
	if (len == SIZE_MAX)
		return -ENOMEM;
	text = hearth_malloc(len + 1);
	if (!text)
		return -ENOMEM;
	memcpy(text, buf, len);
	text[len] = '\0';

	*out = cJSON_ParseWithOpts(text, &end, 1);
	if (*out) {
		hearth_free(text);
		return 0;
	}

	r = scan_document(text, len);
	if (r == SCAN_OK) {
		/* the text is valid: cJSON failed for want of memory */
		hearth_free(text);
		return -ENOMEM;
	}
	/* end points into text, at most at its terminating NUL */
	at = (end && end >= text && end <= text + len) ? (size_t)(end - text) : len;
	if (r == SCAN_TOO_DEEP)
		set_why(why, why_len, "JSON nested too deeply near byte", at);
	else if (at >= len)
		set_why(why, why_len, "JSON ends too early at byte", at);
	else
		set_why(why, why_len, "not valid JSON near byte", at);
	hearth_free(text);
	return HEARTH_E_BAD_JSON;
}

/* ==== Typed getters ==== */

/* The member key of obj, or NULL when obj is not an object or lacks key. */
static cJSON *
field(const cJSON *obj, const char *key)
{
	if (!cJSON_IsObject(obj) || !key)
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Shared preamble of the getters: 0 with the item, -ENOENT when missing. */
static int
present(const cJSON *obj, const char *key, const cJSON **item)
{
	*item = field(obj, key);
	if (!*item || cJSON_IsNull(*item))
		return -ENOENT;
	return 0;
}

int
hearth_json_get_str(const cJSON *obj, const char *key, const char **out)
{
	const cJSON *item;
	int rc = present(obj, key, &item);

	if (rc)
		return rc;
	if (!cJSON_IsString(item) || !item->valuestring)
		return HEARTH_E_INVALID;
	*out = item->valuestring;
	return 0;
}

int
hearth_json_get_num(const cJSON *obj, const char *key, double *out)
{
	const cJSON *item;
	int rc = present(obj, key, &item);

	if (rc)
		return rc;
	if (!cJSON_IsNumber(item))
		return HEARTH_E_INVALID;
	*out = item->valuedouble;
	return 0;
}

int
hearth_json_get_int(const cJSON *obj, const char *key, long long *out)
{
	const cJSON *item;
	int rc = present(obj, key, &item);
	double d;

	if (rc)
		return rc;
	if (!cJSON_IsNumber(item))
		return HEARTH_E_INVALID;
	d = item->valuedouble;
	/* whole numbers in [-2^63, 2^63) only; 1.5 or 1e300 is not an integer */
	if (!isfinite(d) || d != trunc(d) || d < -9223372036854775808.0 ||
	    d >= 9223372036854775808.0)
		return HEARTH_E_INVALID;
	*out = (long long)d;
	return 0;
}

int
hearth_json_get_bool(const cJSON *obj, const char *key, bool *out)
{
	const cJSON *item;
	int rc = present(obj, key, &item);

	if (rc)
		return rc;
	if (!cJSON_IsBool(item))
		return HEARTH_E_INVALID;
	*out = cJSON_IsTrue(item);
	return 0;
}

cJSON *
hearth_json_obj(const cJSON *obj, const char *key)
{
	cJSON *item = field(obj, key);

	return cJSON_IsObject(item) ? item : NULL;
}

cJSON *
hearth_json_arr(const cJSON *obj, const char *key)
{
	cJSON *item = field(obj, key);

	return cJSON_IsArray(item) ? item : NULL;
}

/* ==== Printing and comparing ==== */

char *
hearth_json_print(const cJSON *item)
{
	if (!item)
		return NULL;
	/* allocated through cJSON's hooks, which hearth_alloc_init() points at hearth_malloc */
	return cJSON_PrintUnformatted(item);
}

const char *
hearth_json_type_name(const cJSON *item)
{
	if (!item)
		return "missing";
	switch (item->type & 0xFF) {
	case cJSON_False:
	case cJSON_True:
		return "boolean";
	case cJSON_NULL:
		return "null";
	case cJSON_Number:
		return "number";
	case cJSON_String:
		return "string";
	case cJSON_Array:
		return "array";
	case cJSON_Object:
		return "object";
	case cJSON_Raw:
		return "raw";
	default:
		return "invalid";
	}
}

/* The k-th (from 0) member of obj named key, or NULL. */
static const cJSON *
nth_member(const cJSON *obj, const char *key, size_t k)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, obj)
	{
		if (m->string && strcmp(m->string, key) == 0 && k-- == 0)
			return m;
	}
	return NULL;
}

/*
 * Objects of the same size whose members pair up by key. A key that occurs
 * more than once (legal JSON, if unwise) pairs its n-th occurrence in a with
 * its n-th in b, so the relation stays an equivalence.
 */
static bool
members_equal(const cJSON *a, const cJSON *b, double eps)
{
	const cJSON *m, *prev, *other;

	if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
		return false;
	cJSON_ArrayForEach(m, a)
	{
		size_t k = 0;

		if (!m->string)
			return false;
		for (prev = a->child; prev != m; prev = prev->next)
			if (prev->string && strcmp(prev->string, m->string) == 0)
				k++;
		other = nth_member(b, m->string, k);
		if (!other || !hearth_json_value_equal(m, other, eps))
			return false;
	}
	return true;
}

bool
hearth_json_value_equal(const cJSON *a, const cJSON *b, double eps)
{
	const cJSON *x, *y;

	if (!a || !b)
		return a == b;
	if ((a->type & 0xFF) != (b->type & 0xFF))
		return false;
	switch (a->type & 0xFF) {
	case cJSON_Number:
		/* == first: 1e999 parses to infinity, and inf - inf is NaN */
		return a->valuedouble == b->valuedouble ||
		       fabs(a->valuedouble - b->valuedouble) <= eps;
	case cJSON_Array:
		for (x = a->child, y = b->child; x && y; x = x->next, y = y->next)
			if (!hearth_json_value_equal(x, y, eps))
				return false;
		return !x && !y;
	case cJSON_Object:
		return members_equal(a, b, eps);
	default:
		return cJSON_Compare(a, b, true);
	}
}
