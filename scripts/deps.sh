#!/bin/sh
# Install the Debian packages that building, testing and the demo need.
# Does nothing (and needs no network) when every package is already present.
#
#   sh scripts/deps.sh          what make, make check and make demo need
#   sh scripts/deps.sh deb      also what make deb and make check-deb need
set -eu

PKGS="
build-essential
cmake
pkg-config
clang
libclang-rt-14-dev
libdeflate-dev
libgnutls28-dev
gnutls-bin
libcmocka-dev
qemu-utils
libnbd-bin
nbdkit
libvmdk-utils
python3-vmdkstream
xfsprogs
bsdutils
time
golang-go
golang-github-vmware-govmomi-dev
golang-github-google-uuid-dev
curl
libcurl4-gnutls-dev
libxml2-dev
libjson-c-dev
"
# make deb (debian/control's Build-Depends beyond the above) and
# make check-deb (lintian, man -l, systemd-analyze when present).
if [ "${1:-}" = deb ]; then
    PKGS="$PKGS debhelper dpkg-dev lintian man-db"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

echo "deps.sh: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "deps.sh: need root (or sudo) to install:$missing" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# Try with the current package lists first; refresh them if that fails.
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y --no-install-recommends $missing; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends $missing
fi
