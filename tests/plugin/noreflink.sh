#!/bin/sh
# noreflink.sh - the plugin clone where the file system cannot share
# blocks: ext4 on a loop device, and tmpfs.
#
#   sh noreflink.sh VDP_CLIENT VDP_TOOL DIST_DIR
#
# On each: a 256 MiB monolithicFlat clone through the public API is done
# by nas-localfs as a full copy (its lazy dry run is refused, the library
# asks for a full clone), reads equal and shares nothing; a vmfsThin copy
# of a thin disk stays thin; STATX reports unique = allocated;
# SpaceNeededForClone counts a full copy (thick: the whole size; thin:
# what the source has allocated); a clone from ext4 to tmpfs (two
# datastores) is a full plugin copy.  Needs root
# for the mounts; exits 77 (skip) saying why when that is impossible.
# Mounts and the loop device are always removed (trap).
set -u

client=$1
tool=$2
dist=$3

skip() {
    echo "SKIP: $*"
    exit 77
}

for b in "$client" "$tool"; do
    [ -x "$b" ] || { echo "FAIL: $b is not built"; exit 1; }
done
[ -f "$dist/lib64/plugins/libnas-localfs.so" ] ||
    { echo "FAIL: $dist/lib64/plugins/libnas-localfs.so is not built"; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root to attach a loop device and mount (uid $(id -u))"
for t in mkfs.ext4 losetup mount umount mountpoint filefrag truncate; do
    command -v $t >/dev/null 2>&1 || skip "$t is not installed"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vdplugin-noreflink.XXXXXX") || exit 1
loop=
cleanup() {
    for m in "$work/ext4" "$work/tmpfs"; do
        if mountpoint -q "$m" 2>/dev/null; then
            umount "$m" 2>/dev/null || umount -l "$m"
        fi
    done
    [ -n "$loop" ] && losetup -d "$loop"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

mkdir "$work/ext4" "$work/tmpfs"
truncate -s 2G "$work/ext4.img" || skip "cannot make a 2 GiB sparse image in $work"
mkfs.ext4 -q -F "$work/ext4.img" >"$work/log" 2>&1 || skip "mkfs.ext4 failed: $(cat "$work/log")"
loop=$(losetup -f --show "$work/ext4.img" 2>"$work/log") || { loop=; skip "losetup failed: $(cat "$work/log")"; }
mount -t ext4 "$loop" "$work/ext4" 2>"$work/log" || skip "cannot mount ext4 from $loop: $(cat "$work/log")"
mount -t tmpfs -o size=1g vdplugin "$work/tmpfs" 2>"$work/log" ||
    skip "cannot mount tmpfs: $(cat "$work/log")"

fail=0
ok() { echo "ok   $*"; }
err() {
    echo "FAIL $*"
    fail=1
}
run() {
    name=$1
    shift
    "$@" >"$work/$name.out" 2>"$work/$name.log"
    rc=$?
    [ $rc -eq 0 ] || { echo "  ($name exited $rc)"; tail -20 "$work/$name.log" | sed 's/^/    /'; }
    return $rc
}
has() { grep -q -- "$2" "$work/$1.log"; }
MiB=1048576
C="$client -L $dist"

for fs in ext4 tmpfs; do
    d=$work/$fs
    echo "--- $fs ($d)"
    run create $C create "$d/src.vmdk" monolithicFlat 256 || err "$fs: create"
    run fill $C -q fill "$d/src.vmdk" 2 || err "$fs: fill"
    run space $C space "$d/src.vmdk" monolithicFlat || err "$fs: SpaceNeededForClone"
    sp=$(sed -n 's/^space=//p' "$work/space.out")
    [ -n "$sp" ] && [ "$sp" -ge $((256 * MiB)) ] && [ "$sp" -lt $((257 * MiB)) ] &&
        has space "would clone its 1 extent file (full)" &&
        ok "$fs: SpaceNeededForClone counts a full plugin copy ($sp bytes)" ||
        err "$fs: SpaceNeededForClone said ${sp:-nothing}"
    run clone $C clone "$d/src.vmdk" "$d/dst.vmdk" monolithicFlat || err "$fs: clone"
    cat "$work/clone.out"
    if has clone "cannot clone .* lazily" && has clone "CLONEFILE .*(full) done" &&
        has clone "1 extent file cloned by the NAS plugin"; then
        ok "$fs: lazy clone refused, full plugin copy done"
    else
        err "$fs: clone was not a full plugin copy"
        grep -i "clone\|plugin" "$work/clone.log" | head -20
    fi
    if has clone "copy_file_range not available"; then
        ok "$fs: copied through read/write (copy_file_range unavailable)"
    else
        ok "$fs: copied with copy_file_range"
    fi
    run cmp $client -q -L "$dist" cmp "$d/src.vmdk" "$d/dst.vmdk" && ok "$fs: copy reads equal" ||
        err "$fs: copy differs"
    if [ $fs = ext4 ]; then
        filefrag -v "$d/dst-flat.vmdk" | grep -q shared && err "$fs: shared extents" ||
            ok "$fs: no shared extents"
    fi
    line=$("$tool" -L "$dist" statx "$d/dst-flat.vmdk" 2>"$work/statx.log")
    echo "  STATX copy: $line"
    a=$(echo "$line" | sed -n 's/.*allocated=\([0-9]*\).*/\1/p')
    u=$(echo "$line" | sed -n 's/.*unique=\([0-9]*\).*/\1/p')
    [ -n "$a" ] && [ "$a" = "$u" ] && [ "$a" -ge $((256 * MiB)) ] &&
        ok "$fs: STATX unique = allocated (nothing shared), copy thick" || err "$fs: STATX $line"

    # A thin disk with 2 MiB of data stays thin as vmfsThin.
    run thin $C create "$d/thin.vmdk" vmfsThin 256 || err "$fs: create thin"
    run thinw $C -q write "$d/thin.vmdk" 100 2 5 || err "$fs: write thin"
    run thinspace $C space "$d/thin.vmdk" vmfsThin || err "$fs: SpaceNeededForClone thin"
    sp=$(sed -n 's/^space=//p' "$work/thinspace.out")
    [ -n "$sp" ] && [ "$sp" -ge $((2 * MiB)) ] && [ "$sp" -lt $((16 * MiB)) ] &&
        ok "$fs: SpaceNeededForClone counts what a thin copy allocates ($sp bytes)" ||
        err "$fs: SpaceNeededForClone thin said ${sp:-nothing}"
    run thinclone $C clone "$d/thin.vmdk" "$d/thin2.vmdk" vmfsThin || err "$fs: clone thin"
    has thinclone "full, skipping zeroes" && ok "$fs: thin clone asked with SKIPZEROES" ||
        err "$fs: thin clone flags"
    run thincmp $client -q -L "$dist" cmp "$d/thin.vmdk" "$d/thin2.vmdk" && ok "$fs: thin copy equal" ||
        err "$fs: thin copy differs"
    blocks=$(stat -c %b "$d/thin2-flat.vmdk")
    [ "$((blocks * 512))" -lt $((16 * MiB)) ] && ok "$fs: thin copy stays thin ($((blocks * 512)) bytes)" ||
        err "$fs: thin copy has $((blocks * 512)) bytes allocated"
    rm -f "$d"/*.vmdk
done

# Across datastores: ext4 -> tmpfs.  The plugin is told the source's
# datastore; no lazy clone is possible between two file systems, so the
# copy is a full one, done by the plugin all the same.
echo "--- ext4 -> tmpfs"
run xcreate $C create "$work/ext4/x.vmdk" monolithicFlat 64 && run xfill $C -q fill "$work/ext4/x.vmdk" 7 ||
    err "cross: create the source"
run xclone $C clone "$work/ext4/x.vmdk" "$work/tmpfs/x.vmdk" monolithicFlat || err "cross: clone"
if has xclone "CLONEFILE .*(full) done" && has xclone "1 extent file cloned by the NAS plugin"; then
    ok "ext4 -> tmpfs: full plugin copy across datastores"
else
    err "ext4 -> tmpfs: not a plugin copy"
    grep -i "clone\|plugin" "$work/xclone.log" | head -20
fi
run xcmp $client -q -L "$dist" cmp "$work/ext4/x.vmdk" "$work/tmpfs/x.vmdk" &&
    ok "ext4 -> tmpfs: copy reads equal" || err "ext4 -> tmpfs: copy differs"

[ $fail -eq 0 ] && echo "PASS" || echo "FAILED"
exit $fail
