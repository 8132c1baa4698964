# Cross compile for 64-bit ARM hubs on a Debian amd64 host (multiarch).
#
#   scripts/deps.sh --cross
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake \
#         -DPython3_EXECUTABLE=/usr/bin/python3 -DHEARTH_INTEGRATION=OFF
#   cmake --build build-aarch64 -j2 && ctest --test-dir build-aarch64 -L unit
#
# The compiler and its libc come from crossbuild-essential-arm64
# (/usr/aarch64-linux-gnu); the libraries hearth links are Debian's :arm64
# packages in /usr/lib/aarch64-linux-gnu. Tests run under qemu-user-static
# (binfmt need not be registered: ctest prepends the emulator to every test
# whose command is a target). The Kconfig step runs on the host with
# /usr/bin/python3.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
# Programs (python3, pkg-config) are the host's. Libraries and headers are
# searched in the cross root first, then in the host's arm64 multiarch dirs
# (/usr/lib/aarch64-linux-gnu, found through CMAKE_LIBRARY_ARCHITECTURE).
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config sees only the arm64 .pc files (and the arch-independent ones).
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

set(CMAKE_CROSSCOMPILING_EMULATOR "qemu-aarch64-static;-L;/usr/aarch64-linux-gnu")

if(NOT DEFINED Python3_EXECUTABLE AND EXISTS /usr/bin/python3)
	set(Python3_EXECUTABLE /usr/bin/python3)
endif()
