#!/bin/sh
# bench/run.sh - sequential read of a fully allocated monolithicSparse disk:
# openvddk's engine (bench_read) against qemu-img, side by side.
#
#   BUILD=build BENCH_SIZE=1G BENCH_CHUNK=4M bench/run.sh
#
# Makes a random raw image of BENCH_SIZE, converts it with qemu-img into a
# monolithicSparse VMDK (every grain allocated), warms the page cache, then
# takes the best of 3 runs of each reader:
#   openvddk:  bench_read -c BENCH_CHUNK disk.vmdk
#   qemu-img:  qemu-img convert -n disk.vmdk into a null-co target (qemu's
#              discard-everything block driver; /dev/null cannot be a
#              convert target because qemu-img cannot "grow" it).
# Scratch files live in a mktemp directory under $TMPDIR (or /tmp) that is
# removed on exit.  Builds bench_read into $BUILD first if it is missing.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SIZE=${BENCH_SIZE:-1G}
CHUNK=${BENCH_CHUNK:-4M}

for tool in qemu-img cmake; do
    command -v $tool >/dev/null 2>&1 || { echo "run.sh: $tool is needed" >&2; exit 1; }
done

BENCH=$BUILD/bench/bench_read
if [ ! -x "$BENCH" ]; then
    echo "run.sh: building bench_read in $BUILD" >&2
    [ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" >/dev/null
    cmake --build "$BUILD" --target bench_read >/dev/null
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

echo "run.sh: making a $SIZE random monolithicSparse disk in $W" >&2
head -c "$SIZE" /dev/urandom > "$W/src.raw"
BYTES=$(stat -c %s "$W/src.raw")
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$W/src.raw" "$W/disk.vmdk"
rm -f "$W/src.raw"
cat "$W/disk.vmdk" > /dev/null     # page cache warm for both readers

now() { date +%s.%N; }

# Both sides are timed the same way, around the whole process (start, open,
# read, close); bench_read's own figure for the read loop alone is shown too.
mbps() { echo "$1 $2 $BYTES" | awk '{d = $2 - $1; if (d <= 0) d = 1e-9; printf "%.1f", $3 / d / 1e6}'; }

best_ours=0
best_loop=0
for i in 1 2 3; do
    t0=$(now)
    out=$("$BENCH" -c "$CHUNK" "$W/disk.vmdk" 2>/dev/null) || out=""
    t1=$(now)
    loop=$(echo "$out" | sed -n 's/.*MB\/s=\([0-9.]*\).*/\1/p')
    [ -n "$loop" ] || { echo "run.sh: bench_read failed" >&2; exit 1; }
    r=$(mbps "$t0" "$t1")
    echo "  openvddk run $i: $r MB/s (read loop alone $loop MB/s)" >&2
    best_ours=$(echo "$r $best_ours" | awk '{print ($1 > $2) ? $1 : $2}')
    best_loop=$(echo "$loop $best_loop" | awk '{print ($1 > $2) ? $1 : $2}')
done

best_qemu=0
for i in 1 2 3; do
    t0=$(now)
    qemu-img convert -n -f vmdk "$W/disk.vmdk" \
        --target-image-opts "driver=null-co,size=$BYTES"
    t1=$(now)
    r=$(mbps "$t0" "$t1")
    echo "  qemu-img run $i: $r MB/s" >&2
    best_qemu=$(echo "$r $best_qemu" | awk '{print ($1 > $2) ? $1 : $2}')
done

echo "disk: $BYTES bytes, monolithicSparse, fully allocated, page cache warm; chunk $CHUNK"
echo "openvddk bench_read:  $best_ours MB/s (best of 3, whole process; read loop alone $best_loop MB/s)"
echo "qemu-img convert:     $best_qemu MB/s (best of 3, whole process)"
echo "$best_ours $best_qemu" | awk '{ if ($2 > 0) printf "openvddk/qemu-img = %.2fx\n", $1 / $2 }'

# ---- ABI section: bench/abi.sh on the same disk -------------------------
# InitEx/Exit and Open/GetInfo/Close cost through libvixDiskLib, then 4 KiB
# reads at queue depth 32 (ReadAsync) against qemu-img bench.
# BENCH_ABI=0 skips it.
if [ "${BENCH_ABI:-1}" != 0 ]; then
    echo
    ABI_DISK="$W/disk.vmdk" BUILD="$BUILD" sh "$ROOT/bench/abi.sh"
fi

# ---- clone section: bench/clone.sh ---------------------------------------
# raw -> streamOptimized, streamOptimized -> raw and monolithicSparse ->
# monolithicSparse against qemu-img convert, and the peak memory of a
# stream clone (1 GiB and CLONE_MEM_SIZE, default 4 GiB).  It makes its own
# mixed data (CLONE_SIZE, default 1 GiB).  BENCH_CLONE=0 skips it.
if [ "${BENCH_CLONE:-1}" != 0 ]; then
    echo
    rm -f "$W/disk.vmdk"    # free the first sections' disk before making new data
    BUILD="$BUILD" sh "$ROOT/bench/clone.sh"
fi

# ---- network section: bench/net.sh ----------------------------------------
# nbdcopy from vddk serve against qemu-nbd (same VMDK) and nbdkit's file
# plugin (raw copy), plain and TLS, over loopback, and the library's remote
# read throughput against nbdcopy.  BENCH_NET=0 skips it.
if [ "${BENCH_NET:-1}" != 0 ]; then
    echo
    BUILD="$BUILD" sh "$ROOT/bench/net.sh"
fi
