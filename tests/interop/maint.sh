#!/bin/sh
# Maintenance operations against qemu-img:
#  - shrink, defragment and grow of our sparse disks, of a child, and of a
#    disk qemu-img made: afterwards `qemu-img check` finds nothing and
#    `qemu-img compare` equals the raw mirror (and so does our own read);
#  - a defragment and a shrink killed (SIGKILL) at every progress step
#    leave a disk that passes the same checks;
#  - CheckRepair repairs a damaged disk into one qemu-img accepts.
# shellcheck source=tests/interop/lib.sh
. "$(dirname "$0")/lib.sh"
need qemu-img
VDMAINT=$(dirname "$VDTEST")/vdmaint
[ -x "$VDMAINT" ] || die "$VDMAINT is not built"

MiB=1048576
SIZE=$((48 * MiB + 3 * 512))

# ok DISK RAW: every reader agrees with the mirror.
ok() {
    qcheck "$1"
    qcompare "$1" "$2"
    run "$VDTEST" cmp "$1" "$2"
}

# zero DISK RAW OFF LEN: write zeros into both (allocating grains).
zero() {
    run "$VDMAINT" zero "$1" "$3" "$4"
    dd if=/dev/zero of="$2" bs=512 seek=$(($3 / 512)) count=$(($4 / 512)) conv=notrunc \
        status=none || die "dd"
}

# cycle DISK RAW: shrink, defragment, grow; checked after each.
cycle() {
    run "$VDMAINT" shrink "$1"
    ok "$1" "$2"
    run "$VDMAINT" defrag "$1"
    ok "$1" "$2"
    run "$VDMAINT" grow "$1" $((3 * SIZE)) geometry
    truncate -s $((3 * SIZE)) "$2"
    ok "$1" "$2"
    run "$VDTEST" randwrite "$1" "$2" 77 60 300000
    ok "$1" "$2"
    run "$VDMAINT" check "$1" >/dev/null
    log "ok: $1"
}

# ---- our disks -------------------------------------------------------------
for t in monolithicSparse twoGbMaxExtentSparse; do
    d=o-$t
    VDTEST_SPLIT_SIZE=$((16 * MiB)) run "$VDTEST" create $t $SIZE $d.vmdk
    run "$VDTEST" randwrite $d.vmdk $d.raw 41 300 400000
    zero $d.vmdk $d.raw $((8 * MiB)) $((6 * MiB))
    zero $d.vmdk $d.raw $((20 * MiB + 512)) $((3 * MiB))
    cycle $d.vmdk $d.raw
    rm -f o-$t*
done

# ---- a disk qemu-img made ------------------------------------------------------
truncate -s $SIZE q.raw
run "$VDTEST" gen q.raw 0 $((10 * MiB)) 5
run "$VDTEST" gen q.raw $((30 * MiB)) $((7 * MiB)) 6
run qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse q.raw q.vmdk
zero q.vmdk q.raw $((2 * MiB)) $((3 * MiB))
cycle q.vmdk q.raw

# ---- a child: zeroed grains (version 2, flag 0x4) as qemu reads them -----------
run "$VDTEST" create monolithicSparse $SIZE b.vmdk
run "$VDTEST" randwrite b.vmdk c.raw 51 100 400000
run "$VDTEST" child b.vmdk c.vmdk monolithicSparse
run "$VDTEST" randwrite c.vmdk c.raw 52 100 300000
zero c.vmdk c.raw 0 $((4 * MiB))
zero c.vmdk c.raw $((40 * MiB)) $((2 * MiB))
run "$VDMAINT" shrink c.vmdk
ok c.vmdk c.raw
run "$VDMAINT" defrag c.vmdk
ok c.vmdk c.raw

# ---- killed in the middle --------------------------------------------------------
for op in defrag shrink; do
    run "$VDTEST" create monolithicSparse $SIZE k.vmdk
    run "$VDTEST" randwrite k.vmdk k.raw 61 400 200000
    zero k.vmdk k.raw $((5 * MiB)) $((9 * MiB))
    cp k.vmdk k.orig
    steps=$("$VDMAINT" steps $op k.vmdk) || die "vdmaint steps $op"
    ok k.vmdk k.raw
    n=1
    while [ $n -le "$steps" ]; do
        cp k.orig k.vmdk
        # In a subshell so the shell's "Killed" notice goes nowhere.
        st=$( ("$VDMAINT" kill $op k.vmdk $n >/dev/null 2>&1 || echo $?) 2>/dev/null)
        [ "${st:-0}" -eq 137 ] || die "$op: not killed at step $n (exit $st)"
        ok k.vmdk k.raw
        n=$((n + 1))
    done
    log "ok: $op killed at each of $steps steps"
    rm -f k.*
done

# ---- CheckRepair --------------------------------------------------------------------
run "$VDTEST" create monolithicSparse $SIZE r.vmdk
run "$VDTEST" randwrite r.vmdk r.raw 71 50 200000
printf '\001' | dd of=r.vmdk bs=1 seek=72 conv=notrunc status=none
st=0
"$VDMAINT" check r.vmdk >/dev/null || st=$?
[ $st -eq 4 ] || die "check of an unclean disk exited $st, expected 4"
run "$VDMAINT" check r.vmdk repair >/dev/null
run "$VDMAINT" check r.vmdk >/dev/null
ok r.vmdk r.raw
log "ok: CheckRepair"
