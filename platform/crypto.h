/*
 * crypto.h - the hashes hearth needs, on mbedTLS (the mbedtls_md_* API).
 */
#ifndef HEARTH_PLATFORM_CRYPTO_H
#define HEARTH_PLATFORM_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEARTH_SHA256_LEN 32

/* SHA-256 of len bytes into out. Returns 0 or a negative hearth error. */
int hearth_sha256(const void *data, size_t len, uint8_t out[HEARTH_SHA256_LEN]);
/* HMAC-SHA256(key, msg) into out. Returns 0 or a negative hearth error. */
int hearth_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                       uint8_t out[HEARTH_SHA256_LEN]);

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void hearth_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decode exactly out_len bytes from 2*out_len hex digits (any case) in a
 * NUL-terminated string. Returns 0, or HEARTH_E_INVALID on bad length/digit. */
int hearth_hex_decode(const char *hex, uint8_t *out, size_t out_len);
/* Constant-time comparison of n bytes. */
bool hearth_ct_equal(const void *a, const void *b, size_t n);
/* n bytes from the OS's random source (getrandom). Returns 0 or -errno. */
int hearth_random(void *out, size_t n);

#endif
