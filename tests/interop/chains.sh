#!/bin/sh
# Backing chains across implementations:
#  - chains made by qemu-img/qemu-io read through the engine exactly as
#    qemu-img reads them;
#  - chains made by the engine (vdtest child + randwrite into every link)
#    read through qemu-img exactly as their raw mirrors, and pass its check;
#  - mixed chains (our child on a qemu base and the reverse).
# shellcheck source=tests/interop/lib.sh
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io

MiB=1048576
SIZE=$((100 * MiB + 3 * 512))

# check_ours LABEL DISK: our read of DISK equals qemu-img's.
check_ours() {
    run qemu-img convert -f vmdk -O raw "$2" "$1.expect.raw"
    rm -f "$1.got.raw"
    run "$VDTEST" cat "$2" "$1.got.raw"
    same "$1.expect.raw" "$1.got.raw"
    rm -f "$1.expect.raw" "$1.got.raw"
    log "ok: $1"
}

# ---- qemu-made chains ------------------------------------------------
# base <- mid <- top, overlapping partial-grain writes at every level.
for sub in monolithicSparse twoGbMaxExtentSparse; do
    d=q-$sub
    truncate -s $SIZE $d.src.raw
    run "$VDTEST" gen $d.src.raw 0 $((3 * MiB)) 11
    run "$VDTEST" gen $d.src.raw $((50 * MiB + 777)) $((2 * MiB)) 12
    run "$VDTEST" gen $d.src.raw $((SIZE - MiB)) $MiB 13
    run qemu-img convert -f raw -O vmdk -o subformat=$sub $d.src.raw $d.base.vmdk
    run qemu-img create -q -f vmdk -o subformat=$sub -b $d.base.vmdk -F vmdk $d.mid.vmdk
    run qemu-io -f vmdk \
        -c "write -P 0x61 1000 3000" \
        -c "write -P 0x62 $((64 * 1024 - 512)) 1024" \
        -c "write -P 0x63 $((50 * MiB)) 100000" \
        -c "write -P 0x64 $((80 * MiB + 5)) 70000" \
        -c "write -P 0x65 $((SIZE - 512)) 512" \
        $d.mid.vmdk >/dev/null
    run qemu-img create -q -f vmdk -o subformat=$sub -b $d.mid.vmdk -F vmdk $d.top.vmdk
    run qemu-io -f vmdk \
        -c "write -P 0x71 2000 100" \
        -c "write -P 0x72 $((50 * MiB + 4096)) 8192" \
        -c "write -P 0x73 $((80 * MiB)) 65536" \
        -c "write -P 0x74 $((90 * MiB + 1)) 1" \
        $d.top.vmdk >/dev/null
    check_ours "$d-base" $d.base.vmdk
    check_ours "$d-mid" $d.mid.vmdk
    check_ours "$d-top" $d.top.vmdk
    mapcheck $d.top.vmdk
    # Writing through the engine into qemu's top link: qemu-img must agree.
    run qemu-img convert -f vmdk -O raw $d.top.vmdk $d.top.raw
    run "$VDTEST" randwrite $d.top.vmdk $d.top.raw 21 200 200000
    qcompare $d.top.vmdk $d.top.raw
    qcheck $d.top.vmdk
    # The links below must be untouched.
    check_ours "$d-mid-after" $d.mid.vmdk
    rm -f $d.*
done

# ---- our chains --------------------------------------------------------
# base (any type) <- child <- grandchild, random writes into every link.
# Each link has its own mirror: the parent's mirror plus its own writes.
for base in monolithicSparse twoGbMaxExtentSparse monolithicFlat vmfs; do
    for ctype in monolithicSparse twoGbMaxExtentSparse; do
        d=o-$base-$ctype
        run "$VDTEST" create $base $SIZE $d.base.vmdk
        run "$VDTEST" randwrite $d.base.vmdk $d.base.raw 31 200 300000
        run "$VDTEST" child $d.base.vmdk $d.child.vmdk $ctype
        cp $d.base.raw $d.child.raw
        run "$VDTEST" randwrite $d.child.vmdk $d.child.raw 32 200 300000
        run "$VDTEST" child $d.child.vmdk $d.gc.vmdk $ctype
        cp $d.child.raw $d.gc.raw
        run "$VDTEST" randwrite $d.gc.vmdk $d.gc.raw 33 200 300000
        for l in base child gc; do
            qcompare $d.$l.vmdk $d.$l.raw
            case $base in
                *Sparse) qcheck $d.$l.vmdk; mapcheck $d.$l.vmdk ;;
                *) [ $l = base ] || qcheck $d.$l.vmdk ;;
            esac
        done
        # qemu-img must not see a CID mismatch anywhere in the chain.
        run qemu-img info --backing-chain $d.gc.vmdk >/dev/null
        rm -f $d.*
        log "ok: ours $base <- $ctype <- $ctype"
    done
done

# ---- mixed chains ------------------------------------------------------
# Our child on a qemu base.
truncate -s $SIZE m1.src.raw
run "$VDTEST" gen m1.src.raw $((10 * MiB + 3)) $((4 * MiB)) 41
run qemu-img convert -f raw -O vmdk m1.src.raw m1.base.vmdk
run "$VDTEST" child m1.base.vmdk m1.child.vmdk
cp m1.src.raw m1.child.raw
run "$VDTEST" randwrite m1.child.vmdk m1.child.raw 42 200 300000
qcompare m1.child.vmdk m1.child.raw
qcheck m1.child.vmdk
check_ours m1-child m1.child.vmdk
mapcheck m1.child.vmdk
log "ok: our child on a qemu base"

# A qemu child on our base.
run "$VDTEST" create monolithicSparse $SIZE m2.base.vmdk
run "$VDTEST" randwrite m2.base.vmdk m2.base.raw 51 200 300000
run qemu-img create -q -f vmdk -b m2.base.vmdk -F vmdk m2.child.vmdk
run qemu-io -f vmdk -c "write -P 0x81 12345 70000" -c "write -P 0x82 $((99 * MiB)) 4096" \
    m2.child.vmdk >/dev/null
check_ours m2-child m2.child.vmdk
mapcheck m2.child.vmdk
log "ok: a qemu child on our base"

log "PASS"
