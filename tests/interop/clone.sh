#!/bin/sh
# VixDiskLib_Clone (through tests/tools/vixclone, public API only) checked by
# real peers.  Sources: a chain of three monolithicSparse links written by
# the engine with random overlapping writes (vdtest randwrite keeps a raw
# mirror of what the chain reads), a qemu-img streamOptimized disk, and a
# 2.1 GiB mostly empty disk (split outputs get two extents).  Every output
# type (vmfsSparse skipped while the library answers "not supported"):
#  - `qemu-img check` finds nothing wrong,
#  - `qemu-img compare` equals the raw mirror and the source itself,
#  - libvmdk's vmdkinfo opens it,
#  - our engine reads it back identically (vdtest cat),
#  - sparse outputs: the allocation map qemu-img sees equals ours (that
#    all-zero grains stay unallocated is checked in tests/abi/test_clone.c).
#
#   clone.sh VDTEST   (VIXCLONE=path, else vixclone next to VDTEST)
# shellcheck source=tests/interop/lib.sh
. "$(dirname "$0")/lib.sh"
need qemu-img vmdkinfo
VIXCLONE=${VIXCLONE:-$(dirname "$VDTEST")/vixclone}
[ -x "$VIXCLONE" ] || die "$VIXCLONE is not executable"

MiB=1048576
TYPES="monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat vmfs vmfsThin streamOptimized vmfsSparse"

is_grain_sparse() {
    case $1 in monolithicSparse|twoGbMaxExtentSparse|streamOptimized) return 0 ;; esac
    return 1
}

# ourread DISK RAW: our engine reads DISK as RAW (holes stay holes).
ourread() {
    run "$VDTEST" cat "$1" "$1.cat"
    same "$1.cat" "$2"
    rm -f "$1.cat"
}

# clone_all LABEL SRC RAW: every type, every check.
clone_all() {
    label=$1 src=$2 raw=$3
    for type in $TYPES; do
        dst=$label-$type.vmdk
        rc=0
        "$VIXCLONE" "$src" "$dst" "$type" 2> err.txt || rc=$?
        if [ $rc = 3 ] && [ "$type" = vmfsSparse ]; then
            log "SKIP (part): clone to vmfsSparse not supported yet: $(cat err.txt)"
            continue
        fi
        [ $rc = 0 ] || die "vixclone $src $dst $type failed ($rc): $(cat err.txt)"
        qcheck "$dst"
        qcompare "$dst" "$raw"
        # qemu-img reading the source itself (it reads 1-sector COWD grains
        # and flat extents beside unallocated grains slowly: only the chain)
        if [ "$label" = chain ] && [ "$type" != vmfsSparse ]; then
            r=$(qemu-img compare -f vmdk -F vmdk "$dst" "$src" 2>&1) ||
                die "qemu-img compare $dst $src (the source itself): $r"
        fi
        r=$(vmdkinfo "$dst" 2>&1) || die "vmdkinfo $dst: $r"
        ourread "$dst" "$raw"
        if is_grain_sparse "$type"; then
            mapcheck "$dst"
        fi
        rm -f "$label-$type"*
    done
    log "ok: $label"
}

# A chain of three links, 32 MiB + 37 sectors (partial last grain).
SIZE=$((32 * MiB + 37 * 512))
run "$VDTEST" create monolithicSparse $SIZE base.vmdk
run "$VDTEST" randwrite base.vmdk chain.raw 501 60 200000
run "$VDTEST" child base.vmdk c1.vmdk
run "$VDTEST" randwrite c1.vmdk chain.raw 502 60 150000
run "$VDTEST" child c1.vmdk c2.vmdk
run "$VDTEST" randwrite c2.vmdk chain.raw 503 60 100000
qcompare c2.vmdk chain.raw
clone_all chain c2.vmdk chain.raw

# A qemu-img stream as the source.
run qemu-img convert -f raw -O vmdk -o subformat=streamOptimized chain.raw qs.vmdk
clone_all qstream qs.vmdk chain.raw

# Just over 2 GiB, little data: split outputs get two extents, flat outputs
# stay cheap on a filesystem with holes; only the sparse types and one of
# each split kind here.
TYPES="monolithicSparse twoGbMaxExtentSparse twoGbMaxExtentFlat streamOptimized"
BIG=$((2100 * MiB + 512))
run "$VDTEST" create monolithicSparse $BIG big.vmdk
run "$VDTEST" randwrite big.vmdk big.raw 601 20 300000
clone_all big big.vmdk big.raw

log "PASS"
