#!/bin/sh
# bench/nfc.sh - the NFC transport (nbd) on loopback, side by side with the
# library's own NBD transport.
#
#   BUILD=build BENCH_SIZE=1G bench/nfc.sh
#
# A BENCH_SIZE vmfs (flat) disk of random data sits on vcsim's datastore as
# the VM's disk; tickets come from vcsim, tests/nfc/nfcd serves NFC (with
# --quiet: no line per frame) and `vddk serve` serves the same file over NBD.
# Each timed run is the whole command, start to exit, its output made
# durable (sync of the output file); runs are paired and medians printed.
#   1. read:  vixnet aread depth 16, 1 MiB requests, NFC nbd vs our NBD;
#      target NFC >= 0.8x NBD.
#   2. depth: NFC ReadAsync of 64 KiB requests, depth 16 vs depth 1;
#      target >= 2x.  Both sides are ours and the question is the
#      transport's pipelining, so the output goes to tmpfs (/dev/shm):
#      writing 1 GiB back to disk would otherwise take most of the time.
#   3. SkipZ: a restore (WriteAsync of the whole disk) of half zeros
#      (alternating 1 MiB runs), raw vs SkipZ, bytes the library sent
#      (its close log line); target SkipZ < 55% of raw.
# vixDiskLib.nfcAio.Session.BufSizeIn64KB is 16 (1 MiB fragments, the
# usual tuning) for 1 and 3, and the default (64 KiB) for 2.
#
# BENCH_RTT_US adds that many microseconds to every round trip of the NFC
# and NBD data connections (tests/net/lagproxy, half each way; the vim25
# calls for tickets go straight to vcsim), as a network between a backup
# proxy and ESXi would.  On plain loopback a reply comes back at once, so
# depth has little latency to hide and both depths are limited by the CPU.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SIZE=${BENCH_SIZE:-1G}
RTT_US=${BENCH_RTT_US:-0}
LAGPROXY=$BUILD/tests/net/lagproxy
RUNS=${BENCH_RUNS:-5}
VIXNET=$BUILD/tests/net/vixnet
VDDK=$BUILD/tools/vddk/vddk
NFCD=$BUILD/tests/nfc/nfcd
VCSIM=$BUILD/tests/vsphere/vcsim-bin
VSPHERELIB=$ROOT/tests/vsphere/lib.sh
export VCSIM VSPHERELIB
for f in "$VIXNET" "$VDDK" "$NFCD"; do
    [ -x "$f" ] || { echo "nfc.sh: build first (missing $f)" >&2; exit 1; }
done
. "$VSPHERELIB"
. "$ROOT/tests/nfc/lib.sh"
. "$ROOT/bench/lag.sh"
W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-bench.XXXXXX")
PIDS=
trap 'lag_stop; for p in $PIDS; do kill $p 2>/dev/null || true; done; nfcd_stop; vcsim_stop; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

nfcd_cert "$W/pki"
mkdir "$W/tickets"
vcsim_start -user u -password p -nfc-cert "$W/pki/cert.pem" -nfc-tickets "$W/tickets" || exit 1
vcsim_cmd "poweroff $VCSIM_VM" >/dev/null
VMDIR=$(dirname "$(vcsim_path_local "$VCSIM_DISK")")
REL="[$VCSIM_DS] $(basename "$VMDIR")"
"$VDDK" create -t vmfs -s "$SIZE" "$VMDIR/b.vmdk" >/dev/null
head -c "$SIZE" /dev/urandom >"$VMDIR/b-flat.vmdk"
BYTES=$(stat -c %s "$VMDIR/b-flat.vmdk")
vcsim_cmd "setdisk $VCSIM_VM $VCSIM_DISKKEY $REL/b.vmdk" >/dev/null

NFCD_TICKET_DIR=$W/tickets NFCD_CERT_DIR=$W/pki nfcd_start --quiet ||
    { echo "nfc.sh: nfcd did not start" >&2; exit 1; }
"$VDDK" serve --datastore "ds=$VMDIR" --readonly --bind 127.0.0.1 --port 0 -q 2>"$W/serve.log" &
PIDS="$PIDS $!"
i=0
until grep -q "listening on" "$W/serve.log"; do
    i=$((i + 1)); [ $i -lt 300 ] || { echo "nfc.sh: a server did not start" >&2; exit 1; }
    sleep 0.1
done
lag_relay "$RTT_US" "$NFCD_PORT" "$W" || exit 1
NPORT=$LAG_PORT
lag_relay "$RTT_US" "$(grep -o 'listening on [^ ]*' "$W/serve.log" | head -n 1 | sed 's/.*://')" \
    "$W" || exit 1
SPORT=$LAG_PORT
printf 'vixDiskLib.nfcAio.Session.BufSizeIn64KB = 16\n' >"$W/big.cfg"
export VIXNET_PASSWORD=p
VX="$VIXNET -s $VCSIM_HOST -p $VCSIM_PORT -u u -t $VCSIM_SHA1 -v moref=$VCSIM_VM -N $NPORT -m nbd"
NBD="$VIXNET -s 127.0.0.1 -p $SPORT -m nbd"

OUT=$W/out
t() {   # t NAME COMMAND...: time the command plus a sync of $OUT
    n=$1
    shift
    rm -f "$OUT"
    s=$(date +%s.%N)
    "$@" >/dev/null
    sync "$OUT"
    e=$(date +%s.%N)
    cmp -s "$OUT" "$VMDIR/b-flat.vmdk" || { echo "nfc.sh: $n read wrong data" >&2; exit 1; }
    awk -v s="$s" -v e="$e" 'BEGIN { print e - s }' >>"$W/times.$n"
}
cat "$VMDIR/b-flat.vmdk" >/dev/null   # page cache warm for both servers
sync                                   # no earlier writes flushed inside a timed run
# One untimed run of each first: the first 1 GiB written to this file
# system pays for the writeback it starts.
# shellcheck disable=SC2086
$VX -c "$W/big.cfg" aread "$REL/b.vmdk" "$W/out" 16 >/dev/null
# shellcheck disable=SC2086
$NBD aread "[ds] b.vmdk" "$W/out" 16 >/dev/null
sync
for i in $(seq "$RUNS"); do
    # shellcheck disable=SC2086
    t nfc $VX -c "$W/big.cfg" aread "$REL/b.vmdk" "$W/out" 16
    # shellcheck disable=SC2086
    t nbd $NBD aread "[ds] b.vmdk" "$W/out" 16
done
rm -f "$OUT"
OUT=$(mktemp /dev/shm/openvddk-bench.XXXXXX)
trap 'rm -f "$OUT"; lag_stop; for p in $PIDS; do kill $p 2>/dev/null || true; done; nfcd_stop; vcsim_stop; rm -rf "$W"' EXIT
for i in $(seq "$RUNS"); do
    # shellcheck disable=SC2086
    t d1 $VX -b 128 aread "$REL/b.vmdk" "$OUT" 1
    # shellcheck disable=SC2086
    t d16 $VX -b 128 aread "$REL/b.vmdk" "$OUT" 16
done
rm -f "$OUT"

# A restore of half zeros, raw and SkipZ: bytes the library sent.
python3 - "$W/half.raw" "$BYTES" <<'EOF'
import os, sys
M = 1 << 20
with open(sys.argv[1], "wb") as f:
    for i in range(int(sys.argv[2]) // M):
        f.write(os.urandom(M) if i % 2 == 0 else bytes(M))
EOF
sent() {   # sent CODEC: bytes sent by a whole-disk write with that codec
    # shellcheck disable=SC2086
    VIXNET_LOG=1 $VX -c "$W/big.cfg" -z "$1" write "$REL/b.vmdk" "$W/half.raw" 2>"$W/wlog" ||
        { cat "$W/wlog" >&2; exit 1; }
    sed -n 's/.*NFC connection .* closed: \([0-9]*\) bytes sent.*/\1/p' "$W/wlog" | tail -n 1
}
RAW=$(sent none)
SKZ=$(sent skipz)
cmp -s "$W/half.raw" "$VMDIR/b-flat.vmdk" || { echo "nfc.sh: restore wrote wrong data" >&2; exit 1; }

med() { sort -n "$W/times.$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
N=$(med nfc); B=$(med nbd); D1=$(med d1); D16=$(med d16)
MB=$((BYTES / 1048576))
r() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf 'NFC (nbd) on loopback, %s MiB (medians of %s paired runs), round trip +%s us\n' \
    "$MB" "$RUNS" "$RTT_US"
printf '  %-40s %8.2f s  %7.0f MiB/s\n' "NFC nbd, ReadAsync 1 MiB x 16" "$N" "$(r "$MB" "$N")"
printf '  %-40s %8.2f s  %7.0f MiB/s\n' "our NBD (vddk serve), same" "$B" "$(r "$MB" "$B")"
printf '  ratio NFC / NBD:            %.2fx (target >= 0.8x)\n' "$(r "$B" "$N")"
printf '  %-40s %8.2f s  %7.0f MiB/s\n' "NFC, 64 KiB requests, depth 1" "$D1" "$(r "$MB" "$D1")"
printf '  %-40s %8.2f s  %7.0f MiB/s\n' "NFC, 64 KiB requests, depth 16" "$D16" "$(r "$MB" "$D16")"
printf '  ratio depth 16 / depth 1:   %.2fx (target >= 2x)\n' "$(r "$D1" "$D16")"
printf '  restore of half zeros: raw sent %s bytes, SkipZ %s bytes: %s%% (target < 55%%)\n' \
    "$RAW" "$SKZ" "$(awk -v a="$SKZ" -v b="$RAW" 'BEGIN { printf "%.1f", 100 * a / b }')"
