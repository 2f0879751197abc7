#!/bin/sh
# bench/plugin.sh - flat disk clones on an XFS (reflink) loop mount:
#
#   plugin clone     VixDiskLib_Clone monolithicFlat -> monolithicFlat with
#                    nas-localfs loaded (CLONEFILE LAZY = FICLONE)
#   plugin full      the same to vmfs (CLONEFILE full: copy_file_range, then
#                    unshare, so the data is really moved)
#   library copy     VixDiskLib_Clone with no plugin loaded (the engine reads
#                    and writes every block)
#   cp               cp --reflink=never of the -flat.vmdk file, then sync
#
# Usage:  [BUILD=build] [RUNS=3] sh bench/plugin.sh [SIZE_GIB...]   (default: 1 4)
#
# Needs root (loop device, mount), mkfs.xfs, and a build with the tests
# ($BUILD/tests/plugin/vdp_client).  Not a test: it prints times and ratios
# and skips (exit 77) with the reason when it cannot mount.  The source is
# written just before, so every method starts with it in the page cache;
# the library and plugin clones end with their data synced, cp is followed
# by sync.  Everything is synced before each method starts; the loop device
# uses direct I/O on its image when the kernel allows.  The loop device and mount are always removed.
set -u

BUILD=${BUILD:-build}
client=$BUILD/tests/plugin/vdp_client
dist=$BUILD/dist
sizes=${*:-1 4}
RUNS=${RUNS:-3}

skip() {
    echo "bench/plugin.sh: SKIP: $*"
    exit 77
}

[ -x "$client" ] || { echo "bench/plugin.sh: $client not found; build first (BUILD=$BUILD)"; exit 1; }
[ -f "$dist/lib64/plugins/libnas-localfs.so" ] || { echo "bench/plugin.sh: no plugin in $dist"; exit 1; }
[ "$(id -u)" = 0 ] || skip "needs root for the loop device and the mount"
for t in mkfs.xfs losetup mount umount mountpoint truncate; do
    command -v $t >/dev/null 2>&1 || skip "$t is not installed"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vdbench-plugin.XXXXXX") || exit 1
mnt=$work/mnt
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

max=0
for s in $sizes; do [ "$s" -gt "$max" ] && max=$s; done
img_gib=$((max * 2 + 4))
truncate -s ${img_gib}G "$work/xfs.img" || skip "cannot make a ${img_gib} GiB sparse image in $work"
mkfs.xfs -q -m reflink=1 "$work/xfs.img" >"$work/log" 2>&1 || skip "mkfs.xfs failed: $(cat "$work/log")"
# Direct I/O to the image: no second copy in the host's page cache, whose
# late write-back would land on whichever method runs next.
loop=$(losetup -f --show --direct-io=on "$work/xfs.img" 2>"$work/log") ||
    loop=$(losetup -f --show "$work/xfs.img" 2>"$work/log") ||
    { loop=; skip "losetup failed: $(cat "$work/log")"; }
mkdir "$mnt" "$work/nolib"

mount -t xfs "$loop" "$mnt" 2>"$work/log" || skip "cannot mount XFS: $(cat "$work/log")"

now() { date +%s.%N; }
secs() { sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a / b >= 0.1) printf "%.1fx", a / b; else if (b > 0) printf "%.4fx", a / b; else print "-" }'; }

# clone LIBDIR TYPE DST: time of VixDiskLib_Clone as the client measures it
clone() {
    sync
    sync
    if ! "$client" -q -L "$1" clone "$mnt/src.vmdk" "$mnt/$3" "$2" >"$work/out" 2>"$work/err"
    then
        cat "$work/err" >&2
        echo "-"
        return
    fi
    secs "$work/out"
}

# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf "%-6s %-32s %10s %10s %12s %8s\n" size method median min "vs plugin" "vs cp"
for g in $sizes; do
    mib=$((g * 1024))
    rm -f "$mnt"/*.vmdk
    "$client" -q -L "$work/nolib" create "$mnt/src.vmdk" monolithicFlat $mib 2>"$work/err" &&
        "$client" -q -L "$work/nolib" fill "$mnt/src.vmdk" 1 2>>"$work/err" ||
        { cat "$work/err"; exit 1; }
    a= b= c= d=
    # Methods take turns, RUNS rounds, so none always follows the fill.
    for r in $(seq "$RUNS"); do
        t=$(clone "$work/nolib" monolithicFlat lib.vmdk); c="$c $t"
        rm -f "$mnt"/lib*.vmdk
        sync
        sync
        t0=$(now)
        cp --reflink=never "$mnt/src-flat.vmdk" "$mnt/cp-flat.vmdk" && sync
        d="$d $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')"
        rm -f "$mnt/cp-flat.vmdk"
        t=$(clone "$dist" vmfs full.vmdk); b="$b $t"
        rm -f "$mnt"/full*.vmdk
        t=$(clone "$dist" monolithicFlat lazy.vmdk); a="$a $t"
        rm -f "$mnt"/lazy*.vmdk
    done
    # shellcheck disable=SC2086
    mp=$(median $a)
    # shellcheck disable=SC2086
    mc=$(median $d)
    for m in "plugin clone (FICLONE, lazy)|$a" "plugin full copy (vmfs)|$b" \
             "library copy (no plugin)|$c" "cp --reflink=never + sync|$d"; do
        name=${m%|*}
        # shellcheck disable=SC2086
        set -- ${m#*|}
        med=$(median "$@")
        min=$(printf '%s\n' "$@" | sort -g | head -1)
        printf "%-6s %-32s %10s %10s %12s %8s\n" "${g}GiB" "$name" "$med" "$min" \
            "$(ratio "$med" "$mp")" "$(ratio "$med" "$mc")"
    done
done
echo "(seconds; median and min of $RUNS runs; ratios of medians; warm page cache)"
