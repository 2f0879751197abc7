#!/bin/sh
# scripts/fuzz.sh - build the libFuzzer targets with clang and run each for
# a bounded time.  Exits non-zero if any target finds a crash, leak,
# timeout or sanitizer error.
#
#   FUZZ_SECONDS=60 BUILD_FUZZ=build-fuzz scripts/fuzz.sh [TARGET...]
#
# The committed seed corpora (tests/fuzz/corpus/<name>/) are copied into a
# scratch directory so the run never grows them.  Reproducers are kept in
# $BUILD_FUZZ/fuzz-artifacts/ (re-run one with: $BUILD_FUZZ/tests/fuzz/TARGET FILE).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_FUZZ=${BUILD_FUZZ:-build-fuzz}
case $BUILD_FUZZ in /*) ;; *) BUILD_FUZZ=$ROOT/$BUILD_FUZZ ;; esac
SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}

if [ $# -gt 0 ]; then
    TARGETS=$*
else
    TARGETS="fuzz_descriptor fuzz_sparse fuzz_cowd fuzz_stream fuzz_nbd_server fuzz_nfc_codec fuzz_nfc_client fuzz_soap fuzz_manifest fuzz_repair"
fi

max_len() {
    case $1 in
        fuzz_descriptor) echo "${FUZZ_MAX_LEN:-16384}" ;;
        fuzz_sparse) echo "${FUZZ_MAX_LEN:-65536}" ;;
        fuzz_cowd) echo "${FUZZ_MAX_LEN:-65536}" ;;
        fuzz_stream) echo "${FUZZ_MAX_LEN:-65536}" ;;
        fuzz_nbd_server) echo "${FUZZ_MAX_LEN:-16384}" ;;
        fuzz_nfc_codec) echo "${FUZZ_MAX_LEN:-300000}" ;;
        fuzz_nfc_client) echo "${FUZZ_MAX_LEN:-300000}" ;;
        fuzz_soap) echo "${FUZZ_MAX_LEN:-16384}" ;;
        fuzz_manifest) echo "${FUZZ_MAX_LEN:-16384}" ;;
        fuzz_repair) echo "${FUZZ_MAX_LEN:-256}" ;;
        *) echo "${FUZZ_MAX_LEN:-65536}" ;;
    esac
}

command -v clang >/dev/null 2>&1 || { echo "fuzz.sh: clang is needed" >&2; exit 1; }

CC=clang cmake -S "$ROOT" -B "$BUILD_FUZZ" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOPENVDDK_FUZZ=ON >/dev/null
# shellcheck disable=SC2086
cmake --build "$BUILD_FUZZ" -j "$JOBS" --target $TARGETS

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-fuzz.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
trap 'exit 130' INT TERM
ART=$BUILD_FUZZ/fuzz-artifacts
mkdir -p "$ART"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=""
for t in $TARGETS; do
    corpus=${t#fuzz_}
    mkdir -p "$SCRATCH/$corpus"
    if [ -d "$ROOT/tests/fuzz/corpus/$corpus" ]; then
        cp -R "$ROOT/tests/fuzz/corpus/$corpus/." "$SCRATCH/$corpus/"
    fi
    echo "fuzz.sh: $t for ${SECONDS_EACH}s (max_len $(max_len "$t"))" >&2
    rc=0
    "$BUILD_FUZZ/tests/fuzz/$t" \
        -max_total_time="$SECONDS_EACH" \
        -max_len="$(max_len "$t")" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        -artifact_prefix="$ART/$t-" \
        "$SCRATCH/$corpus" < /dev/null > "$SCRATCH/$t.log" 2>&1 || rc=$?
    tail -n 15 "$SCRATCH/$t.log" >&2
    if [ "$rc" -ne 0 ]; then
        echo "fuzz.sh: $t FAILED (exit $rc); log tail above, artifacts in $ART" >&2
        grep -E 'FUZZ-CHECK|ERROR|SUMMARY|runtime error|Test unit written' "$SCRATCH/$t.log" | head -n 20 >&2 || true
        failed="$failed $t"
    else
        echo "fuzz.sh: $t ok" >&2
    fi
done

if [ -n "$failed" ]; then
    echo "fuzz.sh: failures:$failed" >&2
    exit 1
fi
echo "fuzz.sh: all targets ran clean" >&2
