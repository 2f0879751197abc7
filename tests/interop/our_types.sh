#!/bin/sh
# Every disk type we create, written by the engine with random data at
# random (often unaligned, partial-grain) offsets, is read by qemu-img
# exactly as the raw mirror of the same writes, passes `qemu-img check` and
# has the allocation map qemu-img sees (sparse types), and is opened by
# libvmdk's vmdkinfo.
# shellcheck source=tests/interop/lib.sh
. "$(dirname "$0")/lib.sh"
need qemu-img vmdkinfo

MiB=1048576
# Just over 2 GiB and not a multiple of the grain: the split types get two
# extents of the default split size.
BIG=$((2200 * MiB + 3 * 512))

is_sparse() {
    case $1 in *Sparse*) return 0 ;; *) return 1 ;; esac
}

# one LABEL TYPE SIZE SEED COUNT MAXLEN
one() {
    label=$1 type=$2 size=$3 seed=$4 count=$5 maxlen=$6
    run "$VDTEST" create "$type" "$size" "$label.vmdk"
    run "$VDTEST" randwrite "$label.vmdk" "$label.raw" "$seed" "$count" "$maxlen"
    qcompare "$label.vmdk" "$label.raw"
    if is_sparse "$type"; then
        qcheck "$label.vmdk"
        mapcheck "$label.vmdk"
    fi
    out=$(vmdkinfo "$label.vmdk" 2>&1) || die "vmdkinfo $label.vmdk: $out"
    # qemu-img must see the size we asked for (rounded up to a sector).
    want=$(( (size + 511) / 512 * 512 ))
    got=$(qemu-img info -f vmdk --output=json "$label.vmdk" |
          sed -n 's/.*"virtual-size": *\([0-9]*\).*/\1/p' | head -n 1)
    [ "$got" = "$want" ] || die "$label: qemu-img sees size $got, want $want"
    rm -f "$label"*
    log "ok: $label"
}

seed=100
for type in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat vmfs vmfsThin; do
    seed=$((seed + 1))
    one "$type" "$type" $BIG $seed 300 300000
    # Small disk, many writes: grains get rewritten, partially and whole.
    seed=$((seed + 1))
    one "$type-small" "$type" $((5 * MiB + 1536)) $seed 400 200000
done

# Split disks with a small split size: many extents, writes straddle them.
export VDTEST_SPLIT_SIZE=$((3 * MiB))
one split-sparse-3M twoGbMaxExtentSparse $((20 * MiB + 512)) 201 400 400000
one split-flat-3M twoGbMaxExtentFlat $((20 * MiB + 512)) 202 400 400000
unset VDTEST_SPLIT_SIZE

# Non-default grain sizes (sectors; libvmdk refuses 8 and below).
for g in 16 32 256; do
    export VDTEST_GRAIN_SECTORS=$g
    one "grain$g" monolithicSparse $((7 * MiB)) $((300 + g)) 300 100000
done
unset VDTEST_GRAIN_SECTORS

log "PASS"
