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

if(HEARTH_TESTS)
	pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
endif()
