#!/bin/sh
# bench/backup.sh - `vddk backup` of a VM over the https transport from
# govmomi's simulator (vcsim), side by side with curl fetching the disk's
# flat file.
#
#   BUILD=build BENCH_SIZE=1G BENCH_RUNS=3 bench/backup.sh
#
# The VM's disk is a BENCH_SIZE vmfs (flat) disk, half full: alternating
# 1 MiB runs of random data and zeros.  Each run is the whole command,
# start to exit, its output made durable:
#   curl     one GET of the -flat.vmdk file into a local file, then sync
#   backup   `vddk backup --transport https`: snapshot, read, hash every
#            1 MiB block and the whole disk, write a compressed
#            (streamOptimized) set with its manifest (fsync'ed), remove the
#            snapshot
#   sparse   the same with --sparse (no compression)
# Runs are paired (curl, backup, sparse) x BENCH_RUNS; medians and ratios
# are printed.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SIZE=${BENCH_SIZE:-1G}
RUNS=${BENCH_RUNS:-3}
VDDK=$BUILD/tools/vddk/vddk
VCSIM=$BUILD/tests/vsphere/vcsim-bin
VSPHERELIB=$ROOT/tests/vsphere/lib.sh
export VCSIM VSPHERELIB
[ -x "$VDDK" ] || { echo "backup.sh: build first (missing $VDDK)" >&2; exit 1; }
. "$VSPHERELIB"
W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-bench.XXXXXX")
trap 'vcsim_stop; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM
vcsim_start -user u -password p || exit 1
VMDIR=$(dirname "$(vcsim_path_local "$VCSIM_DISK")")
REL="[$VCSIM_DS] $(basename "$VMDIR")"
"$VDDK" create -t vmfs -s "$SIZE" "$VMDIR/b.vmdk" >/dev/null
python3 - "$VMDIR/b-flat.vmdk" <<'EOF'
import os, sys
size = os.path.getsize(sys.argv[1])
with open(sys.argv[1], "r+b") as f:
    for off in range(0, size, 2 << 20):
        f.seek(off)
        f.write(os.urandom(min(1 << 20, size - off)))
EOF
BYTES=$(stat -c %s "$VMDIR/b-flat.vmdk")
KB=$((BYTES / 1024))
vcsim_cmd "setdisk $VCSIM_VM $VCSIM_DISKKEY $REL/b.vmdk capkb=$KB" >/dev/null
export VDDK_PASSWORD=p
CONN="--server $VCSIM_SERVER --user u --thumbprint $VCSIM_SHA1"
URL="https://$VCSIM_SERVER/folder/$(basename "$VMDIR")/b-flat.vmdk?dcPath=$VCSIM_DC&dsName=$VCSIM_DS"
WANT=$(sha256sum "$VMDIR/b-flat.vmdk" | cut -d' ' -f1)

t() {   # t NAME COMMAND...: time the command (it makes its output durable)
    n=$1
    shift
    rm -rf "$W/out"
    s=$(date +%s.%N)
    "$@" >/dev/null
    e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" 'BEGIN { print e - s }' >>"$W/times.$n"
}
curl_sync() { curl -skf -b vmware_soap_session=x -o "$W/out" "$URL" && sync "$W/out"; }
# shellcheck disable=SC2086
backup() { "$VDDK" backup -q --transport https $CONN --vm "$VCSIM_VM" "$@" "$W/out"; }
check() {  # the set's manifest holds the disk's SHA-256
    grep -q "\"sha256\": \"$WANT\"" "$W/out/manifest.json" ||
        { echo "backup.sh: $1: the set's SHA-256 is not the disk's" >&2; exit 1; }
}
cat "$VMDIR/b-flat.vmdk" >/dev/null   # page cache warm on the server side
for i in $(seq "$RUNS"); do
    t curl curl_sync
    cmp -s "$W/out" "$VMDIR/b-flat.vmdk" || { echo "backup.sh: curl got wrong data" >&2; exit 1; }
    t backup backup
    check backup
    STREAM=$(du -k -c "$W/out"/*/*.vmdk | tail -1 | cut -f1)
    t sparse backup --sparse
    check sparse
done
med() { sort -n "$W/times.$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
C=$(med curl); B=$(med backup); P=$(med sparse)
MB=$((BYTES / 1048576))
r() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf 'backup of a %s MiB disk, half full, over https from vcsim (medians of %s paired runs, %s cores)\n' \
    "$MB" "$RUNS" "$(nproc)"
printf '  %-36s %8.2f s  %7.0f MiB/s\n' "curl, one GET of the flat file" "$C" "$(r "$MB" "$C")"
printf '  %-36s %8.2f s  %7.0f MiB/s  (set: %s KiB)\n' "vddk backup (streamOptimized)" "$B" \
    "$(r "$MB" "$B")" "$STREAM"
printf '  %-36s %8.2f s  %7.0f MiB/s\n' "vddk backup --sparse" "$P" "$(r "$MB" "$P")"
printf '  ratio backup / curl:         %.2fx (target >= 0.8x)\n' "$(r "$C" "$B")"
printf '  ratio backup --sparse / curl: %.2fx\n' "$(r "$C" "$P")"
