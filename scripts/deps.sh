#!/usr/bin/env bash
# deps.sh - install what hearth needs to build and test, from Debian's apt.
#
#   scripts/deps.sh            # host toolchain, libraries, mosquitto, python modules
#   scripts/deps.sh --cross    # also the aarch64 cross toolchain, qemu and :arm64 libraries
#
# Idempotent and quick when everything is present (dpkg-query only; apt-get
# update runs only when something must be installed). Non-interactive. Runs as
# root, or through sudo for anyone else.
set -euo pipefail

CROSS=0
for arg in "$@"; do
	case $arg in
	--cross) CROSS=1 ;;
	-h | --help)
		sed -n '2,9p' "$0"
		exit 0
		;;
	*)
		echo "deps.sh: unknown option '$arg' (try --help)" >&2
		exit 2
		;;
	esac
done

HOST_PKGS=(build-essential cmake pkg-config clang-format libmosquitto-dev mosquitto
	mosquitto-clients libcjson-dev liblmdb-dev lmdb-utils libmbedtls-dev libcoap3-dev
	libcoap3-bin libcmocka-dev python3-kconfiglib python3-paho-mqtt)
CROSS_TOOLS=(crossbuild-essential-arm64 qemu-user-static)
# The libraries hearth links, for arm64. Those the archive lacks are skipped.
CROSS_LIBS=(libmosquitto-dev:arm64 libcjson-dev:arm64 liblmdb-dev:arm64
	libmbedtls-dev:arm64 libcmocka-dev:arm64 libcoap3-dev:arm64)

say() { echo "deps: $*"; }

if [[ $(id -u) -eq 0 ]]; then
	SUDO=()
elif command -v sudo >/dev/null; then
	# No terminal (CI): sudo must not wait for a password nobody can type.
	if [[ -t 0 ]]; then SUDO=(sudo); else SUDO=(sudo -n); fi
else
	echo "deps.sh: not root and no sudo: run it as root" >&2
	exit 1
fi

APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y
	-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
	-o Dpkg::Options::=--force-confold)

installed() { [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == ii* ]]; }
missing_of() { # missing_of PKG... -> names not installed, one a line
	local p
	for p in "$@"; do installed "$p" || echo "$p"; done
}

UPDATED=0
apt_update() {
	((UPDATED)) && return 0
	say "apt-get update"
	"${APT[@]}" update >/dev/null
	UPDATED=1
}

# ---------------------------------------------------------------- host
mapfile -t need < <(missing_of "${HOST_PKGS[@]}")
if ((${#need[@]})); then
	apt_update
	say "installing ${need[*]}"
	"${APT[@]}" install --no-install-recommends "${need[@]}" >/dev/null
else
	say "host packages present (${#HOST_PKGS[@]})"
fi

((CROSS)) || exit 0

# ---------------------------------------------------------------- aarch64
has_arm64=0
dpkg --print-foreign-architectures | grep -qx arm64 && has_arm64=1
mapfile -t need < <(missing_of "${CROSS_TOOLS[@]}" "${CROSS_LIBS[@]}")
if ((has_arm64)) && ((${#need[@]} == 0)); then
	say "aarch64 packages present (${#CROSS_TOOLS[@]} tools, ${#CROSS_LIBS[@]} libraries)"
	exit 0
fi
if ((!has_arm64)); then
	say "dpkg --add-architecture arm64"
	"${SUDO[@]}" dpkg --add-architecture arm64
	UPDATED=0 # the arm64 package lists are not there yet
fi
apt_update
# A Multi-Arch: same library must be at one version for amd64 and arm64.
say "apt-get upgrade (amd64 and arm64 versions must match)"
"${APT[@]}" upgrade >/dev/null

want=()
for p in "${need[@]}"; do
	if [[ -n $(apt-cache show --no-all-versions "$p" 2>/dev/null | head -1) ]]; then
		want+=("$p")
	else
		say "skipping $p (not in the archive)"
	fi
done
if ((${#want[@]})); then
	say "installing ${want[*]}"
	# --no-remove: never trade an amd64 -dev package for its arm64 twin.
	"${APT[@]}" install --no-install-recommends --no-remove "${want[@]}" >/dev/null
fi
say "aarch64 ready"
