#!/bin/sh
# test_ctypes_example.sh - examples/vixdisklib_ctypes.py against the built
# library: dlopen through ctypes, create, write, read, clone, and the log
# line of InitEx naming the version and revision.
#
#   test_ctypes_example.sh EXAMPLE LIBDIR VERSION REVISION
set -eu
ex=$1 libdir=$2 version=$3 revision=$4
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 is not installed" >&2; exit 77; }
W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-ctypes.XXXXXX")
trap 'rm -rf "$W"' EXIT
die() { echo "ctypes_example: FAIL: $*" >&2; exit 1; }

python3 "$ex" "$libdir" "$W" > "$W/out" 2>&1 || die "the example failed: $(cat "$W/out")"
grep -q '^cloned to .*: same content$' "$W/out" || die "no clone line: $(cat "$W/out")"
[ -s "$W/example.vmdk" ] && [ -s "$W/example-stream.vmdk" ] || die "no disks were made"
# The disks are real VMDK files to another reader.
if command -v qemu-img >/dev/null 2>&1; then
    qemu-img compare -f vmdk -F vmdk "$W/example.vmdk" "$W/example-stream.vmdk" >/dev/null ||
        die "qemu-img reads the clone differently"
fi
case $(uname -m) in
x86_64)
    grep -Fq "log: openvddk $version (revision $revision): initialised for API 8.0" "$W/out" ||
        die "no InitEx log line naming $version and revision $revision: $(grep log: "$W/out")"
    ;;
esac
# A bad LIBDIR is an error naming the file, not a crash.
if python3 "$ex" "$W/nowhere" "$W" > "$W/bad" 2>&1; then
    die "a missing library was accepted"
fi
grep -q "nowhere/lib64/libvixDiskLib.so.8" "$W/bad" || die "missing library: $(cat "$W/bad")"
echo "ctypes_example: ok"
