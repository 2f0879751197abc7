#!/bin/sh
# test_cli_repair.sh - `vddk check` and `vddk check --repair` on disks with
# one damaged header field or grain table entry (made here: a 4 MiB sparse
# disk written with known patterns, then patched with dd), checked the way
# a user sees it:
#
# - the damage is named, the repair fixes that field, every 64 KiB block
#   reads as before (vddk checksum -b, and qemu-img compare against a raw
#   image of the healthy disk), and the next check finds nothing;
# - the repair says where it keeps what it overwrites (DISK.repair-undo)
#   and removes that file when done;
# - a repair killed half way (the test hook OPENVDDK_TEST_REPAIR_ABORT_AFTER)
#   leaves a disk that cannot be opened until the next repair, which rolls
#   back and ends with the same bytes as an uninterrupted repair;
# - what cannot be repaired is not offered to --repair, a refused repair
#   leaves the file byte-identical, and every line names the file once;
# - what Open refuses (an unsupported version, unknown incompatible flags,
#   a vmfsSparse extent of another version or cut short) check reports.
#
#   sh test_cli_repair.sh VDDK
set -eu

VDDK=${1:?usage: test_cli_repair.sh VDDK}
case $VDDK in /*) ;; *) VDDK=$(pwd)/$VDDK ;; esac
[ -x "$VDDK" ] || { echo "cli-repair: $VDDK is not executable" >&2; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-cli-repair.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM
cd "$W"
CHECKS=0
die() {
    echo "cli-repair: FAIL: $*" >&2
    exit 1
}
ok() { CHECKS=$((CHECKS + 1)); }

# run STATUS ARGS...: vddk ARGS exits with STATUS; output in out/err.
run() {
    want=$1
    shift
    set +e
    "$VDDK" "$@" >out 2>err
    rc=$?
    set -e
    [ $rc -eq "$want" ] || die "vddk $*: exit status $rc, expected $want; stdout: $(cat out); stderr: $(cat err)"
    ok
}
has() {   # has FILE TEXT
    grep -F -q -- "$2" "$1" || die "$1 lacks '$2': $(cat "$1")"
    ok
}
lacks() {
    ! grep -F -q -- "$2" "$1" || die "$1 has '$2': $(cat "$1")"
    ok
}
# put FILE OFFSET BYTES VALUE: write VALUE little-endian, BYTES wide.
put() {
    v=$4
    i=0
    hex=""
    while [ $i -lt "$3" ]; do
        hex="$hex\\$(printf '%03o' $((v & 255)))"
        v=$((v >> 8))
        i=$((i + 1))
    done
    printf "$hex" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
sums() { "$VDDK" checksum -q -b 64K "$1" | sed 's/ .*//'; }

# The healthy disk and its content.
run 0 create -s 4M good.vmdk
run 0 fill -q -o 0 -l 192K --random --seed 1 good.vmdk
run 0 fill -q -o 1M -l 128K --random --seed 2 good.vmdk
run 0 fill -q -o 3M -l 64K -p 0x55 good.vmdk
sums good.vmdk >good.sums
HAVE_QEMU=0
if command -v qemu-img >/dev/null 2>&1; then
    HAVE_QEMU=1
    qemu-img convert -O raw good.vmdk good.raw
fi
run 0 check good.vmdk
has out "good.vmdk: no problems found"

# ---- one damaged header field: fixed, nothing lost ------------------------------
# name OFFSET BYTES VALUE FIELD
for c in "ovh 64 8 1099511627776 overHead" "rgd 48 8 22 rgdOffset" \
         "cap 12 8 2147483647 capacity" "gtes 44 4 65536 numGTEsPerGT" \
         "grain 20 8 256 grainSize" "grain64 20 8 64 grainSize"; do
    set -- $c
    cp good.vmdk "$1.vmdk"
    put "$1.vmdk" "$2" "$3" "$4"
    run 1 check "$1.vmdk"
    has out "$1.vmdk: the header's $5 is $4"
    has err "'vddk check --repair $1.vmdk' repairs them"
    run 0 check --repair "$1.vmdk"
    has out "(repaired: the header now says so)"
    has out "$1.vmdk: 1 problem repaired"
    has err "$1.vmdk.repair-undo keeps what this repair overwrites"
    has err "$1.vmdk.repair-undo removed (the repair is complete)"
    [ ! -e "$1.vmdk.repair-undo" ] || die "$1: the journal is left"
    cmp -s good.vmdk "$1.vmdk" || die "$1: the repaired file differs from the healthy one"
    ok
    sums "$1.vmdk" | cmp -s - good.sums || die "$1: the content changed"
    ok
    if [ $HAVE_QEMU = 1 ]; then
        qemu-img compare -q "$1.vmdk" good.raw || die "$1: qemu-img compare differs"
        ok
    fi
    run 0 check "$1.vmdk"
    has out "$1.vmdk: no problems found"
done

# ---- the primary entry names another grain's storage --------------------------
# Grain 1's primary entry (GT at sector 27) takes grain 0's storage (128);
# the redundant entry (GT at 22) is right and wins.
cp good.vmdk dup.vmdk
put dup.vmdk $((27 * 512 + 4)) 4 128
run 1 check dup.vmdk
has out "grain 1: primary entry 128 and redundant entry 256 disagree"
run 0 check --repair dup.vmdk
has out "keeping the redundant"
cmp -s good.vmdk dup.vmdk || die "dup: the repaired file differs from the healthy one"
ok

# ---- a killed repair -------------------------------------------------------------
cp good.vmdk k.vmdk
put k.vmdk 48 8 22                      # rgdOffset one sector off
put k.vmdk 72 1 1                       # uncleanShutdown
put k.vmdk $((27 * 512 + 4)) 4 128      # and grain 1's primary entry (tables rewritten)
cp k.vmdk k.damaged
OPENVDDK_TEST_REPAIR_ABORT_AFTER=0 "$VDDK" check --repair k.vmdk >out 2>err && die "the hook did not stop the repair"
[ -e k.vmdk.repair-undo ] || die "no journal after a killed repair"
ok
cmp -s k.vmdk k.damaged || die "a repair killed before its first write changed the disk"
ok
for n in 1 2; do
    cp k.damaged k.vmdk
    rm -f k.vmdk.repair-undo
    set +e
    OPENVDDK_TEST_REPAIR_ABORT_AFTER=$n "$VDDK" check --repair k.vmdk >out 2>err
    rc=$?
    set -e
    [ $rc -eq 77 ] || die "the hook: exit status $rc, expected 77"
    has err "k.vmdk.repair-undo keeps what this repair overwrites"
    run 1 info k.vmdk
    has err "a repair of this disk was interrupted"
    run 1 check k.vmdk
    has out "a repair was interrupted"
    run 0 check --repair k.vmdk
    has out "rolled back from"
    [ ! -e k.vmdk.repair-undo ] || die "the journal is left after the recovery"
    ok
    cmp -s good.vmdk k.vmdk || die "after a killed repair and a recovery, the disk differs"
    ok
done

# ---- what cannot be repaired ---------------------------------------------------------
cp good.vmdk v.vmdk
put v.vmdk 4 4 9                        # sparse version 9
put v.vmdk 72 1 1                       # and something a repair could fix
cp v.vmdk v.before
run 1 check v.vmdk
has out "v.vmdk: sparse extent version 9 is not supported (1-3 are) (cannot repair)"
lacks err "--repair"
has err "cannot be repaired"
[ "$(grep -c 'v.vmdk.*v.vmdk' out || true)" -eq 0 ] || die "a line names the file twice: $(cat out)"
ok
run 1 check --repair v.vmdk
has err "nothing was changed"
cmp -s v.vmdk v.before || die "a refused repair changed the file"
ok
[ ! -e v.vmdk.repair-undo ] || die "a refused repair left a journal"
ok
# Unknown incompatible flags: Open's reason, from check.
cp good.vmdk f.vmdk
put f.vmdk 8 4 $((0x40003))
run 1 info f.vmdk
has err "unknown incompatible flags"
run 1 check f.vmdk
has out "unknown incompatible flags 0x00040000 (cannot repair)"
# vmfsSparse: another version, then cut short.
run 0 create -t vmfsSparse -s 1M e.vmdk
run 0 check e.vmdk
put e-delta.vmdk 4 4 2
run 1 check e.vmdk
has out "e-delta.vmdk: cannot be opened: COWD version 2 is not supported"
lacks err "--repair"
put e-delta.vmdk 4 4 1
run 0 check e.vmdk
truncate -s 100 e-delta.vmdk
run 1 check e.vmdk
has out "cannot be opened"
has out "(cannot repair)"

echo "cli-repair: $CHECKS checks passed"
echo "$CHECKS passed, 0 failed"
