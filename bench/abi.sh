#!/bin/sh
# bench/abi.sh - the public libvixDiskLib ABI (bench_abi) against qemu-img
# bench: InitEx/Exit and Open/GetInfo/Close cost, then 4 KiB reads with 32
# requests in flight on a fully allocated monolithicSparse disk.
#
#   BUILD=build BENCH_SIZE=1G ABI_COUNT=262144 ABI_RUNS=3 bench/abi.sh
#
# ABI_DISK=path reuses an existing disk (bench/run.sh passes its own);
# otherwise a BENCH_SIZE disk of random data is made as run.sh makes it
# (raw from /dev/urandom, qemu-img convert -o subformat=monolithicSparse) in
# a mktemp directory that is removed on exit.  Builds bench_abi in $BUILD.
#
# qemu-img 7.2 `bench` has no random mode: request i reads offset
# (-o OFFSET) + i * STEP modulo the image size (STEP = -S, default the
# request size).  So three read patterns are compared:
#   sequential  STEP 4096 on both sides (bench_abi -t seq)
#   strided     STEP = an odd number of 4 KiB blocks near 0.618 * disk, which
#               visits every block once per pass in a scattered order; both
#               sides read exactly the same offsets (bench_abi -t stride)
#   random      bench_abi's uniform random offsets (splitmix64, fixed seed)
#               against qemu's strided run, its closest equivalent
# Each figure is the best of ABI_RUNS runs of ABI_COUNT reads; the page cache
# is warm and both sides use it (qemu-img bench default cache, aio=threads).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SIZE=${BENCH_SIZE:-1G}
COUNT=${ABI_COUNT:-262144}
RUNS=${ABI_RUNS:-3}
ITERS=${ABI_ITERS:-1000}
DEPTH=32
REQ=4096

for tool in qemu-img cmake awk; do
    command -v $tool >/dev/null 2>&1 || { echo "abi.sh: $tool is needed" >&2; exit 1; }
done

[ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" >/dev/null
cmake --build "$BUILD" --target bench_abi >/dev/null
BENCH=$BUILD/bench/bench_abi

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-abi.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

if [ -n "${ABI_DISK:-}" ]; then
    DISK=$ABI_DISK
else
    echo "abi.sh: making a $SIZE random monolithicSparse disk in $W" >&2
    head -c "$SIZE" /dev/urandom > "$W/src.raw"
    qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$W/src.raw" "$W/disk.vmdk"
    rm -f "$W/src.raw"
    DISK=$W/disk.vmdk
fi
cat "$DISK" > /dev/null     # page cache warm for both readers

BYTES=$(qemu-img info -f vmdk "$DISK" | sed -n 's/^virtual size:.*(\([0-9]*\) bytes).*/\1/p')
[ -n "$BYTES" ] || { echo "abi.sh: cannot read the size of $DISK" >&2; exit 1; }
STEP=$(echo "$BYTES $REQ" | awk '{ n = int($1 / $2); k = int(n * 0.6180339887);
                                   if (k % 2 == 0) k++; if (k >= n) k = 1; printf "%d", k * $2 }')

# Prints the value of KEY=... from the line of bench_abi output named TEST.
field() { sed -n "s/^$1:.* $2=\([0-9.]*\).*/\1/p"; }
max() { echo "$1 $2" | awk '{ print ($1 > $2) ? $1 : $2 }'; }

out=$("$BENCH" -t init,open -n "$ITERS" "$DISK")
init_us=$(echo "$out" | field init mean_us)
open_us=$(echo "$out" | field open mean_us)
if [ -z "$init_us" ] || [ -z "$open_us" ]; then
    echo "abi.sh: bench_abi failed: $out" >&2; exit 1
fi

ours() {    # ours TEST -> best IOPS
    best=0
    for i in $(seq "$RUNS"); do
        out=$("$BENCH" -t "$1" -r "$COUNT" -d $DEPTH -s $REQ -S "$STEP" "$DISK")
        r=$(echo "$out" | field "$1" IOPS)
        [ -n "$r" ] || { echo "abi.sh: bench_abi -t $1 failed: $out" >&2; exit 1; }
        echo "  openvddk $1 run $i: $r IOPS" >&2
        best=$(max "$r" "$best")
    done
    echo "$best"
}

qemu() {    # qemu NAME STEP -> best IOPS
    best=0
    for i in $(seq "$RUNS"); do
        out=$(qemu-img bench -f vmdk -c "$COUNT" -d $DEPTH -s $REQ -S "$2" "$DISK")
        t=$(echo "$out" | sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p')
        [ -n "$t" ] || { echo "abi.sh: qemu-img bench failed: $out" >&2; exit 1; }
        r=$(echo "$COUNT $t" | awk '{ t = ($2 > 0) ? $2 : 1e-9; printf "%.0f", $1 / t }')
        echo "  qemu-img $1 run $i: $r IOPS" >&2
        best=$(max "$r" "$best")
    done
    echo "$best"
}

o_rand=$(ours rand)
o_seq=$(ours seq)
o_str=$(ours stride)
q_seq=$(qemu seq $REQ)
q_str=$(qemu stride "$STEP")

line() {    # line LABEL OURS QEMU
    echo "$1 $2 $3 $REQ" | awk '{ printf "%-22s openvddk %8d IOPS %7.1f MB/s | qemu-img %8d IOPS %7.1f MB/s | %.2fx\n",
                                    $1, $2, $2 * $4 / 1e6, $3, $3 * $4 / 1e6, ($3 > 0) ? $2 / $3 : 0 }'
}

echo "disk: $BYTES bytes, monolithicSparse, fully allocated, page cache warm"
echo "InitEx+Exit:           $init_us us per pair (mean of $ITERS; VDDK's Exit alone is ~1 s)"
echo "Open+GetInfo+Close:    $open_us us per cycle (mean of $ITERS)"
echo "4 KiB reads, queue depth $DEPTH, $COUNT reads, best of $RUNS (qemu-img 7.2 bench has no random mode):"
line "sequential" "$o_seq" "$q_seq"
line "strided(same-offsets)" "$o_str" "$q_str"
line "random-vs-qemu-strided" "$o_rand" "$q_str"
echo "(strided step $STEP bytes; ratio = openvddk/qemu-img)"
