#!/bin/sh
# bench/net.sh - NBD read throughput over loopback, side by side:
#   nbdcopy (to null:) from `vddk serve`, from qemu-nbd and from nbdkit,
#   each in plain text and with X.509 TLS; and our library's remote read
#   (bench_net: QueryAllocatedBlocks + ReadAsync) from `vddk serve`.
#
#   BUILD=build BENCH_NET_SIZE=1G bench/net.sh
#
# The disk: a BENCH_NET_SIZE monolithicSparse VMDK, half of it random data
# (64 MiB runs every 128 MiB), the rest holes.  vddk serve and qemu-nbd
# serve that VMDK; nbdkit on Debian 12 (1.32) has no VMDK reader (its vddk
# plugin needs VMware's library, its qcow2dec filter came later), so it
# serves the same content as a sparse raw file with its file plugin - the
# cheapest thing an NBD server can do.  nbdcopy reads extents first, so
# every reader moves only the data; throughput is data bytes / wall time
# of the whole nbdcopy run, best of BENCH_RUNS (default 3).  The CPU
# seconds of the server and of nbdcopy in those runs are printed too: over
# TLS on a small machine nbdcopy's own decryption and system calls are
# the limit, and the last line says how far that lets any server go.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SIZE=${BENCH_NET_SIZE:-1G}
RUNS=${BENCH_RUNS:-3}

for tool in nbdcopy nbdinfo qemu-nbd qemu-img nbdkit certtool; do
    command -v $tool >/dev/null 2>&1 || { echo "net.sh: $tool is needed" >&2; exit 1; }
done
VDDK=$BUILD/tools/vddk/vddk
BNET=$BUILD/bench/bench_net
if [ ! -x "$VDDK" ] || [ ! -x "$BNET" ]; then
    echo "net.sh: building vddk and bench_net in $BUILD" >&2
    [ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" >/dev/null
    cmake --build "$BUILD" --target vddk bench_net >/dev/null
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-bench-net.XXXXXX")
PIDS=""
cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$W"

echo "net.sh: making a $SIZE sparse disk (half random data) in $W" >&2
mkdir -p ds pki
"$VDDK" create -s "$SIZE" ds/disk.vmdk >/dev/null
BYTES=$("$VDDK" info --json ds/disk.vmdk | sed -n 's/.*"capacity": *\([0-9]*\).*/\1/p' | head -n 1)
MiB=1048576
off=0 i=0
while [ $off -lt "$BYTES" ]; do
    n=$((64 * MiB))
    [ $((off + n)) -le "$BYTES" ] || n=$((BYTES - off))
    "$VDDK" fill -o $off -l $n --random --seed $i ds/disk.vmdk >/dev/null
    off=$((off + 128 * MiB))
    i=$((i + 1))
done
DATA=$("$VDDK" map ds/disk.vmdk | awk '$3 == "data" { t += $2 } END { print t + 0 }')
qemu-img convert -f vmdk -O raw ds/disk.vmdk disk.raw
cat ds/disk.vmdk disk.raw > /dev/null    # page cache warm for every server

# PKI for the TLS rounds.
certtool --generate-privkey --key-type=ecdsa --outfile pki/ca-key.pem 2>/dev/null
printf 'cn = bench CA\nca\ncert_signing_key\nexpiration_days = 2\n' > pki/ca.info
certtool --generate-self-signed --load-privkey pki/ca-key.pem --template pki/ca.info \
    --outfile pki/ca-cert.pem 2>/dev/null
certtool --generate-privkey --key-type=ecdsa --outfile pki/server-key.pem 2>/dev/null
printf 'cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n' > pki/server.info
certtool --generate-certificate --load-privkey pki/server-key.pem \
    --load-ca-certificate pki/ca-cert.pem --load-ca-privkey pki/ca-key.pem \
    --template pki/server.info --outfile pki/server-cert.pem 2>/dev/null
THUMB=$(certtool --fingerprint --hash sha1 --infile pki/server-cert.pem 2>/dev/null)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# up URI PID: wait until the server answers.
up() {
    i=0
    until nbdinfo --size "$1" >/dev/null 2>&1; do
        kill -0 "$2" 2>/dev/null || { echo "net.sh: a server exited" >&2; exit 1; }
        i=$((i + 1))
        [ $i -lt 300 ] || { echo "net.sh: a server did not start" >&2; exit 1; }
        sleep 0.1
    done
}

stop() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

now() { date +%s.%N; }
mbps() { echo "$1 $2 $DATA" | awk '{d = $2 - $1; if (d <= 0) d = 1e-9; printf "%.1f", $3 / d / 1e6}'; }
best() { echo "$1 $2" | awk '{print ($1 > $2) ? $1 : $2}'; }

# CPU seconds (user + system) a process has used so far.
cpu_of() { awk -v hz="$HZ" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
TIME=$(command -v /usr/bin/time 2>/dev/null || true)

cpu_file() { echo "$W/cpu.$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)"; }

# copy NAME URI SERVER_PID: best nbdcopy-to-null throughput.  The CPU
# seconds of the server and of nbdcopy in that best run go to
# $W/cpu.NAME ("server client"; client only with /usr/bin/time).
copy() {
    b=0
    for r in $(seq "$RUNS"); do
        c0=$(cpu_of "$3")
        t0=$(now)
        if [ -n "$TIME" ]; then
            "$TIME" -o "$W/time.out" -f "%U %S" nbdcopy "$2" null: ||
                { echo "net.sh: nbdcopy from $1 failed" >&2; exit 1; }
        else
            nbdcopy "$2" null: || { echo "net.sh: nbdcopy from $1 failed" >&2; exit 1; }
        fi
        t1=$(now)
        c1=$(cpu_of "$3")
        cc=$([ -n "$TIME" ] && awk 'END { printf "%.2f", $1 + $2 }' "$W/time.out" || echo "-")
        sc=$(echo "$c0 $c1" | awk '{ printf "%.2f", $2 - $1 }')
        v=$(mbps "$t0" "$t1")
        echo "  $1 run $r: $v MB/s (CPU seconds: server $sc, nbdcopy $cc)" >&2
        if [ "$(best "$v" "$b")" != "$b" ]; then
            b=$v
            echo "$sc $cc" > "$(cpu_file "$1")"
        fi
    done
    echo "$b"
}
cpu() { cat "$(cpu_file "$1")" 2>/dev/null || echo "- -"; }

# lib NAME ARGS...: best bench_net throughput.
lib() {
    name=$1
    shift
    b=0
    for r in $(seq "$RUNS"); do
        out=$("$BNET" "$@") || { echo "net.sh: bench_net ($name) failed" >&2; exit 1; }
        v=$(echo "$out" | sed -n 's/.*MB\/s=\([0-9.]*\).*/\1/p')
        echo "  $name run $r: $v MB/s" >&2
        b=$(best "$v" "$b")
    done
    echo "$b"
}

TLSQ="tls-certificates=$W/pki"

# ---- vddk serve ---------------------------------------------------------
"$VDDK" serve --datastore "ds=$W/ds" --readonly --bind 127.0.0.1 --port 0 -q 2>ours.log &
P1=$!
PIDS="$PIDS $P1"
i=0
until grep -q "listening on" ours.log 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 300 ] || { echo "net.sh: vddk serve did not start" >&2; exit 1; }
    sleep 0.1
done
PORT=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\)$/\1/p' ours.log | head -n 1)
[ -n "$PORT" ] || PORT=$(grep -o 'listening on [^ ]*' ours.log | sed 's/.*://')
up "nbd://127.0.0.1:$PORT/ds/disk.vmdk" "$P1"
echo "net.sh: plain" >&2
ours_plain=$(copy "vddk serve" "nbd://127.0.0.1:$PORT/ds/disk.vmdk" "$P1")
lib_plain=$(lib "library (nbd)" -p "$PORT" -m nbd "[ds] disk.vmdk")
stop "$P1"

"$VDDK" serve --datastore "ds=$W/ds" --readonly --bind 127.0.0.1 --port 0 -q --tls=require \
    --tls-cert pki/server-cert.pem --tls-key pki/server-key.pem 2>ours-tls.log &
P1=$!
PIDS="$PIDS $P1"
i=0
until grep -q "TLS " ours-tls.log 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 300 ] || { echo "net.sh: vddk serve did not start" >&2; exit 1; }
    sleep 0.1
done
sleep 0.1
PORT=$(grep -o 'listening on [^ ]*' ours-tls.log | sed 's/.*://')
up "nbds://127.0.0.1:$PORT/ds/disk.vmdk?$TLSQ" "$P1"
echo "net.sh: TLS" >&2
ours_tls=$(copy "vddk serve (TLS)" "nbds://127.0.0.1:$PORT/ds/disk.vmdk?$TLSQ" "$P1")
lib_tls=$(lib "library (nbdssl)" -p "$PORT" -m nbdssl -t "$THUMB" "[ds] disk.vmdk")
stop "$P1"

# ---- qemu-nbd (the same VMDK) -------------------------------------------
QP=$(free_port)
qemu-nbd -r -f vmdk -x disk -t -e 16 -b 127.0.0.1 -p "$QP" ds/disk.vmdk 2>qemu.log &
P2=$!
PIDS="$PIDS $P2"
up "nbd://127.0.0.1:$QP/disk" "$P2"
qemu_plain=$(copy "qemu-nbd" "nbd://127.0.0.1:$QP/disk" "$P2")
stop "$P2"
QP=$(free_port)
qemu-nbd -r -f vmdk -x disk -t -e 16 -b 127.0.0.1 -p "$QP" \
    --object "tls-creds-x509,id=tls0,dir=$W/pki,endpoint=server,verify-peer=off" --tls-creds tls0 \
    ds/disk.vmdk 2>qemu-tls.log &
P2=$!
PIDS="$PIDS $P2"
up "nbds://127.0.0.1:$QP/disk?$TLSQ" "$P2"
qemu_tls=$(copy "qemu-nbd (TLS)" "nbds://127.0.0.1:$QP/disk?$TLSQ" "$P2")
stop "$P2"

# ---- nbdkit (file plugin, the same content as raw) ----------------------
KP=$(free_port)
nbdkit -f -r -i 127.0.0.1 -p "$KP" file disk.raw 2>kit.log &
P3=$!
PIDS="$PIDS $P3"
up "nbd://127.0.0.1:$KP/" "$P3"
kit_plain=$(copy "nbdkit" "nbd://127.0.0.1:$KP/" "$P3")
stop "$P3"
KP=$(free_port)
nbdkit -f -r -i 127.0.0.1 -p "$KP" --tls=require --tls-certificates="$W/pki" file disk.raw \
    2>kit-tls.log &
P3=$!
PIDS="$PIDS $P3"
up "nbds://127.0.0.1:$KP/?$TLSQ" "$P3"
kit_tls=$(copy "nbdkit (TLS)" "nbds://127.0.0.1:$KP/?$TLSQ" "$P3")
stop "$P3"

ratio() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.2fx", $1 / $2; else print "n/a" }'; }
echo "disk: $BYTES bytes, $DATA bytes of data; nbdcopy to null:, best of $RUNS, MB/s of data"
printf '%-34s %10s %10s\n' "server" "plain" "TLS"
printf '%-34s %10s %10s\n' "vddk serve (VMDK)" "$ours_plain" "$ours_tls"
printf '%-34s %10s %10s\n' "qemu-nbd (VMDK)" "$qemu_plain" "$qemu_tls"
printf '%-34s %10s %10s\n' "nbdkit file plugin (raw copy)" "$kit_plain" "$kit_tls"
printf '%-34s %10s %10s\n' "library ReadAsync <- vddk serve" "$lib_plain" "$lib_tls"
echo "vddk serve / qemu-nbd:  plain $(ratio "$ours_plain" "$qemu_plain"), TLS $(ratio "$ours_tls" "$qemu_tls")"
echo "vddk serve / nbdkit:    plain $(ratio "$ours_plain" "$kit_plain"), TLS $(ratio "$ours_tls" "$kit_tls")"
echo "library / nbdcopy (both from vddk serve): plain $(ratio "$lib_plain" "$ours_plain"), TLS $(ratio "$lib_tls" "$ours_tls")"
echo
echo "CPU seconds in each best run (server / nbdcopy):"
printf '%-34s %14s %14s\n' "server" "plain" "TLS"
for n in "vddk serve" "qemu-nbd" "nbdkit"; do
    set -- $(cpu "$n") $(cpu "$n (TLS)")
    printf '%-34s %6s / %-5s %6s / %-5s\n' "$n" "$1" "$2" "$3" "$4"
done
# What nbdcopy alone allows: its CPU seconds for the data, spread over
# every core, even if the server cost nothing.
NCPU=$(nproc 2>/dev/null || echo 1)
set -- $(cpu "nbdkit (TLS)")
if [ "${2:--}" != - ]; then
    echo "$2 $NCPU $DATA $kit_tls" | awk '{ c = $3 / ($1 / $2) / 1e6;
        printf "TLS ceiling from nbdcopy alone: %.0f MB/s on %d cores (%.2fx nbdkit TLS)\n",
        c, $2, ($4 > 0 ? c / $4 : 0) }'
fi
