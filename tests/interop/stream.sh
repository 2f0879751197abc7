#!/bin/sh
# streamOptimized against real peers, both directions:
#  - streams made by qemu-img (convert -o subformat=streamOptimized) and by
#    python3-vmdkstream (/usr/bin/python3, module VMDKstream; skipped with a
#    message when missing) read back through our engine (vdtest cmp / cat)
#    exactly as their raw source, with the allocation map qemu-img sees;
#  - our streams (VixDiskLib_Clone through vixclone, from a raw file wrapped
#    in a monolithicFlat descriptor, and Create of an empty stream) pass
#    `qemu-img check`, read back identically through qemu-img (compare, and
#    convert -O raw then cmp), and open in vmdkinfo;
#  - round trips: qemu-img's and vmdkstream's streams re-cloned by us to a
#    stream that qemu-img reads identically;
#  - writes into our streams and qemu-img's (read-write open) leave streams
#    that qemu-img, vmdkinfo and we read as the raw mirror.
# Sizes: partial last grain, one sector, two grain tables, all zero, and a
# just-over-4 GiB mostly empty disk (grain directory over two sectors).
#
#   stream.sh VDTEST   (VIXCLONE=path, else vixclone next to VDTEST)
# shellcheck source=tests/interop/lib.sh
. "$(dirname "$0")/lib.sh"
need qemu-img vmdkinfo
VIXCLONE=${VIXCLONE:-$(dirname "$VDTEST")/vixclone}
[ -x "$VIXCLONE" ] || die "$VIXCLONE is not executable"

MiB=1048576
have_vmdkstream=1
if ! /usr/bin/python3 -c 'import VMDKstream' >/dev/null 2>&1; then
    log "SKIP (part): /usr/bin/python3 has no VMDKstream module (python3-vmdkstream); its streams are not tested"
    have_vmdkstream=0
fi

# wrap RAW VMDK: a monolithicFlat descriptor over a raw file (no copy).
wrap() {
    sectors=$(( $(stat -c %s "$1") / 512 ))
    cat > "$2" <<EOF
# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW $sectors FLAT "$(basename "$1")" 0

# The Disk Data Base
#DDB
ddb.adapterType = "lsilogic"
ddb.virtualHWVersion = "4"
EOF
}

# mkraw NAME SIZE SEED: mixed content -- random runs, zero gaps, text,
# a few bytes in otherwise empty grains, data in the last sector.
mkraw() {
    name=$1 size=$2 seed=$3
    rm -f "$name"
    : > "$name"
    off=0 i=0
    while [ $off -lt "$size" ]; do
        case $((i % 4)) in
            0) len=$((150000 + i * 1000)) ;;
            1) len=$((200 + i)) ;;
            *) len=0 ;;
        esac
        [ $((off + len)) -le "$size" ] || len=$((size - off))
        [ $len -gt 0 ] && run "$VDTEST" gen "$name" $off $len $((seed + i))
        off=$((off + 3 * 65536 + 1234 * i))
        i=$((i + 1))
    done
    # text-like bytes near the start, data in the last sector
    if [ "$size" -ge 65536 ]; then
        seq 1 3000 | sed 's/^/line of text number /' | head -c 60000 |
            dd of="$name" bs=60000 count=1 seek=70000 iflag=fullblock oflag=seek_bytes \
               conv=notrunc 2>/dev/null
    fi
    run "$VDTEST" gen "$name" $((size - 100)) 100 $((seed + 999))
    truncate -s "$size" "$name"
}

# ourread DISK RAW: our engine reads DISK as RAW.  vdtest cat writes holes
# for zeros, and `same` skips holes, so big sparse disks stay cheap.
ourread() {
    run "$VDTEST" cat "$1" "$1.cat"
    same "$1.cat" "$2"
    rm -f "$1.cat"
}

# ours_ok DISK RAW: our stream passes every peer check.
ours_ok() {
    qcheck "$1"
    qcompare "$1" "$2"
    run qemu-img convert -f vmdk -O raw "$1" "$1.back"
    same "$1.back" "$2"
    rm -f "$1.back"
    out=$(vmdkinfo "$1" 2>&1) || die "vmdkinfo $1: $out"
    case $out in *"Stream optimized"*) ;; *) die "vmdkinfo $1 does not see a stream: $out" ;; esac
    ct=$(qemu-img info -f vmdk "$1" | sed -n 's/^ *create type: *//p')
    [ "$ct" = streamOptimized ] || die "qemu-img sees create type '$ct' for $1"
    ourread "$1" "$2"
    mapcheck "$1"
}

# theirs_ok DISK RAW: a peer's stream reads back identically through us.
theirs_ok() {
    ourread "$1" "$2"
    mapcheck "$1"
}

one() {
    label=$1 size=$2 seed=$3
    mkraw "$label.raw" "$size" "$seed"
    wrap "$label.raw" "$label-src.vmdk"

    # qemu-img -> us
    run qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$label.raw" "$label-q.vmdk"
    theirs_ok "$label-q.vmdk" "$label.raw"
    # vmdkstream -> us
    if [ $have_vmdkstream = 1 ]; then
        run /usr/bin/python3 -c "import VMDKstream; VMDKstream.convert_to_stream('$label.raw', '$label-p.vmdk')"
        "$VDTEST" cmp "$label-p.vmdk" "$label.raw" ||
            die "our engine reads $label-p.vmdk (vmdkstream) differently from $label.raw"
        ourread "$label-p.vmdk" "$label.raw"
    fi
    # us -> qemu-img, vmdkinfo
    run "$VIXCLONE" "$label-src.vmdk" "$label-o.vmdk" streamOptimized
    ours_ok "$label-o.vmdk" "$label.raw"
    # round trips through our writer
    run "$VIXCLONE" "$label-q.vmdk" "$label-oq.vmdk" streamOptimized
    ours_ok "$label-oq.vmdk" "$label.raw"
    if [ $have_vmdkstream = 1 ]; then
        run "$VIXCLONE" "$label-p.vmdk" "$label-op.vmdk" streamOptimized
        ours_ok "$label-op.vmdk" "$label.raw"
    fi
    rm -f "$label"*
    log "ok: $label"
}

one partial $((3 * MiB + 37 * 512)) 10
one sector 512 20
one twotables $((40 * MiB + 512)) 30
one aligned $((4 * MiB)) 40

# All zero: every producer writes no grain.
truncate -s $((5 * MiB)) zero.raw
wrap zero.raw zero-src.vmdk
run "$VIXCLONE" zero-src.vmdk zero-o.vmdk streamOptimized
ours_ok zero-o.vmdk zero.raw
run qemu-img convert -f raw -O vmdk -o subformat=streamOptimized zero.raw zero-q.vmdk
theirs_ok zero-q.vmdk zero.raw
# An empty stream from Create.
run "$VDTEST" create streamOptimized $((5 * MiB)) zero-c.vmdk
ours_ok zero-c.vmdk zero.raw
rm -f zero*
log "ok: all-zero and created-empty streams"

# Just over 4 GiB, a few MiB of data scattered up to the end: the grain directory
# spans two sectors and most grain tables are omitted.
BIG=$((4100 * MiB + 3 * 512))
truncate -s $BIG big.raw
for k in 0 1 2 3 4 5 6 7 8; do
    run "$VDTEST" gen big.raw $((k * 463 * MiB + k * 4096)) $((100000 + k * 7000)) $((80 + k))
done
run "$VDTEST" gen big.raw $((BIG - 70000)) 70000 79
run qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse big.raw big.vmdk
run "$VIXCLONE" big.vmdk big-o.vmdk streamOptimized
ours_ok big-o.vmdk big.raw
run qemu-img convert -f raw -O vmdk -o subformat=streamOptimized big.raw big-q.vmdk
theirs_ok big-q.vmdk big.raw
rm -f big*
log "ok: 4 GiB stream"

# ---- writing into streams --------------------------------------------------------
# A read-write open appends new grains and rewrites the tables, directory
# and footer at each flush.  Our streams and qemu-img's (tables at the
# front, which the first write moves to the end) take random writes of
# every size through the engine; the file is then a stream that qemu-img,
# vmdkinfo and we read as the raw mirror, and a second round of writes
# after reopening works the same.
mkraw w.raw $((6 * MiB + 4096)) 61
wrap w.raw w-src.vmdk
run "$VIXCLONE" w-src.vmdk w-o.vmdk streamOptimized
run qemu-img convert -f raw -O vmdk -o subformat=streamOptimized w.raw w-q.vmdk
for k in o q; do
    cp w.raw w-$k.raw
    run "$VDTEST" randwrite w-$k.vmdk w-$k.raw 7 60 300000
    ours_ok w-$k.vmdk w-$k.raw
    run "$VDTEST" randwrite w-$k.vmdk w-$k.raw 8 40 3000
    ours_ok w-$k.vmdk w-$k.raw
done
rm -f w*
log "ok: writes into streams"

log "PASS"
