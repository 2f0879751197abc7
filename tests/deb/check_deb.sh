#!/bin/sh
# check_deb.sh - check openvddk's Debian packages (make check-deb).
#
#   sh tests/deb/check_deb.sh [DEBDIR]
#
# DEBDIR holds what scripts/deb.sh made (without it, the packages are built
# here into a temporary directory).  Nothing is installed: the packages are
# unpacked with dpkg-deb -x into a temporary root and used from there.
# Checked: the package metadata (versions, dependencies, conffiles, the
# user the service needs) and the file layout (a VDDK distribution under
# /usr/lib/openvddk); dlopen of lib64/libvixDiskLib.so.8 (and .so.7, .so.9)
# and a create/write/read/clone through it (examples/vixdisklib_ctypes.py),
# with the NAS plugin loaded from lib64/plugins and InitEx's log line naming
# the version and revision; a C program built with pkg-config against the
# -dev package; the tool (vddk --version, info, compare), its manual page
# (man -l) and bash completion; `vddk serve` with the shipped serve.conf;
# systemd-analyze verify of the units (when systemd-analyze exists); and
# lintian (every tag it still reports is explained in debian/*.lintian-overrides).
set -eu

SRC=$(cd "$(dirname "$0")/../.." && pwd)
NAME=check_deb
PASSED=0
W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-checkdeb.XXXXXX")
SPID=
cleanup() {
    [ -z "$SPID" ] || kill -9 "$SPID" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "$NAME: FAIL: $*" >&2
    echo "$PASSED passed, 1 failed"
    exit 1
}
ok() { PASSED=$((PASSED + 1)); }
log() { echo "$NAME: $*" >&2; }
T=120
run() { timeout "$T" "$@" || die "command failed ($?): $*"; }

for tool in dpkg-deb dpkg-parsechangelog dpkg-architecture python3 cc pkg-config man; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (sh scripts/deps.sh deb)"
done

DEBDIR=${1:-}
if [ -z "$DEBDIR" ]; then
    DEBDIR=$W/debs
    sh "$SRC/scripts/deb.sh" "$DEBDIR"
fi
DEBDIR=$(cd "$DEBDIR" && pwd)

# ---- metadata -------------------------------------------------------------------
VERSION=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
CMAKE_VERSION=$(sed -n 's/^project(openvddk VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
[ "$VERSION" = "$CMAKE_VERSION" ] ||
    die "debian/changelog says $VERSION, CMakeLists.txt's project() $CMAKE_VERSION"
ok
REV=$(cat "$DEBDIR/revision" 2>/dev/null) || die "no $DEBDIR/revision (scripts/deb.sh writes it)"
[ -n "$REV" ] || die "empty revision"
ARCH=$(dpkg --print-architecture)
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
LIB=$DEBDIR/libvixdisklib8_${VERSION}_$ARCH.deb
DEV=$DEBDIR/libvixdisklib-dev_${VERSION}_$ARCH.deb
TOOLS=$DEBDIR/openvddk-tools_${VERSION}_$ARCH.deb
for d in "$LIB" "$DEV" "$TOOLS"; do
    [ -f "$d" ] || die "missing package $d"
done
ok

field() { dpkg-deb -f "$1" "$2"; }
[ "$(field "$LIB" Section)" = libs ] || die "libvixdisklib8: section $(field "$LIB" Section)"
[ "$(field "$DEV" Section)" = libdevel ] || die "libvixdisklib-dev: section"
field "$DEV" Depends | grep -Fq "libvixdisklib8 (= $VERSION)" ||
    die "libvixdisklib-dev does not depend on libvixdisklib8 (= $VERSION): $(field "$DEV" Depends)"
field "$TOOLS" Depends | grep -Fq "libvixdisklib8 (= $VERSION)" ||
    die "openvddk-tools does not depend on libvixdisklib8 (= $VERSION)"
field "$TOOLS" Depends | grep -q "adduser" || die "openvddk-tools does not depend on adduser"
# The library's own dependencies come from dpkg-shlibdeps (GnuTLS, libcurl...).
field "$LIB" Depends | grep -q "libgnutls30" || die "libvixdisklib8 Depends: $(field "$LIB" Depends)"
ok

mkdir "$W/ctl"
dpkg-deb -e "$TOOLS" "$W/ctl"
grep -qx /etc/openvddk/serve.conf "$W/ctl/conffiles" || die "serve.conf is not a conffile"
grep -q "adduser --system" "$W/ctl/postinst" || die "postinst does not create the user"
# Installed, neither unit is enabled nor started (dh_installsystemd
# --no-enable --no-start: units are enabled only if they were before).
grep -q "deb-systemd-helper debian-installed 'openvddk-serve.socket'" "$W/ctl/postinst" ||
    die "postinst does not handle openvddk-serve.socket"
if grep -q "deb-systemd-invoke" "$W/ctl/postinst"; then
    die "postinst starts the service"
fi
ok

# ---- the file layout ------------------------------------------------------------------
R=$W/root
for d in "$LIB" "$DEV" "$TOOLS"; do
    dpkg-deb -x "$d" "$R"
done
OV=$R/usr/lib/openvddk
for f in lib64/libvixDiskLib.so.8 lib64/libvixDiskLib.so.7 lib64/libvixDiskLib.so.9 \
         lib64/plugins/libnas-localfs.so include/vixDiskLib.h include/vm_basic_types.h \
         include/vixDiskLibPlugin.h include/vixDiskLibNasPlugin.h include/vddk/disk.h \
         lib64/libvixDiskLib.so bin/vddk; do
    [ -e "$OV/$f" ] || die "missing /usr/lib/openvddk/$f"
done
[ "$(readlink "$OV/lib64/libvixDiskLib.so.8")" = "libvixDiskLib.so.$VERSION" ] ||
    die "libvixDiskLib.so.8 -> $(readlink "$OV/lib64/libvixDiskLib.so.8")"
[ "$(readelf -d "$OV/lib64/libvixDiskLib.so.$VERSION" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')" = \
  libvixDiskLib.so.8 ] || die "the library's SONAME is not libvixDiskLib.so.8"
for f in usr/bin/vddk usr/share/man/man1/vddk.1.gz usr/share/bash-completion/completions/vddk \
         etc/openvddk/serve.conf lib/systemd/system/openvddk-serve.service \
         lib/systemd/system/openvddk-serve.socket usr/lib/"$MA"/pkgconfig/vixDiskLib.pc \
         usr/share/doc/openvddk-tools/guide.md.gz usr/share/doc/libvixdisklib8/copyright; do
    [ -e "$R/$f" ] || die "missing /$f"
done
# The unversioned link and the headers are in -dev only.
dpkg-deb -c "$LIB" | grep -q 'libvixDiskLib\.so ' && die "libvixdisklib8 has libvixDiskLib.so"
dpkg-deb -c "$LIB" | grep -q 'include/' && die "libvixdisklib8 has headers"
dpkg-deb -c "$LIB" | grep -q 'usr/lib/openvddk/lib64/libvixDiskLib\.so\.8 ' ||
    die "libvixdisklib8 lacks libvixDiskLib.so.8"
ok

# ---- the library: dlopen, create, write, read, clone (Python ctypes) -----------------
log "library: examples/vixdisklib_ctypes.py with libdir=/usr/lib/openvddk of the root"
mkdir "$W/disks"
run python3 "$SRC/examples/vixdisklib_ctypes.py" "$OV" "$W/disks" > "$W/ctypes.out" 2>&1
grep -q '^cloned to .*: same content$' "$W/ctypes.out" || die "ctypes example: $(cat "$W/ctypes.out")"
ok
if [ "$(uname -m)" = x86_64 ]; then
    grep -Fq "log: openvddk $VERSION (revision $REV): initialised for API 8.0" "$W/ctypes.out" ||
        die "InitEx's log line does not name $VERSION and $REV: $(grep log: "$W/ctypes.out")"
    grep -Fq "loaded from $OV/lib64/plugins/libnas-localfs.so" "$W/ctypes.out" ||
        die "the NAS plugin was not loaded from the package: $(grep log: "$W/ctypes.out")"
    ok
fi
run python3 - "$OV/lib64" <<'EOF'
import ctypes, sys
for so in ("libvixDiskLib.so.8", "libvixDiskLib.so.7", "libvixDiskLib.so.9"):
    lib = ctypes.CDLL(sys.argv[1] + "/" + so)
    lib.VixDiskLib_ListTransportModes.restype = ctypes.c_char_p
    assert b"file" in lib.VixDiskLib_ListTransportModes().split(b":"), so
EOF
ok

# ---- the -dev package: a C program through pkg-config --------------------------------
log "dev: examples/vixdisklib_info.c built with pkg-config vixDiskLib"
export PKG_CONFIG_LIBDIR="$R/usr/lib/$MA/pkgconfig"
[ "$(pkg-config --modversion vixDiskLib)" = "$VERSION" ] || die "pkg-config --modversion"
[ "$(pkg-config --variable=libdir vixDiskLib)" = /usr/lib/openvddk/lib64 ] ||
    die "pkg-config libdir: $(pkg-config --variable=libdir vixDiskLib)"
# Built against the unpacked root: pkg-config puts it before -I and -L.
export PKG_CONFIG_SYSROOT_DIR="$R"
# shellcheck disable=SC2046
run cc -Wall -Wextra -Werror -o "$W/vixdisklib_info" "$SRC/examples/vixdisklib_info.c" \
    $(pkg-config --cflags --libs vixDiskLib)
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
LD_LIBRARY_PATH=$OV/lib64 run "$W/vixdisklib_info" "$W/disks/example-stream.vmdk" > "$W/info.out"
grep -qx 'capacity 131072 sectors' "$W/info.out" || die "vixdisklib_info: $(cat "$W/info.out")"
ok

# ---- the tool ------------------------------------------------------------------------------
log "tools: vddk --version, info, compare; man -l; bash completion"
VDDK=$R/usr/bin/vddk
[ "$(readlink "$VDDK")" = ../lib/openvddk/bin/vddk ] || die "/usr/bin/vddk -> $(readlink "$VDDK")"
# With nothing else set, the tool finds the packaged library (RUNPATH
# $ORIGIN/../lib64 of the real file, which /usr/bin/vddk links to).
ldd "$OV/bin/vddk" | grep -Fq "$OV/bin/../lib64/libvixDiskLib.so.8" ||
    die "vddk does not load the packaged library: $(ldd "$OV/bin/vddk" | grep -i vix)"
[ "$(run "$VDDK" --version)" = "vddk (openvddk) $VERSION, revision $REV" ] ||
    die "vddk --version: $("$VDDK" --version)"
ok
run "$VDDK" info "$W/disks/example.vmdk" > "$W/vinfo.out"
grep -q '^capacity: *67108864 bytes' "$W/vinfo.out" || die "vddk info: $(cat "$W/vinfo.out")"
run "$VDDK" compare "$W/disks/example.vmdk" "$W/disks/example-stream.vmdk" >/dev/null
ok
MANWIDTH=80 LC_ALL=C.UTF-8 man -l "$R/usr/share/man/man1/vddk.1.gz" > "$W/man.out" 2> "$W/man.err" ||
    die "man -l failed: $(cat "$W/man.err")"
grep -q 'vddk serve' "$W/man.out" && grep -q 'config' "$W/man.out" || die "man -l: unexpected text"
[ ! -s "$W/man.err" ] || die "man -l warns: $(cat "$W/man.err")"
ok
if command -v bash >/dev/null 2>&1; then
    got=$(PATH="$R/usr/bin:$PATH" bash -c '. "$1"; COMP_WORDS=(vddk ser); COMP_CWORD=1; _vddk
          a=${COMPREPLY[*]}; COMP_WORDS=(vddk serve --con); COMP_CWORD=2; _vddk
          echo "$a ${COMPREPLY[*]}"' sh "$R/usr/share/bash-completion/completions/vddk")
    [ "$got" = "serve --config" ] || die "bash completion gave '$got'"
    ok
fi

# ---- vddk serve with the shipped serve.conf -------------------------------------------------
log "serve: the shipped serve.conf (datastore moved to a temporary directory)"
sed "s|=/var/lib/openvddk\$|=$W/disks|" "$R/etc/openvddk/serve.conf" > "$W/serve.conf"
grep -q "^datastore = default=$W/disks\$" "$W/serve.conf" || die "serve.conf has no default datastore line"
"$VDDK" serve --config "$W/serve.conf" --bind 127.0.0.1 --port 0 2> "$W/serve.log" &
SPID=$!
i=0
until grep -q "TLS off" "$W/serve.log"; do
    kill -0 "$SPID" 2>/dev/null || die "vddk serve exited: $(cat "$W/serve.log")"
    i=$((i + 1))
    [ $i -lt 300 ] || die "vddk serve did not start: $(cat "$W/serve.log")"
    sleep 0.1
done
PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$W/serve.log")
grep -q "datastore \[default\] = $W/disks" "$W/serve.log" || die "serve: $(cat "$W/serve.log")"
if command -v nbdinfo >/dev/null 2>&1; then
    [ "$(run nbdinfo --size "nbd://127.0.0.1:$PORT/default/example.vmdk")" = 67108864 ] ||
        die "nbdinfo through the packaged vddk serve"
fi
kill -TERM "$SPID"
wait "$SPID" || die "vddk serve exited with status $? after SIGTERM"
SPID=
ok

# ---- systemd units -----------------------------------------------------------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
    log "systemd-analyze verify of the units"
    # ExecStart= must name an executable: the unpacked one; man: pages too.
    mkdir "$W/units"
    sed "s|/usr/bin/vddk|$VDDK|" "$R/lib/systemd/system/openvddk-serve.service" \
        > "$W/units/openvddk-serve.service"
    cp "$R/lib/systemd/system/openvddk-serve.socket" "$W/units/"
    MANPATH=$R/usr/share/man systemd-analyze verify "$W/units/openvddk-serve.socket" \
        "$W/units/openvddk-serve.service" > "$W/verify.out" 2>&1 ||
        die "systemd-analyze verify: $(cat "$W/verify.out")"
    [ ! -s "$W/verify.out" ] || die "systemd-analyze verify warns: $(cat "$W/verify.out")"
    ok
else
    log "SKIP: systemd-analyze is not installed: the units are not verified"
fi

# ---- lintian -------------------------------------------------------------------------------------
if [ "${LINTIAN:-1}" != 0 ]; then
    command -v lintian >/dev/null 2>&1 || die "lintian is missing (sh scripts/deps.sh deb)"
    log "lintian"
    # Every tag, down to info and pedantic, is fixed or explained in
    # debian/*.lintian-overrides.
    lintian -I --pedantic --fail-on error,warning,info,pedantic --tag-display-limit 0 \
        "$LIB" "$DEV" "$TOOLS" > "$W/lintian.out" 2>&1 || die "lintian: $(cat "$W/lintian.out")"
    if grep -v "running with root privileges" "$W/lintian.out" | grep -q '^[EWIP]:'; then
        die "lintian: $(cat "$W/lintian.out")"
    fi
    ok
fi

echo "$NAME: the packages of openvddk $VERSION (revision $REV) are good" >&2
echo "$PASSED passed, 0 failed"
