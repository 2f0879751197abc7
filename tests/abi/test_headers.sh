#!/bin/sh
# test_headers.sh - compile header_check.c against the public headers.
#
#   sh test_headers.sh c   CC  INCLUDE_DIR SOURCE_FILE [SRC_INCLUDE]
#                                          C99, C11, C17 (+ clang if present);
#                                          with SRC_INCLUDE, also checks that
#                                          INCLUDE_DIR holds identical copies
#   sh test_headers.sh cxx -   INCLUDE_DIR SOURCE_FILE   C++17 with c++ (+ clang++)
#
# Every mode uses -pedantic -Wall -Wextra -Werror and a few warnings that
# consumers turn on.  The C++ mode exits 77 (skipped) when c++ is missing.
# Only compiles: nothing is linked, so sanitizer builds need nothing else.
set -u

mode=$1
cc=$2
incdir=$3
src=$4
srcinc=${5:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdabi-headers.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0
count=0

# compile LABEL COMPILER ARGS...
compile() {
    label=$1
    shift
    count=$((count + 1))
    if "$@" -I"$incdir" -c -o "$tmp/out.o" >"$tmp/log" 2>&1; then
        echo "ok   $label"
    else
        echo "FAIL $label: $*"
        sed 's/^/    /' "$tmp/log"
        fail=1
    fi
}

common="-pedantic -Wall -Wextra -Werror -Wshadow -Wundef"

case $mode in
c)
    if [ -n "$srcinc" ]; then
        for h in vixDiskLib.h vm_basic_types.h vddk/disk.h; do
            count=$((count + 1))
            if cmp -s "$srcinc/$h" "$incdir/$h"; then
                echo "ok   $incdir/$h is a copy of $srcinc/$h"
            else
                echo "FAIL $incdir/$h differs from $srcinc/$h (or is missing)"
                fail=1
            fi
        done
    fi
    cflags="$common -Wstrict-prototypes -Wmissing-prototypes"
    compilers=$cc
    if command -v clang >/dev/null 2>&1 && [ "$(basename "$cc")" != clang ]; then
        compilers="$compilers clang"
    fi
    for c in $compilers; do
        for std in c99 c11 c17; do
            # shellcheck disable=SC2086
            compile "$c -std=$std" "$c" -std=$std $cflags -x c "$src"
        done
        # shellcheck disable=SC2086
        compile "$c -std=c99 -DABI_VIX_H_FIRST (vix.h included first)" \
            "$c" -std=c99 $cflags -DABI_VIX_H_FIRST -x c "$src"
        # shellcheck disable=SC2086
        compile "$c -std=c17 -DHAVE_STDINT_H (uint64 = uint64_t)" \
            "$c" -std=c17 $cflags -DHAVE_STDINT_H -x c "$src"
    done
    ;;
cxx)
    if ! command -v c++ >/dev/null 2>&1; then
        echo "SKIP: no c++ compiler (command -v c++ failed); C++ header check not run"
        exit 77
    fi
    compilers="c++"
    if command -v clang++ >/dev/null 2>&1; then
        compilers="$compilers clang++"
    fi
    for c in $compilers; do
        for std in c++11 c++17; do
            # shellcheck disable=SC2086
            compile "$c -std=$std" "$c" -std=$std $common -x c++ "$src"
        done
        # shellcheck disable=SC2086
        compile "$c -std=c++17 -DABI_VIX_H_FIRST (vix.h included first)" \
            "$c" -std=c++17 $common -DABI_VIX_H_FIRST -x c++ "$src"
    done
    ;;
*)
    echo "usage: $0 c|cxx CC INCLUDE_DIR SOURCE" >&2
    exit 2
    ;;
esac

echo "$count checks"
[ $fail -eq 0 ] && echo "PASS"
exit $fail
