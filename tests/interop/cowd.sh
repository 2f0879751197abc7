#!/bin/sh
# vmfsSparse (COWD) and seSparse against qemu-img / qemu-io (QEMU's "vmdk3"
# and seSparse readers):
#  - vmfsSparse disks we create and fill with random, mostly unaligned,
#    partial-grain writes (grain 1, 16 and 2048 sectors) read through
#    qemu-img exactly as their raw mirrors, pass `qemu-img check` (which
#    does check COWD extents: it reports GT entries past the end of file)
#    and have the allocation map qemu-img sees;
#  - a vmfsSparse child (descriptor edited by hand, as ESX writes them) of
#    a monolithicSparse base reads through qemu-img like its mirror, with
#    copy-on-write of partial grains from the base;
#  - grains qemu-io allocates in grain tables that exist (QEMU cannot
#    allocate new grain tables in COWD files and does not update
#    freeSector) read back through the engine, and the engine's later
#    allocations do not overwrite them;
#  - the hand-made seSparse seed of the fuzz corpus reads the same through
#    qemu-img and the engine, with the same allocation map.
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/interop/lib.sh
. "$HERE/lib.sh"
need qemu-img qemu-io

MiB=1048576
SIZE=$((20 * MiB + 3 * 512))

# one LABEL SIZE SEED COUNT MAXLEN: create, fill, compare, check, map.
one() {
    label=$1 size=$2 seed=$3 count=$4 maxlen=$5
    run "$VDTEST" create vmfsSparse "$size" "$label.vmdk"
    [ -f "$label-delta.vmdk" ] || die "$label: no $label-delta.vmdk"
    grep -q 'createType="vmfsSparse"' "$label.vmdk" || die "$label: createType"
    grep -q "VMFSSPARSE \"$label-delta.vmdk\"" "$label.vmdk" || die "$label: extent line"
    run "$VDTEST" randwrite "$label.vmdk" "$label.raw" "$seed" "$count" "$maxlen"
    qcompare "$label.vmdk" "$label.raw"
    qcheck "$label.vmdk"
    mapcheck "$label.vmdk"
    # Reopened: more writes over allocated and new grains.
    run "$VDTEST" randwrite "$label.vmdk" "$label.raw" $((seed + 1000)) "$count" "$maxlen"
    qcompare "$label.vmdk" "$label.raw"
    qcheck "$label.vmdk"
    run "$VDTEST" cmp "$label.vmdk" "$label.raw"
    rm -f "$label"*
    log "ok: $label"
}

one g1 $SIZE 41 300 200000
export VDTEST_GRAIN_SECTORS=16
one g16 $SIZE 42 300 200000
export VDTEST_GRAIN_SECTORS=2048
one g2048 $((40 * MiB + 512)) 43 200 300000
unset VDTEST_GRAIN_SECTORS

# ---- a vmfsSparse child of a monolithicSparse base -----------------------
run "$VDTEST" create monolithicSparse $SIZE base.vmdk
run "$VDTEST" randwrite base.vmdk base.raw 51 200 300000
run "$VDTEST" create vmfsSparse $SIZE child.vmdk
cid=$(qemu-img info -f vmdk --output=json base.vmdk | sed -n 's/.*"cid": *\([0-9]*\).*/\1/p' | head -n 1)
[ -n "$cid" ] || die "no CID for base.vmdk"
pcid=$(printf '%08x' "$cid")
sed -i "s/^parentCID=ffffffff\$/parentCID=$pcid\\nparentFileNameHint=\"base.vmdk\"/" child.vmdk
grep -q "^parentFileNameHint=\"base.vmdk\"" child.vmdk || die "editing child.vmdk failed"
cp base.raw child.raw
run "$VDTEST" randwrite child.vmdk child.raw 52 300 100000
qcompare child.vmdk child.raw
qcheck child.vmdk
run "$VDTEST" cmp child.vmdk child.raw
# The base is untouched.
qcompare base.vmdk base.raw
log "ok: vmfsSparse child of monolithicSparse"

# ---- qemu-io writes into existing grain tables -----------------------------
# child-delta.vmdk has grain tables for most of the disk after 300 writes;
# qemu-io writes where one exists (it cannot allocate new ones): both
# writes are in grain table 0 (the first 2 MiB), which must hold data.
"$VDTEST" status child.vmdk single | awk '$3 == "data" && $1 < 2097152 { ok = 1 } END { exit !ok }' ||
    die "child-delta.vmdk has no grain table 0 (change the seed)"
run qemu-io -f vmdk -c "write -P 0x5a 1000 3000" -c "write -P 0x5b 70001 5000" child.vmdk >/dev/null
run qemu-io -f raw -c "write -P 0x5a 1000 3000" -c "write -P 0x5b 70001 5000" child.raw >/dev/null
qcompare child.vmdk child.raw
run "$VDTEST" cmp child.vmdk child.raw
# Our next allocations go past the grains qemu appended (it left
# freeSector behind).
run "$VDTEST" randwrite child.vmdk child.raw 53 200 100000
run "$VDTEST" cmp child.vmdk child.raw
qcompare child.vmdk child.raw
qcheck child.vmdk
rm -f base* child*
log "ok: qemu-io writes into our vmfsSparse"

# ---- seSparse (read-only) -----------------------------------------------------
SES=$HERE/../fuzz/corpus/cowd/sesparse-small.vmdk
[ -f "$SES" ] || die "missing $SES"
cp "$SES" s-sesparse.vmdk
cat > s.vmdk <<'EOF'
# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="seSparse"

# Extent description
RW 32760 SESPARSE "s-sesparse.vmdk"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
EOF
run qemu-img convert -f vmdk -O raw s.vmdk s.expect.raw
run "$VDTEST" cat s.vmdk s.got.raw
same s.expect.raw s.got.raw
# qemu-img map reports zeroed/unmapped grains as absent (not "present,
# zero" as for a hosted GTE 1), so compare only data runs.
qemu-img map -f vmdk --output=json s.vmdk |
    sed -n 's/.*"start": *\([0-9]*\), *"length": *\([0-9]*\),.*"data": *true.*/\1 \2 data/p' |
    normmap > s.qmap
"$VDTEST" status s.vmdk | awk '$3 == "data"' | normmap > s.omap || die "vdtest status"
cmp -s s.qmap s.omap || { diff s.qmap s.omap >&2; die "seSparse data maps differ"; }
log "ok: seSparse"
