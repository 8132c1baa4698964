/*
 * test_crypto.c - platform/crypto against published vectors: SHA-256 from
 * FIPS 180-2 (appendix B), HMAC-SHA256 from RFC 4231 (cases 1-4, 6, 7; case 5
 * tests truncation, which hearth does not do), plus the hex codec, the
 * constant-time compare and the random source.
 */
#include "platform/crypto.h"
#include "platform/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Hash or MAC as lowercase hex, compared against the published value. */
static void
assert_digest(const uint8_t digest[HEARTH_SHA256_LEN], const char *expected_hex)
{
	char hex[2 * HEARTH_SHA256_LEN + 1];

	hearth_hex_encode(digest, HEARTH_SHA256_LEN, hex);
	assert_string_equal(hex, expected_hex);
}

static void
check_sha256(const void *data, size_t len, const char *expected_hex)
{
	uint8_t out[HEARTH_SHA256_LEN];

	assert_int_equal(hearth_sha256(data, len, out), 0);
	assert_digest(out, expected_hex);
}

static void
check_hmac(const void *key, size_t key_len, const void *msg, size_t msg_len,
           const char *expected_hex)
{
	uint8_t out[HEARTH_SHA256_LEN];

	assert_int_equal(hearth_hmac_sha256(key, key_len, msg, msg_len, out), 0);
	assert_digest(out, expected_hex);
}

/* ==== SHA-256, FIPS 180-2 ==== */

static void
test_sha256_empty(void **state)
{
	check_sha256("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_sha256(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void
test_sha256_abc(void **state)
{
	check_sha256("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_sha256_448_bits(void **state)
{
	static const char msg[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

	assert_int_equal(strlen(msg) * 8, 448);
	check_sha256(msg, strlen(msg),
	             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void
test_sha256_million_a(void **state)
{
	size_t n = 1000000;
	char *msg = malloc(n);

	assert_non_null(msg);
	memset(msg, 'a', n);
	check_sha256(msg, n, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(msg);
}

static void
test_sha256_bad_args(void **state)
{
	uint8_t out[HEARTH_SHA256_LEN];

	assert_true(hearth_sha256(NULL, 1, out) < 0);
}

/* ==== HMAC-SHA256, RFC 4231 ==== */

static void
test_hmac_rfc4231_case1(void **state)
{
	uint8_t key[20];

	memset(key, 0x0b, sizeof(key));
	check_hmac(key, sizeof(key), "Hi There", 8,
	           "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

static void
test_hmac_rfc4231_case2(void **state)
{
	static const char msg[] = "what do ya want for nothing?";

	check_hmac("Jefe", 4, msg, strlen(msg),
	           "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void
test_hmac_rfc4231_case3(void **state)
{
	uint8_t key[20], msg[50];

	memset(key, 0xaa, sizeof(key));
	memset(msg, 0xdd, sizeof(msg));
	check_hmac(key, sizeof(key), msg, sizeof(msg),
	           "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

static void
test_hmac_rfc4231_case4(void **state)
{
	uint8_t key[25], msg[50];

	assert_int_equal(hearth_hex_decode("0102030405060708090a0b0c0d0e0f10111213141516171819",
	                                   key, sizeof(key)),
	                 0);
	memset(msg, 0xcd, sizeof(msg));
	check_hmac(key, sizeof(key), msg, sizeof(msg),
	           "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

static void
test_hmac_rfc4231_case6(void **state)
{
	static const char msg[] = "Test Using Larger Than Block-Size Key - Hash Key First";
	uint8_t key[131];

	memset(key, 0xaa, sizeof(key));
	check_hmac(key, sizeof(key), msg, strlen(msg),
	           "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void
test_hmac_rfc4231_case7(void **state)
{
	static const char msg[] = "This is a test using a larger than block-size key and a larger "
	                          "than block-size data. The key needs to be hashed before being "
	                          "used by the HMAC algorithm.";
	uint8_t key[131];

	assert_int_equal(strlen(msg), 152);
	memset(key, 0xaa, sizeof(key));
	check_hmac(key, sizeof(key), msg, strlen(msg),
	           "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

static void
test_hmac_empty_key_and_msg(void **state)
{
	uint8_t a[HEARTH_SHA256_LEN], b[HEARTH_SHA256_LEN];

	/* HMAC with an empty key and message is defined; NULL pointers with 0 are fine */
	assert_int_equal(hearth_hmac_sha256(NULL, 0, NULL, 0, a), 0);
	assert_int_equal(hearth_hmac_sha256("", 0, "", 0, b), 0);
	assert_memory_equal(a, b, sizeof(a));
	assert_digest(a, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
	assert_true(hearth_hmac_sha256(NULL, 1, "", 0, a) < 0);
}

/* ==== Hex ==== */

static void
test_hex_round_trip(void **state)
{
	const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
	uint8_t back[sizeof(in)];
	char hex[2 * sizeof(in) + 1];

	hearth_hex_encode(in, sizeof(in), hex);
	assert_string_equal(hex, "00017f80abff");
	assert_int_equal(hearth_hex_decode(hex, back, sizeof(back)), 0);
	assert_memory_equal(in, back, sizeof(in));

	/* any case on input */
	assert_int_equal(hearth_hex_decode("00017F80ABff", back, sizeof(back)), 0);
	assert_memory_equal(in, back, sizeof(in));

	hearth_hex_encode(in, 0, hex);
	assert_string_equal(hex, "");
	assert_int_equal(hearth_hex_decode("", back, 0), 0);
}

static void
test_hex_decode_rejects(void **state)
{
	uint8_t out[2] = {0x55, 0x55};

	assert_int_equal(hearth_hex_decode("abc", out, 2), HEARTH_E_INVALID);    /* short */
	assert_int_equal(hearth_hex_decode("abcde", out, 2), HEARTH_E_INVALID);  /* odd, long */
	assert_int_equal(hearth_hex_decode("abcdef", out, 2), HEARTH_E_INVALID); /* long */
	assert_int_equal(hearth_hex_decode("abcg", out, 2), HEARTH_E_INVALID);   /* bad digit */
	assert_int_equal(hearth_hex_decode("ab c", out, 2), HEARTH_E_INVALID);
	assert_int_equal(hearth_hex_decode("0x12", out, 2), HEARTH_E_INVALID);
	assert_int_equal(hearth_hex_decode(NULL, out, 2), HEARTH_E_INVALID);
	/* a failed decode leaves out untouched */
	assert_int_equal(out[0], 0x55);
	assert_int_equal(out[1], 0x55);
}

/* ==== Constant-time compare ==== */

static void
test_ct_equal(void **state)
{
	uint8_t a[64], b[64];

	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)i;
	assert_true(hearth_ct_equal(a, b, sizeof(a)));
	assert_true(hearth_ct_equal(a, b, 0));
	b[0] ^= 1;
	assert_false(hearth_ct_equal(a, b, sizeof(a)));
	b[0] ^= 1;
	b[63] ^= 0x80;
	assert_false(hearth_ct_equal(a, b, sizeof(a)));
	assert_true(hearth_ct_equal(a, b, 63));
}

/* ==== Randomness ==== */

static void
test_random(void **state)
{
	uint8_t a[32], b[32], zero[32] = {0};
	size_t big = 1 << 20;
	uint8_t *buf = malloc(big);

	assert_int_equal(hearth_random(a, sizeof(a)), 0);
	assert_int_equal(hearth_random(b, sizeof(b)), 0);
	/* 2^-256 odds of a false failure */
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_int_equal(hearth_random(a, 0), 0);

	/* large requests come back in pieces; the loop must fill all of it */
	assert_non_null(buf);
	memset(buf, 0, big);
	assert_int_equal(hearth_random(buf, big), 0);
	assert_memory_not_equal(buf + big - sizeof(zero), zero, sizeof(zero));
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sha256_empty),
	        cmocka_unit_test(test_sha256_abc),
	        cmocka_unit_test(test_sha256_448_bits),
	        cmocka_unit_test(test_sha256_million_a),
	        cmocka_unit_test(test_sha256_bad_args),
	        cmocka_unit_test(test_hmac_rfc4231_case1),
	        cmocka_unit_test(test_hmac_rfc4231_case2),
	        cmocka_unit_test(test_hmac_rfc4231_case3),
	        cmocka_unit_test(test_hmac_rfc4231_case4),
	        cmocka_unit_test(test_hmac_rfc4231_case6),
	        cmocka_unit_test(test_hmac_rfc4231_case7),
	        cmocka_unit_test(test_hmac_empty_key_and_msg),
	        cmocka_unit_test(test_hex_round_trip),
	        cmocka_unit_test(test_hex_decode_rejects),
	        cmocka_unit_test(test_ct_equal),
	        cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
