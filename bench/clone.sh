#!/bin/sh
# bench/clone.sh - VixDiskLib_Clone and stream reading (bench_clone, public
# ABI) against qemu-img, side by side with the ratio (qemu time / our time):
#
#   raw -> streamOptimized   bench_clone clone (the raw file wrapped in a
#                            monolithicFlat descriptor, no copy) vs
#                            qemu-img convert -O vmdk -o subformat=streamOptimized
#   streamOptimized -> raw   bench_clone toraw (one thread per CPU) vs
#                            qemu-img convert -O raw, both of the same stream
#   sparse -> sparse         bench_clone clone monolithicSparse vs
#                            qemu-img convert -O vmdk (monolithicSparse)
#
# and the peak resident memory of our stream clone for a CLONE_SIZE (1 GiB)
# and a CLONE_MEM_SIZE (4 GiB) source, which must stay under 64 MiB.
#
#   BUILD=build CLONE_SIZE=1G CLONE_MEM_SIZE=4G CLONE_RUNS=3 bench/clone.sh
#
# Data (bench_clone gen): per 4 MiB, 2 MiB pseudo-random, 1 MiB text-like,
# 1 MiB zero (a hole).  Each figure is the best of CLONE_RUNS runs timed
# around the whole process; page cache warm; outputs in a mktemp directory
# under $TMPDIR (or /tmp), removed on exit.  CLONE_MEM_SIZE=0 skips the
# 4 GiB memory run.  Exit status 1 if a peak RSS is 64 MiB or more.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SIZE=${CLONE_SIZE:-1G}
MEM_SIZE=${CLONE_MEM_SIZE:-4G}
RUNS=${CLONE_RUNS:-3}
RSS_LIMIT_KB=65536

for tool in qemu-img cmake awk /usr/bin/time; do
    command -v $tool >/dev/null 2>&1 || { echo "clone.sh: $tool is needed" >&2; exit 1; }
done
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" >/dev/null
cmake --build "$BUILD" --target bench_clone >/dev/null
B=$BUILD/bench/bench_clone

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-clone.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }

# wrap RAW VMDK: a monolithicFlat descriptor over the raw file.
wrap() {
    sectors=$(( $(stat -c %s "$1") / 512 ))
    cat > "$2" <<EOF
# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW $sectors FLAT "$(basename "$1")" 0

# The Disk Data Base
#DDB
ddb.adapterType = "lsilogic"
ddb.virtualHWVersion = "4"
EOF
}

# best NAME OUTPUT CMD...: RUNS runs (OUTPUT removed before each), timed by
# /usr/bin/time around the whole process: prints "WALL CPU" of the run with
# the best wall time (CPU = user + system, all threads); the largest peak
# RSS of the runs (KiB) goes to $W/rss.
best() {
    name=$1 out=$2
    shift 2
    bw="" bc="" rss=0
    for i in $(seq "$RUNS"); do
        rm -f "$out" "${out%.vmdk}"-*.vmdk
        /usr/bin/time -f "TIME %e %U %S %M" -o "$W/time" "$@" > /dev/null ||
            { echo "clone.sh: $name failed: $*" >&2; exit 1; }
        read -r _ e u s m < "$W/time"
        c=$(echo "$u $s" | awk '{ printf "%.2f", $1 + $2 }')
        [ "$m" -gt "$rss" ] && rss=$m
        echo "  $name run $i: $e s wall, $c s CPU, peak RSS $((m / 1024)) MiB" >&2
        if [ -z "$bw" ] || [ "$(echo "$e $bw" | awk '{ print ($1 < $2) }')" = 1 ]; then
            bw=$e bc=$c
        fi
    done
    echo "$rss" > "$W/rss"
    echo "$bw $bc"
}

line() {    # line LABEL "OURS_WALL OURS_CPU" "QEMU_WALL QEMU_CPU" TARGET
    echo "$1 $2 $3 $4 $BYTES" | awk '{ printf "%-22s openvddk %6.2f s (%6.1f MB/s, CPU %6.2f s) | qemu-img %6.2f s (%6.1f MB/s, CPU %6.2f s) | %.2fx wall, %.2fx CPU (target %sx)\n",
        $1, $2, $7 / $2 / 1e6, $3, $4, $7 / $4 / 1e6, $5, $4 / $2, $5 / $3, $6 }'
}

echo "clone.sh: making $SIZE of mixed data in $W" >&2
"$B" gen "$W/src.raw" "$SIZE"
BYTES=$(stat -c %s "$W/src.raw")
wrap "$W/src.raw" "$W/src-flat.vmdk"
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$W/src.raw" "$W/src-sparse.vmdk"
cat "$W/src.raw" "$W/src-sparse.vmdk" > /dev/null

# 1. raw -> streamOptimized
o_rs=$(best "openvddk raw->stream" "$W/o-stream.vmdk" \
       "$B" clone "$W/src-flat.vmdk" "$W/o-stream.vmdk" streamOptimized)
rss_1g=$(cat "$W/rss")
q_rs=$(best "qemu-img raw->stream" "$W/q-stream.vmdk" \
       qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$W/src.raw" "$W/q-stream.vmdk")
"$B" clone "$W/src-flat.vmdk" "$W/o-stream.vmdk" streamOptimized >/dev/null
o_size=$(stat -c %s "$W/o-stream.vmdk")
q_size=$(stat -c %s "$W/q-stream.vmdk")
rm -f "$W/q-stream.vmdk"

# 2. streamOptimized -> raw, both from our stream
o_sr=$(best "openvddk stream->raw" "$W/o-back.raw" "$B" toraw "$W/o-stream.vmdk" "$W/o-back.raw")
q_sr=$(best "qemu-img stream->raw" "$W/q-back.raw" \
       qemu-img convert -f vmdk -O raw "$W/o-stream.vmdk" "$W/q-back.raw")
cmp -s "$W/o-back.raw" "$W/src.raw" || { echo "clone.sh: our stream->raw output differs from the source" >&2; exit 1; }
rm -f "$W/o-back.raw" "$W/q-back.raw"

# 3. monolithicSparse -> monolithicSparse
o_ss=$(best "openvddk sparse->sparse" "$W/o-sparse.vmdk" \
       "$B" clone "$W/src-sparse.vmdk" "$W/o-sparse.vmdk" monolithicSparse)
q_ss=$(best "qemu-img sparse->sparse" "$W/q-sparse.vmdk" \
       qemu-img convert -f vmdk -O vmdk "$W/src-sparse.vmdk" "$W/q-sparse.vmdk")
rm -f "$W"/o-* "$W"/q-*

# 4. peak memory of a bigger stream clone
rss_big=""
if [ "$MEM_SIZE" != 0 ]; then
    echo "clone.sh: making $MEM_SIZE of mixed data for the memory run" >&2
    rm -f "$W/src.raw" "$W/src-sparse.vmdk"
    "$B" gen "$W/big.raw" "$MEM_SIZE"
    wrap "$W/big.raw" "$W/big-flat.vmdk"
    o=$("$B" clone "$W/big-flat.vmdk" "$W/big-stream.vmdk" streamOptimized)
    rss_big=$(echo "$o" | field maxrss_kb)
    big_s=$(echo "$o" | field seconds)
    rm -f "$W"/big*
fi

cpus=$(nproc 2>/dev/null || echo "?")
echo "data: $BYTES bytes per 4 MiB: 2 MiB random, 1 MiB text-like, 1 MiB zero; $cpus CPUs; page cache warm"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (wall figures need an idle machine)"
echo "best wall time of $RUNS, whole process; ratio = qemu-img / openvddk"
line "raw->streamOptimized" "$o_rs" "$q_rs" 3
line "streamOptimized->raw" "$o_sr" "$q_sr" 2
line "sparse->sparse" "$o_ss" "$q_ss" 1.5
echo "stream sizes: openvddk $o_size bytes, qemu-img $q_size bytes"
status=0
echo "peak RSS, stream clone of $SIZE: $((rss_1g / 1024)) MiB ($rss_1g KiB; limit 64 MiB)"
[ "$rss_1g" -lt $RSS_LIMIT_KB ] || { echo "clone.sh: peak RSS over the limit" >&2; status=1; }
if [ -n "$rss_big" ]; then
    echo "peak RSS, stream clone of $MEM_SIZE: $((rss_big / 1024)) MiB ($rss_big KiB; limit 64 MiB; clone took $big_s s)"
    [ "$rss_big" -lt $RSS_LIMIT_KB ] || { echo "clone.sh: peak RSS over the limit" >&2; status=1; }
fi
exit $status
