#!/bin/sh
# bench/convert.sh - `vddk convert` against `qemu-img convert`, end to end,
# as a user times them.
#
#   BUILD=build BENCH_SIZE=1G BENCH_RUNS=3 bench/convert.sh
#
# The source is BENCH_SIZE of alternating 1 MiB runs of random data and
# zeros (raw), and the same as monolithicSparse and streamOptimized (made
# by qemu-img).  Each run is the whole command from start to exit with its
# output made durable: `qemu-img convert ... && sync OUT` against
# `vddk convert -q ...` (which flushes what it writes).  The page cache is
# warm (sources read once before), the outputs removed and `sync` run
# between runs (preallocated raw: fallocate on both sides); runs are
# paired qemu-img, vddk x BENCH_RUNS; medians and the ratio qemu-img time /
# vddk time are printed per job.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SIZE=${BENCH_SIZE:-1G}
RUNS=${BENCH_RUNS:-3}
VDDK=$BUILD/tools/vddk/vddk
[ -x "$VDDK" ] || { echo "convert.sh: build first (missing $VDDK)" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "convert.sh: qemu-img missing" >&2; exit 1; }
W=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/openvddk-convert.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

python3 - "$W/src.raw" "$SIZE" <<'EOF'
import os, sys
units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
s = sys.argv[2]
size = int(s[:-1]) * units[s[-1]] if s[-1] in units else int(s)
with open(sys.argv[1], "wb") as f:
    f.truncate(size)
    for off in range(0, size, 2 << 20):
        f.seek(off)
        f.write(os.urandom(min(1 << 20, size - off)))
EOF
qemu-img convert -O vmdk "$W/src.raw" "$W/src-sparse.vmdk"
qemu-img convert -O vmdk -o subformat=streamOptimized "$W/src.raw" "$W/src-stream.vmdk"
WANT=$(sha256sum <"$W/src.raw" | cut -d' ' -f1)
cat "$W"/src* >/dev/null

# run NAME KIND COMMAND...: time one run; KIND q (add a sync of the
# output) or v; the output is $W/out.*
run() {
    n=$1 k=$2
    shift 2
    rm -f "$W"/out.*
    sync
    s=$(date +%s.%N)
    "$@" >/dev/null
    [ "$k" = v ] || sync "$W"/out.*
    e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" 'BEGIN { print e - s }' >>"$W/t.$n.$k"
}
check() {   # the output reads as the source
    got=$(qemu-img convert -O raw "$1" "$W/chk.raw" && sha256sum <"$W/chk.raw" | cut -d' ' -f1)
    rm -f "$W/chk.raw"
    [ "$got" = "$WANT" ] || { echo "convert.sh: $2: wrong content" >&2; exit 1; }
}
med() { sort -n "$W/t.$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# job NAME SRC QEMU-ARGS -- VDDK-ARGS (outputs: out.q / out.v suffixed by OUTEXT)
job() {
    n=$1 src=$2 ext=$3 qargs=$4 vargs=$5
    for i in $(seq "$RUNS"); do
        # shellcheck disable=SC2086
        run "$n" q qemu-img convert $qargs "$src" "$W/out.q.$ext"
        [ "$i" -gt 1 ] || check "$W/out.q.$ext" "$n (qemu-img)"
        # shellcheck disable=SC2086
        run "$n" v "$VDDK" convert -q $vargs "$src" "$W/out.v.$ext"
        [ "$i" -gt 1 ] || check "$W/out.v.$ext" "$n (vddk)"
    done
    q=$(med "$n.q") v=$(med "$n.v")
    printf '  %-44s %7.2f s %7.2f s   %5.2fx\n' "$n" "$q" "$v" \
        "$(awk -v a="$q" -v b="$v" 'BEGIN { print a / b }')"
}

printf 'convert of %s, half random data and half zeros (alternating 1 MiB), %s paired runs, medians\n' \
    "$SIZE" "$RUNS"
printf '%s, %s cores, %s\n' "$(uname -m)" "$(nproc)" "$(date -u +%Y-%m-%d)"
printf '  %-44s %9s %9s   %s\n' job qemu-img vddk "qemu-img/vddk"
job "monolithicSparse -> raw (sparse file)" "$W/src-sparse.vmdk" raw "-O raw" "-t raw"
job "monolithicSparse -> raw (preallocated)" "$W/src-sparse.vmdk" raw \
    "-O raw -o preallocation=falloc" "-t raw --preallocate"
job "raw -> monolithicSparse" "$W/src.raw" vmdk "-O vmdk" "-t monolithicSparse"
job "raw -> streamOptimized" "$W/src.raw" vmdk "-O vmdk -o subformat=streamOptimized" \
    "-t streamOptimized"
job "streamOptimized -> raw" "$W/src-stream.vmdk" raw "-O raw" "-t raw"
job "monolithicSparse -> monolithicSparse" "$W/src-sparse.vmdk" vmdk "-O vmdk" \
    "-t monolithicSparse"
