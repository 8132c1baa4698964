/*
 * crypto.c - the few cryptographic primitives hearth needs: SHA-256 for the
 * audit chain, HMAC-SHA256 for signed approvals, hex for putting both on the
 * wire, a constant-time compare for checking a MAC, and OS randomness for
 * keys. Hashing goes through mbedTLS's generic mbedtls_md_* API (the
 * per-algorithm calls are deprecated in 2.28); randomness comes straight from
 * getrandom(2). Nothing here keeps state or allocates through hearth, and no
 * function ever compares a secret with memcmp.
 */
#include "platform/crypto.h"

#include "platform/err.h"

#include <errno.h>
#include <mbedtls/md.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

/* A negative hearth error for an mbedtls_md_* return code. */
static int
md_error(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case MBEDTLS_ERR_MD_ALLOC_FAILED:
		return -ENOMEM;
	case MBEDTLS_ERR_MD_BAD_INPUT_DATA:
		return -EINVAL;
	default:
		return -EIO;
	}
}

int
hearth_sha256(const void *data, size_t len, uint8_t out[HEARTH_SHA256_LEN])
{
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);

	if (!md)
		return -ENOSYS;
	if ((!data && len) || !out)
		return -EINVAL;
	return md_error(mbedtls_md(md, data, len, out));
}

int
hearth_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                   uint8_t out[HEARTH_SHA256_LEN])
{
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);

	if (!md)
		return -ENOSYS;
	if ((!key && key_len) || (!msg && msg_len) || !out)
		return -EINVAL;
	return md_error(mbedtls_md_hmac(md, key, key_len, msg, msg_len, out));
}

void
hearth_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

static int
nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
hearth_hex_decode(const char *hex, uint8_t *out, size_t out_len)
{
	if (!hex || out_len > SIZE_MAX / 2 - 1)
		return HEARTH_E_INVALID;
	/* strnlen: a longer string is wrong anyway, no need to walk all of it */
	if (strnlen(hex, 2 * out_len + 1) != 2 * out_len)
		return HEARTH_E_INVALID;
	/* check every digit first so out is untouched on error */
	for (size_t i = 0; i < 2 * out_len; i++)
		if (nibble(hex[i]) < 0)
			return HEARTH_E_INVALID;
	for (size_t i = 0; i < out_len; i++)
		out[i] = (uint8_t)(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
	return 0;
}

bool
hearth_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a;
	const volatile unsigned char *y = b;
	volatile unsigned char diff = 0;

	/* no early exit: the time taken depends on n only */
	for (size_t i = 0; i < n; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

int
hearth_random(void *out, size_t n)
{
	unsigned char *p = out;

	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (got == 0)
			return -EIO; /* cannot happen for n > 0; do not spin */
		p += got;
		n -= (size_t)got;
	}
	return 0;
}
