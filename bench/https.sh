#!/bin/sh
# bench/https.sh - reading a vSphere disk over the https transport from
# govmomi's simulator (vcsim) into a local file, side by side with curl.
#
#   BUILD=build BENCH_SIZE=1G bench/https.sh
#
# A BENCH_SIZE vmfs (flat) disk of random data is placed on vcsim's
# datastore and made the VM's disk.  Each run is the whole command, start
# to exit, its output made durable (sync of the output file):
#   curl       one GET of the -flat.vmdk file (the peer: the best a single
#              HTTP stream does)
#   vddk 1x    libvixDiskLib (tests/net/vixnet `read`: ConnectEx, Open,
#              Read of 1 MiB after 1 MiB) with openvddk.https.Parallel = 1:
#              one range request at a time
#   vddk async libvixDiskLib ReadAsync, 16 requests of 1 MiB in flight
#              (vixnet `aread`), default Parallel
#   local      cat of the same flat file into the output, no network: what
#              writing and syncing the bytes costs on this disk, a floor
#              under every time above
# Runs are paired (curl, vddk 1x, vddk async, local) x BENCH_RUNS (3); medians and
# the ratios are printed.
#
# On loopback there is no round trip to hide: one range at a time and one
# GET are limited by the CPU (TLS on both ends, two cores shared with the
# simulator), so pipelining can only use the second core.  BENCH_RTT_US
# puts tests/net/lagproxy between the clients and vcsim, adding that many
# microseconds to every round trip (half each way) as a network would; all
# three clients go through it.  With TMPDIR=/dev/shm the outputs live in
# memory and the sync costs nothing, which leaves the transports alone.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SIZE=${BENCH_SIZE:-1G}
RUNS=${BENCH_RUNS:-3}
RTT_US=${BENCH_RTT_US:-0}
VIXNET=$BUILD/tests/net/vixnet
LAGPROXY=$BUILD/tests/net/lagproxy
VDDK=$BUILD/tools/vddk/vddk
VCSIM=$BUILD/tests/vsphere/vcsim-bin
VSPHERELIB=$ROOT/tests/vsphere/lib.sh
export VCSIM VSPHERELIB
for f in "$VIXNET" "$VDDK"; do
    [ -x "$f" ] || { echo "https.sh: build first (missing $f)" >&2; exit 1; }
done
. "$VSPHERELIB"
. "$ROOT/bench/lag.sh"
W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-bench.XXXXXX")
trap 'lag_stop; vcsim_stop; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM
vcsim_start -user u -password p || exit 1
VMDIR=$(dirname "$(vcsim_path_local "$VCSIM_DISK")")
REL="[$VCSIM_DS] $(basename "$VMDIR")"
"$VDDK" create -t vmfs -s "$SIZE" "$VMDIR/b.vmdk" >/dev/null
head -c "$SIZE" /dev/urandom >"$VMDIR/b-flat.vmdk"
BYTES=$(stat -c %s "$VMDIR/b-flat.vmdk")
vcsim_cmd "setdisk $VCSIM_VM $VCSIM_DISKKEY $REL/b.vmdk" >/dev/null
printf 'openvddk.https.Parallel = "1"\n' >"$W/one.cfg"
lag_relay "$RTT_US" "$VCSIM_PORT" "$W" || exit 1
PORT=$LAG_PORT
export VIXNET_PASSWORD=p
VX="$VIXNET -s $VCSIM_HOST -p $PORT -u u -t $VCSIM_SHA1 -v moref=$VCSIM_VM"
URL="https://$VCSIM_HOST:$PORT/folder/$(basename "$VMDIR")/b-flat.vmdk?dcPath=$VCSIM_DC&dsName=$VCSIM_DS"

t() {   # t NAME COMMAND...: time the command plus a sync of $W/out
    n=$1
    shift
    rm -f "$W/out"
    s=$(date +%s.%N)
    "$@" >/dev/null
    sync "$W/out"
    e=$(date +%s.%N)
    cmp -s -n "$BYTES" "$W/out" "$VMDIR/b-flat.vmdk" || { echo "https.sh: $n read wrong data" >&2; exit 1; }
    awk -v s="$s" -v e="$e" 'BEGIN { print e - s }' >>"$W/times.$n"
}
cat "$VMDIR/b-flat.vmdk" >/dev/null   # page cache warm on the server side
for i in $(seq "$RUNS"); do
    t curl curl -skf -b vmware_soap_session=x -o "$W/out" "$URL"
    # shellcheck disable=SC2086
    t one $VX -c "$W/one.cfg" read "$REL/b.vmdk" "$W/out"
    # shellcheck disable=SC2086
    t async $VX aread "$REL/b.vmdk" "$W/out" 16
    t local sh -c 'cat "$1" >"$2"' sh "$VMDIR/b-flat.vmdk" "$W/out"
done
med() { sort -n "$W/times.$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
C=$(med curl); O=$(med one); A=$(med async); L=$(med local)
MB=$((BYTES / 1048576))
r() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf 'https read of %s MiB from vcsim (medians of %s paired runs), round trip +%s us\n' \
    "$MB" "$RUNS" "$RTT_US"
printf '  %-28s %8.2f s  %7.0f MiB/s\n' "curl, one GET" "$C" "$(r "$MB" "$C")"
printf '  %-28s %8.2f s  %7.0f MiB/s\n' "vddk, one range at a time" "$O" "$(r "$MB" "$O")"
printf '  %-28s %8.2f s  %7.0f MiB/s\n' "vddk, ReadAsync depth 16" "$A" "$(r "$MB" "$A")"
printf '  %-28s %8.2f s  %7.0f MiB/s\n' "local copy + sync (floor)" "$L" "$(r "$MB" "$L")"
printf '  ratio vddk async / curl:  %.2fx (target >= 0.8x)\n' "$(r "$C" "$A")"
printf '  ratio async / one range:  %.2fx (target >= 2x)\n' "$(r "$O" "$A")"
