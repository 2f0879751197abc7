#!/bin/sh
# Many threads on one open disk: vdtest threads checks every thread's reads
# of its own regions during the run and the whole disk against the mirror
# afterwards; then qemu-img must read the same content and find the
# metadata consistent.  No timing is asserted.
# shellcheck source=tests/interop/lib.sh
. "$(dirname "$0")/lib.sh"
need qemu-img

MiB=1048576
NT=8
OPS=${THREADS_OPS:-10000}

# A fresh monolithicSparse disk.
run "$VDTEST" create monolithicSparse $((256 * MiB)) t1.vmdk
run "$VDTEST" threads t1.vmdk t1.raw $NT "$OPS" 1
qcompare t1.vmdk t1.raw
qcheck t1.vmdk
log "ok: monolithicSparse"

# A second run on the now populated disk (overwrites in place).
run "$VDTEST" threads t1.vmdk t1.raw $NT "$OPS" 2
qcompare t1.vmdk t1.raw
qcheck t1.vmdk
log "ok: monolithicSparse, second run"

# A child disk over a populated base: concurrent copy-on-write.
run "$VDTEST" randwrite t1.vmdk t1.raw 3 300 300000
run "$VDTEST" child t1.vmdk t2.vmdk
cp t1.raw t2.raw
run "$VDTEST" threads t2.vmdk t2.raw $NT "$OPS" 4
qcompare t2.vmdk t2.raw
qcompare t1.vmdk t1.raw
qcheck t2.vmdk
log "ok: child"

# A split sparse disk with 3 MiB extents: the regions span many extents.
export VDTEST_SPLIT_SIZE=$((3 * MiB))
run "$VDTEST" create twoGbMaxExtentSparse $((40 * MiB)) t3.vmdk
unset VDTEST_SPLIT_SIZE
run "$VDTEST" threads t3.vmdk t3.raw $NT "$OPS" 5
qcompare t3.vmdk t3.raw
qcheck t3.vmdk
log "ok: twoGbMaxExtentSparse, 3 MiB extents"

# A flat disk (no metadata, pure pread/pwrite concurrency).
run "$VDTEST" create monolithicFlat $((64 * MiB)) t4.vmdk
run "$VDTEST" threads t4.vmdk t4.raw $NT "$OPS" 6
qcompare t4.vmdk t4.raw
log "ok: monolithicFlat"

# A streamOptimized disk: every write appends compressed grains, writes to
# parts of a grain meet in one in-memory copy; the result must be a stream
# whose tables agree with its grain markers.
run "$VDTEST" create streamOptimized $((16 * MiB)) t5.vmdk
run "$VDTEST" threads t5.vmdk t5.raw $NT $((OPS / 4)) 7
qcompare t5.vmdk t5.raw
qcheck t5.vmdk
run "$(dirname "$VDTEST")/vdmaint" check t5.vmdk
log "ok: streamOptimized"

log "PASS"
