#!/bin/sh
# xfs.sh - NAS plugin offloads on XFS with reflink, on a loop device.
#
#   sh xfs.sh VDP_CLIENT VDP_TOOL DIST_DIR [VDDK]
#
# Makes an 8 GiB (sparse) XFS image with -m reflink=1, attaches it to a
# loop device and mounts it, then through the public API (vdp_client,
# libDir = DIST_DIR, so nas-localfs is loaded):
#   - a 1 GiB monolithicFlat clone is done by FICLONE: the log says so, the
#     copy's extents are shared, almost no space is used, it reads equal;
#   - STATX (vdp_tool) unique bytes drop to ~0 after the clone and grow by
#     what is written afterwards;
#   - the figures reach callers: SpaceNeededForClone counts ~0 for a lazy
#     flat clone and the full size for vmfs (and without plugins), GetInfo
#     logs them, vddk_disk_get_link_info and `vddk info` (VDDK, the tool
#     built against DIST_DIR) show them;
#   - a thick create is reserved by RESVSPACE: fully allocated, reads zeros;
#   - a twoGbMaxExtentFlat disk (2 extents) is cloned extent by extent;
#   - a vmfs (thick) clone is a full copy with no shared extents;
#   - GUARDED refuses an existing file; without plugins the library copies.
# Needs root, mkfs.xfs, losetup, filefrag; exits 77 (skip) saying why when
# any is missing or the mount fails.  Loop device and mount are always
# removed (trap).
set -u

client=$1
tool=$2
dist=$3
vddk=${4:-}

skip() {
    echo "SKIP: $*"
    exit 77
}

for b in "$client" "$tool"; do
    [ -x "$b" ] || { echo "FAIL: $b is not built"; exit 1; }
done
[ -f "$dist/lib64/plugins/libnas-localfs.so" ] ||
    { echo "FAIL: $dist/lib64/plugins/libnas-localfs.so is not built"; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root to attach a loop device and mount XFS (uid $(id -u))"
for t in mkfs.xfs losetup mount umount mountpoint filefrag df truncate; do
    command -v $t >/dev/null 2>&1 || skip "$t is not installed"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vdplugin-xfs.XXXXXX") || exit 1
img=$work/xfs.img
mnt=$work/mnt
log=$work/log
loop=
cleanup() {
    if mountpoint -q "$mnt" 2>/dev/null; then
        umount "$mnt" 2>/dev/null || umount -l "$mnt"
    fi
    [ -n "$loop" ] && losetup -d "$loop"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

truncate -s 8G "$img" || skip "cannot make an 8 GiB sparse image in $work"
mkfs.xfs -q -m reflink=1 "$img" >"$log" 2>&1 || skip "mkfs.xfs -m reflink=1 failed: $(cat "$log")"
loop=$(losetup -f --show "$img" 2>"$log") || { loop=; skip "losetup failed: $(cat "$log")"; }
mkdir "$mnt"
mount -t xfs "$loop" "$mnt" 2>"$log" || skip "cannot mount XFS from $loop: $(cat "$log")"
echo "XFS with reflink mounted on $mnt ($loop)"

fail=0
ok() { echo "ok   $*"; }
err() {
    echo "FAIL $*"
    fail=1
}
# run NAME CMD...: the command's log lines go to $work/NAME.log
run() {
    name=$1
    shift
    "$@" >"$work/$name.out" 2>"$work/$name.log"
    rc=$?
    [ $rc -eq 0 ] || { echo "  ($name exited $rc)"; sed 's/^/    /' "$work/$name.log" | tail -20; }
    return $rc
}
has() { grep -q -- "$2" "$work/$1.log"; }
used() { df -B1 --output=used "$mnt" | tail -1 | tr -d ' '; }
# statx FILE -> sets total alloc uniq
statx() {
    line=$("$tool" -L "$dist" statx "$1" 2>"$work/statx.log") || {
        cat "$work/statx.log"
        total=0 alloc=0 uniq=-1
        return 1
    }
    eval "$(echo "$line" | sed -n 's/^total=\([0-9]*\) allocated=\([0-9]*\) unique=\([0-9]*\).*/total=\1 alloc=\2 uniq=\3/p')"
}
MiB=1048576
C="$client -L $dist"

# ---- 1 GiB clone by FICLONE ---------------------------------------------
run create $C create "$mnt/src.vmdk" monolithicFlat 1024 || err "create 1 GiB source"
run fill $C -q fill "$mnt/src.vmdk" 1 || err "fill the source"
sync
statx "$mnt/src-flat.vmdk"
echo "  source before clone: total=$total allocated=$alloc unique=$uniq"
[ "$uniq" -ge $((1000 * MiB)) ] || err "source unique bytes $uniq, expected about 1 GiB"
# What a clone would take, asked before it is made.
space() {
    run space "$@" || return 1
    sed -n 's/^space=//p' "$work/space.out"
}
s_lazy=$(space $C space "$mnt/src.vmdk" monolithicFlat)
s_thin=$(space $C space "$mnt/src.vmdk" vmfsThin)
s_full=$(space $C space "$mnt/src.vmdk" vmfs)
mkdir -p "$work/nolib"
s_lib=$(space $client -L "$work/nolib" space "$mnt/src.vmdk" monolithicFlat)
echo "  SpaceNeededForClone: monolithicFlat $s_lazy, vmfsThin $s_thin, vmfs $s_full, without plugins $s_lib"
[ -n "$s_lazy" ] && [ "$s_lazy" -lt $((1 * MiB)) ] && [ -n "$s_thin" ] && [ "$s_thin" -lt $((1 * MiB)) ] &&
    ok "SpaceNeededForClone: a lazy plugin clone needs almost nothing" ||
    err "SpaceNeededForClone for lazy clones: $s_lazy / $s_thin"
[ -n "$s_full" ] && [ "$s_full" -ge $((1024 * MiB)) ] && [ "$s_full" -lt $((1025 * MiB)) ] &&
    [ -n "$s_lib" ] && [ "$s_lib" -ge $((1024 * MiB)) ] && [ "$s_lib" -lt $((1025 * MiB)) ] &&
    ok "SpaceNeededForClone: a full (vmfs) clone and a library copy need the whole 1 GiB" ||
    err "SpaceNeededForClone for full copies: $s_full / $s_lib"
run space $C space "$mnt/src.vmdk" monolithicFlat
has space "NAS plugin nas-localfs would clone its 1 extent file (lazy)" &&
    ok "SpaceNeededForClone logs the plugin's figures" || err "no SpaceNeededForClone log line"

before=$(used)
run clone $C clone "$mnt/src.vmdk" "$mnt/dst.vmdk" monolithicFlat || err "clone 1 GiB"
cat "$work/clone.out"
if has clone "CLONEFILE .*(lazy) done" && has clone "1 extent file cloned by the NAS plugin"; then
    ok "1 GiB clone done by the plugin with FICLONE (lazy)"
else
    err "the 1 GiB clone was not a lazy plugin clone"
    grep -i "plugin\|clone" "$work/clone.log" | head -20
fi
sync
grow=$(( $(used) - before ))
echo "  space used by the clone: $grow bytes"
[ "$grow" -lt $((32 * MiB)) ] && ok "clone used almost no new space" ||
    err "clone used $grow bytes"
if filefrag -v "$mnt/dst-flat.vmdk" | grep -q shared; then
    ok "the copy's extents are shared"
else
    err "the copy's extents are not shared"
    filefrag -v "$mnt/dst-flat.vmdk" | head
fi
run cmp1 $client -q -L "$dist" cmp "$mnt/src.vmdk" "$mnt/dst.vmdk" && ok "the copy reads equal" ||
    err "the copy differs"

# ---- STATX unique bytes -----------------------------------------------------
statx "$mnt/src-flat.vmdk"
su=$uniq
statx "$mnt/dst-flat.vmdk"
du_=$uniq
echo "  after clone: source unique=$su copy unique=$du_ (allocated $alloc)"
[ "$su" -lt $((16 * MiB)) ] && [ "$du_" -lt $((16 * MiB)) ] &&
    ok "STATX unique bytes dropped to ~0 on both files" || err "unique bytes did not drop"

# The same figures through the public API: descriptor and extent together.
run info $C info "$mnt/dst.vmdk" || err "info of the copy"
line=$(cat "$work/info.out")
echo "  vddk_disk_get_link_info: $line"
eval "$(echo "$line" | sed -n 's/^plugin=\([^ ]*\) total=\([0-9]*\) allocated=\([0-9]*\) unique=\([0-9]*\)$/ip=\1 it=\2 ia=\3 iu=\4/p')"
[ "${ip:-}" = nas-localfs ] && [ "${it:-0}" -gt $((1024 * MiB)) ] && [ "${ia:-0}" -ge $((1024 * MiB)) ] &&
    [ "${iu:-$((1 << 40))}" -lt $((16 * MiB)) ] &&
    ok "vddk_disk_get_link_info reports the plugin's figures (unique ~0 after the clone)" ||
    err "vddk_disk_get_link_info: $line"
has info "GetInfo .*link 0 .*NAS plugin nas-localfs reports" &&
    ok "GetInfo logs the plugin's figures" || err "no GetInfo log line for the plugin's figures"
if [ -n "$vddk" ]; then
    "$vddk" info "$mnt/dst.vmdk" >"$work/vi.out" 2>"$work/vi.log" || err "vddk info"
    grep "storage:" "$work/vi.out"
    grep -q "storage: .* allocated, .* unique, of .*(NAS plugin nas-localfs)" "$work/vi.out" &&
        ok "vddk info shows allocated and unique bytes" || err "vddk info has no storage line"
    "$vddk" info --json "$mnt/dst.vmdk" >"$work/vj.out" 2>>"$work/vi.log" || err "vddk info --json"
    grep -q '"nas": {"plugin": "nas-localfs", "total_bytes": [0-9]*, "allocated_bytes": [0-9]*, "unique_bytes": [0-9]*}' \
        "$work/vj.out" && ok "vddk info --json carries them" || err "vddk info --json has no nas object"
fi
run write $C -q write "$mnt/dst.vmdk" 100 64 9 || err "write 64 MiB into the copy"
sync
statx "$mnt/dst-flat.vmdk"
echo "  after writing 64 MiB into the copy: copy unique=$uniq"
[ "$uniq" -ge $((64 * MiB)) ] && [ "$uniq" -lt $((128 * MiB)) ] &&
    ok "copy's unique bytes grew by the 64 MiB written" || err "copy unique=$uniq after 64 MiB"
run info2 $C -q info "$mnt/dst.vmdk"
iu2=$(sed -n 's/.* unique=\([0-9]*\)$/\1/p' "$work/info2.out")
[ "${iu2:-0}" -ge $((64 * MiB)) ] && [ "${iu2:-0}" -lt $((128 * MiB)) ] &&
    ok "vddk_disk_get_link_info: unique bytes grew by the 64 MiB written" ||
    err "vddk_disk_get_link_info unique=${iu2:-?} after 64 MiB"
statx "$mnt/src-flat.vmdk"
[ "$uniq" -ge $((64 * MiB)) ] && ok "source's unique bytes grew too (those blocks are no longer shared)" ||
    err "source unique=$uniq"
$client -q -L "$dist" cmp "$mnt/src.vmdk" "$mnt/dst.vmdk" 2>/dev/null && err "copy still equal after a write" ||
    ok "the copy is independent of the source"

# ---- RESVSPACE ----------------------------------------------------------------
run thick $C create "$mnt/thick.vmdk" monolithicFlat 256 || err "create thick 256 MiB"
has thick "RESVSPACE .*thick-flat.vmdk.* done" && ok "thick create reserved by RESVSPACE" ||
    err "no RESVSPACE in the create log"
statx "$mnt/thick-flat.vmdk"
[ "$alloc" -ge $((256 * MiB)) ] && ok "reserved file fully allocated ($alloc bytes)" ||
    err "reserved file has $alloc bytes allocated"
filefrag -v "$mnt/thick-flat.vmdk" | grep -q unwritten && ok "its extents are unwritten (no zeros written)" ||
    err "no unwritten extents"
run zeros $client -q -L "$dist" zeros "$mnt/thick.vmdk" && ok "reserved disk reads as zeros" ||
    err "reserved disk does not read as zeros"

# ---- two extents ----------------------------------------------------------------
run split $C create "$mnt/split.vmdk" twoGbMaxExtentFlat 2100 || err "create 2100 MiB split"
for off in 0 2046 2047 2099; do
    $C -q write "$mnt/split.vmdk" $off 1 $off 2>>"$work/split.log" || err "write at $off MiB"
done
run splitclone $C clone "$mnt/split.vmdk" "$mnt/split2.vmdk" twoGbMaxExtentFlat ||
    err "clone twoGbMaxExtentFlat"
has splitclone "2 extent files cloned by the NAS plugin" && ok "2-extent disk cloned extent by extent" ||
    err "split clone not done by the plugin"
run splitcmp $client -q -L "$dist" cmp "$mnt/split.vmdk" "$mnt/split2.vmdk" &&
    ok "2-extent copy reads equal" || err "2-extent copy differs"
rm -f "$mnt"/split*.vmdk

# ---- vmfs: full copy ------------------------------------------------------------
run small $C create "$mnt/small.vmdk" monolithicFlat 128 && run smallfill $C -q fill "$mnt/small.vmdk" 4 ||
    err "create small source"
run full $C clone "$mnt/small.vmdk" "$mnt/full.vmdk" vmfs || err "clone to vmfs"
has full "CLONEFILE .*(full) done" && ok "vmfs (thick) clone is a full plugin copy" ||
    err "vmfs clone not a full plugin copy"
sync
if filefrag -v "$mnt/full-flat.vmdk" | grep -q shared; then
    err "full copy shares extents"
else
    ok "full copy shares no extent"
fi
run fullcmp $client -q -L "$dist" cmp "$mnt/small.vmdk" "$mnt/full.vmdk" && ok "full copy reads equal" ||
    err "full copy differs"

# ---- GUARDED, and no plugins -----------------------------------------------------
"$tool" -L "$dist" clonefile "$mnt/small-flat.vmdk" "$mnt/full-flat.vmdk" lazy guarded \
    >/dev/null 2>"$work/guard.log"
rc=$?
[ $rc -eq 1 ] && grep -q "exists" "$work/guard.log" && ok "GUARDED clone refuses an existing file" ||
    { err "GUARDED clone onto an existing file exited $rc"; cat "$work/guard.log"; }
mkdir -p "$work/nolib"
run noplug $client -L "$work/nolib" clone "$mnt/small.vmdk" "$mnt/lib.vmdk" monolithicFlat ||
    err "clone without plugins"
has noplug "no NAS plugin is loaded" && ok "without plugins the library copies (and says so)" ||
    err "no fallback line in the log"
filefrag -v "$mnt/lib-flat.vmdk" | grep -q shared && err "library copy shares extents" ||
    ok "library copy shares no extent"
run libcmp $client -q -L "$dist" cmp "$mnt/small.vmdk" "$mnt/lib.vmdk" && ok "library copy reads equal" ||
    err "library copy differs"

[ $fail -eq 0 ] && echo "PASS" || echo "FAILED"
exit $fail
