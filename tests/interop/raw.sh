#!/bin/sh
# Raw images in and out of `vddk convert` (issue 15), checked against
# qemu-img:
#  - every VMDK type the tool creates -> raw: the same bytes (sha256) as
#    `qemu-img convert -O raw` of that disk, holes kept (the raw file's
#    allocated blocks are about the data written, not the capacity);
#  - raw -> every type: qemu-img (our engine for vmfsSparse) reads it equal;
#  - --preallocate: every block allocated, same bytes;
#  - checksum, compare and map take raw images; an odd-sized raw source;
#  - refusals (existing output without --overwrite, unreadable source,
#    --preallocate without -t raw) leave nothing written;
#  - a block device through a loop device, as destination (in place, too
#    small refused, the rest of the device untouched) and as source
#    (skipped unless root with losetup and a free loop device).
#
#   raw.sh VDTEST   (VDDK=path of the vddk tool)
# shellcheck source=tests/interop/lib.sh
. "$(dirname "$0")/lib.sh"
need qemu-img sha256sum
[ -n "${VDDK:-}" ] && [ -x "$VDDK" ] || { log "SKIP: VDDK (the vddk tool) is not set"; exit 77; }

MiB=1048576
CAP=$((48 * MiB))
TYPES="monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat vmfs vmfsThin vmfsSparse streamOptimized"

sha() { sha256sum "$1" | cut -d' ' -f1; }
alloc() { echo $(($(stat -c %b "$1") * $(stat -c %B "$1"))); }
vq() { "$VDDK" "$@"; }

# The reference content: 8 MiB + 700 bytes of non-zero data in a 48 MiB disk, plus
# 2 MiB written as zeros (data that must become holes) and a partial
# grain at the end.
run vq create -s $CAP src.vmdk >/dev/null
run vq fill -o 1M -l 4M -p 0xab src.vmdk >/dev/null
run vq fill -o 10M -l 3M --random --seed 7 src.vmdk >/dev/null
run vq fill -o 16M -l 2M -p 0 src.vmdk >/dev/null
run vq fill -o 30M -l 1M -p 0x5a src.vmdk >/dev/null
run vq fill -o $((CAP - 700)) -l 700 -p 0xee src.vmdk >/dev/null
run qemu-img convert -f vmdk -O raw src.vmdk ref.raw
REF=$(sha ref.raw)
DATA=$((8 * MiB + 65536))
[ "$(vq checksum ref.raw | cut -d' ' -f1)" = "$REF" ] || die "vddk checksum of a raw image"

# ---- every VMDK type -> raw, and raw -> every type --------------------------
for t in $TYPES; do
    run vq convert -t $t src.vmdk $t.vmdk >/dev/null
    run vq convert -t raw $t.vmdk $t.raw >/dev/null
    [ "$(stat -c %s $t.raw)" = $CAP ] || die "$t.raw: size $(stat -c %s $t.raw), not $CAP"
    s=$(sha $t.raw)
    [ "$s" = "$REF" ] || die "$t -> raw: sha256 $s, the reference $REF"
    # qemu-img's own raw conversion of the same disk (COWD with 1-sector
    # grains is slow in qemu-img but 48 MiB is small).
    run qemu-img convert -f vmdk -O raw $t.vmdk q-$t.raw
    [ "$(sha q-$t.raw)" = "$s" ] || die "$t -> raw differs from qemu-img convert -O raw"
    a=$(alloc $t.raw)
    [ "$a" -le $((DATA + MiB)) ] ||
        die "$t -> raw: $a bytes allocated for $DATA bytes of data: holes not kept"
    [ "$a" -ge $((DATA - MiB)) ] || die "$t -> raw: only $a bytes allocated for $DATA of data"
    # raw -> the same type
    run vq convert -t $t ref.raw back-$t.vmdk >/dev/null
    if [ $t = vmfsSparse ]; then
        run vq compare back-$t.vmdk ref.raw >/dev/null
    else
        qcompare back-$t.vmdk ref.raw
    fi
    [ "$(vq checksum back-$t.vmdk | cut -d' ' -f1)" = "$REF" ] || die "raw -> $t: checksum"
    out=$(vq compare $t.raw $t.vmdk) || die "vddk compare $t.raw $t.vmdk: $out"
    rm -f $t*.vmdk back-$t*.vmdk q-$t.raw
    [ $t = monolithicSparse ] || rm -f $t.raw
    log "ok: $t <-> raw"
done

# ---- map of a raw image: data where the file has blocks ---------------------
vq map --json monolithicSparse.raw >map.json || die "vddk map of a raw image"
d=$(python3 -c 'import json,sys; print(sum(r["length"] for r in json.load(open("map.json")) if r["type"]=="data"))')
[ "$d" -le $((DATA + MiB)) ] && [ "$d" -ge $DATA ] ||
    die "vddk map monolithicSparse.raw: $d bytes of data for $DATA written"

# ---- --preallocate -----------------------------------------------------------
run vq convert -t raw --preallocate src.vmdk full.raw >/dev/null
[ "$(sha full.raw)" = "$REF" ] || die "--preallocate: content"
[ "$(alloc full.raw)" -ge $CAP ] || die "--preallocate: only $(alloc full.raw) bytes allocated"
log "ok: --preallocate"

# ---- raw -> raw, odd-sized raw source ----------------------------------------
run vq convert -t raw ref.raw copy.raw >/dev/null
[ "$(sha copy.raw)" = "$REF" ] || die "raw -> raw: content"
[ "$(alloc copy.raw)" -le $((DATA + MiB)) ] || die "raw -> raw: holes not kept"
head -c 1000000 /dev/urandom >odd.raw
run vq convert odd.raw odd.vmdk >/dev/null
out=$(qemu-img compare -f vmdk -F raw odd.vmdk odd.raw 2>&1) || die "odd-sized raw source: $out"
log "ok: raw -> raw, odd size"

# ---- refusals -----------------------------------------------------------------
before=$(sha copy.raw)
vq convert -t raw src.vmdk copy.raw 2>err.txt && die "an existing output was overwritten"
grep -q "already exists" err.txt || die "existing output: $(cat err.txt)"
[ "$(sha copy.raw)" = "$before" ] || die "a refused convert changed copy.raw"
vq convert ref.raw src.vmdk 2>err.txt && die "an existing VMDK output was overwritten"
mkdir adir
vq convert -t raw adir out1.raw 2>err.txt && die "a directory was converted"
[ ! -e out1.raw ] || die "a failed convert left out1.raw"
vq convert -t raw missing.raw out2.raw 2>err.txt && die "a missing source was converted"
grep -q "missing.raw" err.txt || die "missing source: $(cat err.txt)"
[ ! -e out2.raw ] || die "a failed convert left out2.raw"
rc=0; vq convert --preallocate src.vmdk p.vmdk 2>err.txt || rc=$?
[ $rc = 2 ] || die "--preallocate without -t raw: exit $rc"
[ -z "$(ls -A | grep partial)" ] || die "temporaries left: $(ls -A | grep partial)"
run vq convert -t raw --overwrite ref.raw copy.raw >/dev/null
log "ok: refusals"

# ---- block devices through loop devices --------------------------------------
LOOPS=
cleanup_loops() { for l in $LOOPS; do losetup -d "$l" 2>/dev/null; done; }
trap 'cleanup_loops; rm -rf "$W"' EXIT
if [ "$(id -u)" != 0 ] || ! command -v losetup >/dev/null 2>&1; then
    log "SKIP (part): block devices need root and losetup"
    exit 0
fi
truncate -s $((CAP - MiB)) small.img
if ! small=$(losetup -f --show small.img 2>err.txt); then
    log "SKIP (part): no loop device: $(cat err.txt)"
    exit 0
fi
LOOPS=$small
head -c $((64 * MiB)) /dev/urandom >big.img
big=$(losetup -f --show big.img) || die "losetup big.img"
LOOPS="$small $big"
tail_before=$(tail -c +$((CAP + 1)) "$big" | sha256sum)
head_before=$(head -c $CAP "$big" | sha256sum)
vq convert -t raw src.vmdk "$big" 2>err.txt && die "a block device was written without --overwrite"
grep -q -- "--overwrite" err.txt || die "block device without --overwrite: $(cat err.txt)"
[ "$(head -c $CAP "$big" | sha256sum)" = "$head_before" ] || die "refused convert wrote to $big"
sb=$(sha256sum <"$small")
vq convert -t raw --overwrite src.vmdk "$small" 2>err.txt && die "a too small device was accepted"
grep -q "too small" err.txt || die "small device: $(cat err.txt)"
[ "$(sha256sum <"$small")" = "$sb" ] || die "a refused convert wrote to $small"
run vq convert -t raw --overwrite src.vmdk "$big" >/dev/null
[ "$(head -c $CAP "$big" | sha256sum | cut -d' ' -f1)" = "$REF" ] || die "block device: content"
[ "$(tail -c +$((CAP + 1)) "$big" | sha256sum)" = "$tail_before" ] ||
    die "block device: bytes past the source's size changed"
[ "$(vq checksum -l $CAP "$big" | cut -d' ' -f1)" = "$REF" ] || die "checksum of a block device"
run vq convert -t stream "$big" fromdev.vmdk >/dev/null
out=$(qemu-img compare -f vmdk -F raw fromdev.vmdk big.img 2>&1) || die "block device source: $out"
# streamOptimized (no zero detection shortcuts) into the device: holes of
# the source must overwrite the random bytes there.
run vq convert -t stream src.vmdk s.vmdk >/dev/null
run vq convert -t raw --overwrite s.vmdk "$big" >/dev/null
[ "$(head -c $CAP "$big" | sha256sum | cut -d' ' -f1)" = "$REF" ] || die "block device: stream source"
log "ok: block devices"
