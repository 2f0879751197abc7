#!/bin/sh
# bench/restore.sh - restores as restore tools write them: a raw image
# written front to back into a new disk with WriteAsync (bench_restore,
# 1 MiB requests, 8 in flight), against qemu-img making the same disk from
# the same raw file.
#
#   BUILD=build BENCH_SIZE=1G BENCH_RUNS=3 [OLD_LIBDIR=DIR] bench/restore.sh
#
# Jobs (each timed from start to exit, outputs made durable on both sides:
# bench_restore flushes and closes, qemu-img is followed by sync OUT):
#   stream-src   random data -> streamOptimized: qemu-img convert -O vmdk
#                -o subformat=streamOptimized against bench_restore -t stream
#   stream-text  compressible data (random words) -> streamOptimized
#   sparse-src   random data -> monolithicSparse, the same pair
# With OLD_LIBDIR (the dist/lib64 of another build of the library), the
# same bench_restore binary also runs on that library (LD_LIBRARY_PATH):
#   zero-check  random data -> monolithicSparse, old library against new:
#               what looking for zeros in every write costs.
# The page cache is warm, outputs are removed and sync run between runs;
# runs are paired (A B A B); medians and ratios are printed.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SIZE=${BENCH_SIZE:-1G}
RUNS=${BENCH_RUNS:-3}
BR=$BUILD/bench/bench_restore
[ -x "$BR" ] || { echo "restore.sh: build first (missing $BR)" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "restore.sh: qemu-img missing" >&2; exit 1; }
W=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/openvddk-restore.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

# src.raw: random bytes; text.raw: words drawn at random from a small
# vocabulary (deflate shrinks it to about a third).
python3 - "$W" "$SIZE" <<'EOF'
import os, random, sys
units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
s = sys.argv[2]
size = int(s[:-1]) * units[s[-1]] if s[-1] in units else int(s)
with open(os.path.join(sys.argv[1], "src.raw"), "wb") as f:
    for off in range(0, size, 1 << 20):
        f.write(os.urandom(min(1 << 20, size - off)))
rng = random.Random(1)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
         for _ in range(4096)]
with open(os.path.join(sys.argv[1], "text.raw"), "wb") as f:
    left = size
    while left > 0:
        chunk = b" ".join(rng.choices(words, k=200000))[: min(left, 1 << 20)]
        f.write(chunk)
        left -= len(chunk)
EOF
cat "$W/src.raw" "$W/text.raw" >/dev/null

# run NAME SIDE COMMAND...: time one run; output files are $W/out.*
run() {
    n=$1 k=$2
    shift 2
    rm -f "$W"/out.*
    sync
    s=$(date +%s.%N)
    "$@" >/dev/null
    [ "$k" != q ] || sync "$W"/out.*
    e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" 'BEGIN { print e - s }' >>"$W/t.$n.$k"
}
check() {   # OUT WHAT SRC
    got=$(qemu-img convert -O raw "$1" "$W/chk.raw" && sha256sum <"$W/chk.raw" | cut -d' ' -f1)
    rm -f "$W/chk.raw"
    want=$(sha256sum <"$3" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "restore.sh: $2: wrong content" >&2; exit 1; }
}
med() { sort -n "$W/t.$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
line() {   # NAME A-SIDE B-SIDE
    a=$(med "$1.$2") b=$(med "$1.$3")
    printf '  %-34s %7.2f s %7.2f s   %5.2fx\n' "$1" "$a" "$b" \
        "$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')"
}

echo "restore.sh: $SIZE images, $RUNS paired runs, medians"
printf '  %-34s %9s %9s   %s\n' job qemu-img openvddk ratio
for job in stream:src stream:text sparse:src; do
    t=${job%%:*} src=$W/${job#*:}.raw n=$t-${job#*:}
    sub=subformat=streamOptimized
    [ "$t" = stream ] || sub=subformat=monolithicSparse
    for i in $(seq "$RUNS"); do
        run "$n" q qemu-img convert -O vmdk -o "$sub" "$src" "$W/out.q.vmdk"
        [ "$i" -gt 1 ] || check "$W/out.q.vmdk" "$n (qemu-img)" "$src"
        run "$n" v "$BR" -t "$t" "$src" "$W/out.v.vmdk"
        [ "$i" -gt 1 ] || check "$W/out.v.vmdk" "$n (openvddk)" "$src"
    done
    line "$n" q v
done
if [ -n "${OLD_LIBDIR:-}" ]; then
    printf '  %-34s %9s %9s   %s\n' job old-lib new-lib ratio
    for i in $(seq "$RUNS"); do
        run zero-check o env LD_LIBRARY_PATH="$OLD_LIBDIR" "$BR" -t sparse "$W/src.raw" \
            "$W/out.o.vmdk"
        run zero-check v "$BR" -t sparse "$W/src.raw" "$W/out.v.vmdk"
    done
    line zero-check o v
fi
