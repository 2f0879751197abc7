#!/bin/sh
# Disks made by qemu-img in every subformat it creates (plus vmfs/vmfsThin
# descriptors over a flat file, which qemu-img reads but cannot create) read
# back through the engine byte-identical to `qemu-img convert -O raw`.
#
# The virtual size is just over 2 GiB (and not a multiple of the grain) so
# split disks get two extents; only a few MiB are written.
# shellcheck source=tests/interop/lib.sh
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io

SIZE=$((2200 * 1024 * 1024 + 3 * 512))
MiB=1048576

# The source raw image: random data around the interesting places.
truncate -s "$SIZE" src.raw
run "$VDTEST" gen src.raw 0 $MiB 1                                   # first grains
run "$VDTEST" gen src.raw $((1000 * MiB + 12345)) 300000 2           # unaligned, mid disk
run "$VDTEST" gen src.raw $((2047 * MiB - 100000)) 300000 3         # VMware split point
run "$VDTEST" gen src.raw $((2048 * MiB - 50000)) 200000 4          # QEMU split point
run "$VDTEST" gen src.raw $((SIZE - 300000)) 300000 5               # the tail

# check_disk LABEL DISK: our read of DISK equals qemu-img's.
check_disk() {
    run qemu-img convert -f vmdk -O raw "$2" "$1.expect.raw"
    rm -f "$1.got.raw"
    run "$VDTEST" cat "$2" "$1.got.raw"
    same "$1.expect.raw" "$1.got.raw"
    rm -f "$1.expect.raw" "$1.got.raw"
    log "ok: $1"
}

# our_writes LABEL DISK SEED: the engine writes into qemu's disk (random
# offsets and lengths); qemu-img must then read exactly the mirror.
our_writes() {
    run qemu-img convert -f vmdk -O raw "$2" "$1.mirror.raw"
    run "$VDTEST" randwrite "$2" "$1.mirror.raw" "$3" 150 300000
    qcompare "$2" "$1.mirror.raw"
    case $1 in *Flat*|vmfs*) ;; *) qcheck "$2" ;; esac
    rm -f "$1.mirror.raw"
    log "ok: $1+vdtest randwrite"
}

# qemu_writes DISK: a few pattern writes by qemu-io on top, unaligned and
# partial-grain, some into unallocated grains, some over converted data.
qemu_writes() {
    run qemu-io -f vmdk \
        -c "write -P 0xa5 512 1024" \
        -c "write -P 0x5a 70000 5000" \
        -c "write -P 0x11 $((500 * MiB)) 65536" \
        -c "write -P 0x22 $((1000 * MiB + 4096)) 131072" \
        -c "write -P 0x33 $((2048 * MiB - 512)) 4096" \
        -c "write -P 0x44 $((SIZE - 1536)) 1536" \
        "$1" >/dev/null
}

for sub in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat; do
    run qemu-img convert -f raw -O vmdk -o subformat=$sub src.raw "$sub.vmdk"
    check_disk "$sub" "$sub.vmdk"
    qemu_writes "$sub.vmdk"
    check_disk "$sub+qemu-io" "$sub.vmdk"
    case $sub in *Sparse) mapcheck "$sub.vmdk" ;; esac
    our_writes "$sub" "$sub.vmdk" 61
    rm -f "$sub"*.vmdk
done

# Option variants of the default subformat.
run qemu-img convert -f raw -O vmdk -o adapter_type=lsilogic,hwversion=6 src.raw lsi.vmdk
check_disk lsilogic lsi.vmdk
mapcheck lsi.vmdk
rm -f lsi.vmdk
run qemu-img convert -f raw -O vmdk -o compat6=on src.raw compat6.vmdk
check_disk compat6 compat6.vmdk
mapcheck compat6.vmdk
rm -f compat6.vmdk

# zeroed_grain=on: whole-grain zero writes become GTE 1 (version 2 header).
run qemu-img convert -f raw -O vmdk -o zeroed_grain=on src.raw zg.vmdk
run qemu-io -f vmdk -c "write -z 0 131072" -c "write -z $((2047 * MiB)) 65536" \
    -c "write -z $((700 * MiB)) 65536" zg.vmdk >/dev/null
check_disk zeroed_grain zg.vmdk
mapcheck zg.vmdk

# A zeroed_grain child over a parent with data: GTE 1 must hide the parent.
run qemu-img create -q -f vmdk -o zeroed_grain=on -b zg.vmdk -F vmdk zgc.vmdk
run qemu-io -f vmdk -c "write -z 65536 65536" -c "write -z $((2048 * MiB - 65536)) 131072" \
    -c "write -P 0x77 $((1000 * MiB)) 512" zgc.vmdk >/dev/null
check_disk zeroed_grain-child zgc.vmdk
mapcheck zgc.vmdk
our_writes zeroed_grain-child zgc.vmdk 62
rm -f zg.vmdk zgc.vmdk

# streamOptimized (compressed grains; written once by convert).  Writes
# into qemu-img's streams are tested in stream.sh.
run qemu-img convert -f raw -O vmdk -o subformat=streamOptimized src.raw stream.vmdk
"$VDTEST" cmp stream.vmdk src.raw 2>stream.err || die "streamOptimized: $(cat stream.err)"
check_disk streamOptimized stream.vmdk
rm -f stream.vmdk stream.err

# vmfs descriptors over a flat file (qemu-img reads these but does not
# create them): thick, and thin the way ESXi writes it (createType "vmfs"
# plus ddb.thinProvisioned).  qemu-img does not know createType "vmfsThin",
# so that spelling is checked against the source image directly.
# vmfs_desc CREATETYPE FLAT THIN
vmfs_desc() {
    echo "# Disk DescriptorFile"
    echo "version=1"
    echo "CID=1b2c3d4e"
    echo "parentCID=ffffffff"
    echo "createType=\"$1\""
    echo ""
    echo "# Extent description"
    echo "RW $((SIZE / 512)) VMFS \"$2\""
    echo ""
    echo "# The Disk Data Base"
    echo "#DDB"
    echo ""
    echo 'ddb.adapterType = "lsilogic"'
    echo 'ddb.geometry.cylinders = "280"'
    echo 'ddb.geometry.heads = "255"'
    echo 'ddb.geometry.sectors = "63"'
    if [ "$3" = thin ]; then echo 'ddb.thinProvisioned = "1"'; fi
    echo 'ddb.virtualHWVersion = "13"'
}

for variant in thick thin; do
    cp --sparse=always src.raw "vmfs-$variant-flat.vmdk"
    vmfs_desc vmfs "vmfs-$variant-flat.vmdk" $variant > "vmfs-$variant.vmdk"
    check_disk "vmfs-$variant" "vmfs-$variant.vmdk"
    qemu_writes "vmfs-$variant.vmdk"
    check_disk "vmfs-$variant+qemu-io" "vmfs-$variant.vmdk"
    our_writes "vmfs-$variant" "vmfs-$variant.vmdk" 63
    rm -f "vmfs-$variant.vmdk" "vmfs-$variant-flat.vmdk"
done

cp --sparse=always src.raw vmfsThin-flat.vmdk
vmfs_desc vmfsThin vmfsThin-flat.vmdk thin > vmfsThin.vmdk
run "$VDTEST" cmp vmfsThin.vmdk src.raw
rm -f vmfsThin.vmdk vmfsThin-flat.vmdk
log "ok: createType vmfsThin"

log "PASS"
