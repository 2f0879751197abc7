# lib.sh - shared setup for the interop scripts (sourced, POSIX sh).
#
# Each script is run as:  script.sh VDTEST
# and uses a private scratch directory $W that is removed on exit.
# Exit status 77 means "skipped" (a peer tool is missing).

set -eu

VDTEST=${1:?usage: $0 VDTEST}
case $VDTEST in /*) ;; *) VDTEST=$(pwd)/$VDTEST ;; esac
[ -x "$VDTEST" ] || { echo "$0: $VDTEST is not executable" >&2; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-interop.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM
cd "$W"

NAME=$(basename "$0" .sh)

need() {
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "$NAME: SKIP: $tool is not installed" >&2
            exit 77
        fi
    done
}

log() { echo "$NAME: $*" >&2; }
die() { echo "$NAME: FAIL: $*" >&2; exit 1; }

# run CMD...: run, and fail the test with the command line if it fails.
run() {
    "$@" || die "command failed ($?): $*"
}

# qcheck DISK: qemu-img check must find nothing wrong.
qcheck() {
    out=$(qemu-img check -f vmdk "$1" 2>&1) || die "qemu-img check $1: $out"
    case $out in
        *"No errors were found"*) ;;
        *) die "qemu-img check $1: $out" ;;
    esac
}

# qcompare DISK RAW: qemu-img reads DISK (vmdk) equal to RAW.
qcompare() {
    out=$(qemu-img compare -f vmdk -F raw "$1" "$2" 2>&1) || die "qemu-img compare $1 $2: $out"
}

# same A B: two raw files are byte-identical (same size, same bytes; holes
# read as zeros).  qemu-img compare skips holes both files have, which
# keeps multi-GiB sparse images cheap; its byte comparison is exact.
same() {
    sa=$(stat -c %s "$1") sb=$(stat -c %s "$2")
    [ "$sa" = "$sb" ] || die "$1 ($sa bytes) and $2 ($sb bytes) differ in size"
    out=$(qemu-img compare -f raw -F raw "$1" "$2" 2>&1) || die "$1 and $2 differ: $out"
}

# normmap: "start length status" lines in, adjacent runs of one status merged.
normmap() {
    awk 'NF == 3 {
        if ($3 == st && $1 == end) { end += $2; next }
        if (st != "") print start, end - start, st
        start = $1; end = $1 + $2; st = $3
    } END { if (st != "") print start, end - start, st }'
}

# mapcheck DISK: the engine's allocation map (vdtest status: data / zero /
# hole through the chain) equals qemu-img map's (present+data, present
# without data = zeroed grain, not present).  For sparse links only: both
# read the same grain tables, so they must agree exactly.
mapcheck() {
    qemu-img map -f vmdk --output=json "$1" |
        sed -n 's/.*"start": *\([0-9]*\), *"length": *\([0-9]*\),.*"present": *\([a-z]*\), *"zero": *\([a-z]*\), *"data": *\([a-z]*\).*/\1 \2 \3 \4 \5/p' |
        awk '{ s = ($3 == "false") ? "hole" : (($5 == "true") ? "data" : "zero"); print $1, $2, s }' |
        normmap > "$1.qmap"
    "$VDTEST" status "$1" | normmap > "$1.omap" || die "vdtest status $1 failed"
    [ -s "$1.qmap" ] || die "qemu-img map $1 gave nothing"
    if ! cmp -s "$1.qmap" "$1.omap"; then
        echo "qemu-img map / vdtest status differ for $1:" >&2
        diff "$1.qmap" "$1.omap" | head -n 20 >&2
        die "allocation maps differ for $1"
    fi
    rm -f "$1.qmap" "$1.omap"
}
