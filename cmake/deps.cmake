# Third-party libraries, as imported targets. Their headers are SYSTEM so our
# -Werror applies to our code only.
find_package(PkgConfig REQUIRED)
pkg_check_modules(MOSQUITTO REQUIRED IMPORTED_TARGET libmosquitto)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(LMDB REQUIRED IMPORTED_TARGET lmdb)

# mbedTLS 2.28 ships no pkg-config file.
find_path(MBEDTLS_INCLUDE_DIR mbedtls/md.h REQUIRED)
find_library(MBEDCRYPTO_LIBRARY mbedcrypto REQUIRED)
add_library(hearth_mbedcrypto INTERFACE)
target_include_directories(hearth_mbedcrypto SYSTEM INTERFACE ${MBEDTLS_INCLUDE_DIR})
target_link_libraries(hearth_mbedcrypto INTERFACE ${MBEDCRYPTO_LIBRARY})

# CoAP (CONFIG_HEARTH_COAP): libcoap 3 through pkg-config, host or :arm64
# alike (the toolchain file points pkg-config at the target's .pc files).
# Debian's libcoap3-dev ships it built with OpenSSL, GnuTLS or no TLS; hearth
# speaks coap:// only, so any of them will do.
file(STRINGS "${HEARTH_CONFIG_HEADER}" _hearth_coap REGEX "^#define CONFIG_HEARTH_COAP 1$")
set(HEARTH_COAP OFF)
if(_hearth_coap)
	pkg_search_module(COAP IMPORTED_TARGET libcoap-3-openssl libcoap-3-notls libcoap-3-gnutls
		libcoap-3)
	if(NOT COAP_FOUND)
		message(FATAL_ERROR "CONFIG_HEARTH_COAP needs libcoap 3: apt-get install libcoap3-dev "
			"(scripts/deps.sh), or turn HEARTH_COAP off (menuconfig)")
	endif()
	set(HEARTH_COAP ON)
endif()

if(HEARTH_TESTS)
	pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
endif()
