#!/bin/sh
# demo.sh - an end-to-end tour of the vddk tool on local files.
#
#   sh scripts/demo.sh [VDDK]
#
# VDDK is the vddk binary (default: $VDDK, else build/tools/vddk/vddk).
# Creates a sparse disk, writes into it, snapshots it, writes into the
# child, and checks every content against raw reference images built with
# dd and hashed with sha256sum; reads the chain with a VixDiskLib sample
# client; clones it to streamOptimized and checks the copy with compare and
# checksum.  Works in a temporary directory that is
# removed at the end.  Exits non-zero at the first step that fails.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VDDK=${1:-${VDDK:-$ROOT/build/tools/vddk/vddk}}
case $VDDK in /*) ;; *) VDDK=$(pwd)/$VDDK ;; esac
SAMPLE=${SAMPLE:-$(dirname "$(dirname "$VDDK")")/sample/vixdisklib-sample}
if [ ! -x "$VDDK" ]; then
    echo "demo: $VDDK is not an executable; build first (make)" >&2
    exit 1
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-demo.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM
cd "$W"

fail() {
    echo "demo: FAILED: $*" >&2
    exit 1
}

step() {
    echo
    echo "== $*"
}

# vddk ARGS...: show the command, run it, stop the demo if it fails.
vddk() {
    echo "\$ vddk $*"
    "$VDDK" "$@" || fail "'vddk $*' exited with status $?"
}

# rawfill FILE OFFSET LENGTH BYTE: the reference-image side of `vddk fill -p`.
rawfill() {
    oct=$(printf '\\%03o' "$4")
    head -c "$3" /dev/zero | tr '\000' "$oct" |
        dd of="$1" bs=64K seek="$2" oflag=seek_bytes iflag=fullblock conv=notrunc status=none ||
        fail "could not write the reference image $1"
}

# fill DISK RAW OFFSET LENGTH BYTE: write the pattern into both.
fill() {
    vddk fill -o "$3" -l "$4" -p "$5" "$1"
    rawfill "$2" "$3" "$4" "$5"
}

# same_content DISK RAW: the disk's checksum must equal sha256sum of RAW.
same_content() {
    echo "\$ vddk checksum $1"
    got=$("$VDDK" checksum "$1") || fail "'vddk checksum $1' exited with status $?"
    echo "$got"
    got=${got%% *}
    want=$(sha256sum "$2") || fail "sha256sum $2 failed"
    want=${want%% *}
    [ "$got" = "$want" ] ||
        fail "$1: content differs from the reference $2 (vddk $got, sha256sum $want)"
    echo "   matches sha256sum of the reference image $2"
}

MiB=1048576
KiB=1024

step "create a 64 MiB monolithicSparse disk"
vddk create -t monolithicSparse -s 64M base.vmdk
dd if=/dev/zero of=base.raw bs=1M count=0 seek=64 status=none || fail "could not create base.raw"

step "write patterns into the base disk"
fill base.vmdk base.raw 0 $MiB 0x11
fill base.vmdk base.raw $((10 * MiB)) $((3 * MiB)) 0x22
fill base.vmdk base.raw $((63 * MiB)) $MiB 0x33
same_content base.vmdk base.raw

step "snapshot: create child.vmdk on top of base.vmdk"
vddk snapshot base.vmdk child.vmdk
cp base.raw child.raw || fail "could not copy base.raw"
same_content child.vmdk child.raw

step "write into the child: overlapping ranges and partial grains"
# Half over the base's first range, half past it.
fill child.vmdk child.raw $((512 * KiB)) $MiB 0x44
# A few unaligned bytes inside the base's second range.
fill child.vmdk child.raw $((12 * MiB + 1000)) 5000 0x55
# A partial grain where the base has nothing.
fill child.vmdk child.raw $((30 * MiB + 100)) 200 0x66
# Fourteen bytes across a grain boundary inside the base's last range.
fill child.vmdk child.raw $((63 * MiB + 64 * KiB - 7)) 14 0x77

step "verify: the base is unchanged, the child shows base + child writes"
same_content base.vmdk base.raw
same_content child.vmdk child.raw
echo "\$ vddk checksum -o $((12 * MiB)) -l $MiB child.vmdk"
got=$("$VDDK" checksum -o $((12 * MiB)) -l $MiB child.vmdk) || fail "checksum of a range failed"
echo "$got"
want=$(dd if=child.raw bs=1M skip=12 count=1 status=none | sha256sum)
[ "${got%% *}" = "${want%% *}" ] || fail "child.vmdk: range 12M+1M differs from the reference"
echo "   matches sha256sum of the same range of child.raw"

step "hex dump where the child's data (0x44) starts over the base's (0x11)"
vddk dump -o $((512 * KiB - 32)) -l 64 child.vmdk

step "info of the child"
vddk info child.vmdk

step "map of the child through the chain"
vddk map child.vmdk

step "map of the child's own link only"
vddk map --single-link child.vmdk

step "the same chain through libvixDiskLib, as a VDDK program sees it"
echo "\$ vixdisklib-sample child.vmdk"
out=$("$SAMPLE" child.vmdk) || fail "vixdisklib-sample exited with status $?"
echo "$out"
got=$(echo "$out" | tail -n 1)
want=$(sha256sum child.raw)
[ "${got%% *}" = "${want%% *}" ] ||
    fail "child.vmdk read through libvixDiskLib differs from the reference child.raw"
echo "   matches sha256sum of the reference image child.raw"

step "clone the chain into one streamOptimized disk (compressed, as in an OVF)"
vddk clone -t streamOptimized child.vmdk export.vmdk
vddk info export.vmdk

step "compare: the stream reads exactly as the chain, and differs from the base"
vddk compare child.vmdk export.vmdk
echo "\$ vddk compare base.vmdk export.vmdk"
set +e
out=$("$VDDK" compare base.vmdk export.vmdk)
rc=$?
set -e
echo "$out"
[ "$rc" -eq 1 ] || fail "'vddk compare base.vmdk export.vmdk' exited with status $rc, expected 1"
# The child's first write (0x44 at 512 KiB) is where the base stops being it.
case $out in
    *"differ at offset $((512 * KiB)) "*) echo "   the first difference is the child's first write, at 512 KiB" ;;
    *) fail "compare did not find the first difference at offset $((512 * KiB))" ;;
esac

step "checksum of the stream, whole and per 16 MiB block"
same_content export.vmdk child.raw
echo "\$ vddk checksum -b 16M export.vmdk"
out=$("$VDDK" checksum -b 16M export.vmdk) || fail "'vddk checksum -b 16M export.vmdk' failed"
echo "$out"
i=0
while read -r sum name; do
    [ "$i" -lt 4 ] || break
    want=$(dd if=child.raw bs=16M skip=$i count=1 iflag=fullblock status=none | sha256sum)
    [ "$sum" = "${want%% *}" ] || fail "export.vmdk: block $i ($name) differs from the reference"
    i=$((i + 1))
done <<EOF
$out
EOF
[ "$i" -eq 4 ] || fail "checksum -b 16M printed $i block lines, expected 4"
echo "   every block matches sha256sum of the same 16 MiB of child.raw"

echo
echo "demo: all steps succeeded"
