#!/bin/sh
# test_exports.sh - the dynamic symbol table of libvixDiskLib.so.8.
#
#   sh test_exports.sh LIBDIR FUNCTIONS_H DISK_H
#
# LIBDIR holds libvixDiskLib.so.8 (and the .so, .so.7, .so.9 links);
# FUNCTIONS_H is tests/abi/abi_functions.h (the 43 VixDiskLib names);
# DISK_H is include/vddk/disk.h (the vddk_disk_* functions).
#
# Checks: the defined dynamic symbols are exactly those names, all of them
# functions (nm type T); SONAME is libvixDiskLib.so.8; the other names are
# links to the same file.  Exit 77 (skip) if nm or readelf is missing.
set -u

libdir=$1
functions_h=$2
disk_h=$3
lib=$libdir/libvixDiskLib.so.8

for tool in nm readelf; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "SKIP: $tool is not installed"
        exit 77
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdabi-exports.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0
err() { echo "FAIL: $*"; fail=1; }

[ -f "$lib" ] || { echo "FAIL: $lib does not exist"; exit 1; }

# ---- expected names -------------------------------------------------------
sed -n 's/^ABI_FN(\(VixDiskLib_[A-Za-z]*\))$/\1/p' "$functions_h" | LC_ALL=C sort >"$tmp/vix"
n=$(wc -l <"$tmp/vix")
[ "$n" -eq 43 ] || err "expected 43 VixDiskLib names in $functions_h, found $n"

# Function names declared in disk.h: an identifier vddk_disk_* directly
# followed by "(" (the typedef names vddk_disk and vddk_disk_params never are).
grep -o 'vddk_disk_[a-z_]*(' "$disk_h" | tr -d '(' | LC_ALL=C sort -u >"$tmp/hl"
n=$(wc -l <"$tmp/hl")
[ "$n" -ge 1 ] || err "no vddk_disk_* functions found in $disk_h"
LC_ALL=C sort -u "$tmp/vix" "$tmp/hl" >"$tmp/expected"

# ---- actual dynamic symbols ---------------------------------------------
# nm -D --defined-only prints "ADDR TYPE NAME" (NAME may carry @VERSION).
if ! nm -D --defined-only "$lib" >"$tmp/nm.out" 2>"$tmp/nm.err"; then
    cat "$tmp/nm.err"
    err "nm -D failed on $lib"
fi
awk 'NF >= 3 { print $3 }' "$tmp/nm.out" | sed 's/@.*//' | LC_ALL=C sort -u >"$tmp/actual"
# Every defined symbol must be a function in the text section.
awk 'NF >= 3 && $2 != "T" { print $2, $3 }' "$tmp/nm.out" >"$tmp/nonfunc"
if [ -s "$tmp/nonfunc" ]; then
    err "exported symbols that are not functions (type T):"
    sed 's/^/    /' "$tmp/nonfunc"
fi

LC_ALL=C comm -23 "$tmp/expected" "$tmp/actual" >"$tmp/missing"
LC_ALL=C comm -13 "$tmp/expected" "$tmp/actual" >"$tmp/extra"
if [ -s "$tmp/missing" ]; then
    err "names not exported by $lib:"
    sed 's/^/    /' "$tmp/missing"
fi
if [ -s "$tmp/extra" ]; then
    err "symbols exported by $lib beyond the public API:"
    sed 's/^/    /' "$tmp/extra"
fi
echo "exported: $(wc -l <"$tmp/actual") symbols, expected $(wc -l <"$tmp/expected")" \
     "($(wc -l <"$tmp/vix") VixDiskLib_* + $(wc -l <"$tmp/hl") vddk_disk_*)"

# ---- SONAME -----------------------------------------------------------------
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$soname" != "libvixDiskLib.so.8" ]; then
    err "SONAME is '$soname', expected libvixDiskLib.so.8"
else
    echo "SONAME: $soname"
fi

# ---- the other names are the same file -------------------------------------
real=$(readlink -f "$lib")
for name in libvixDiskLib.so libvixDiskLib.so.7 libvixDiskLib.so.9; do
    if [ ! -e "$libdir/$name" ]; then
        err "$libdir/$name does not exist"
    elif [ "$(readlink -f "$libdir/$name")" != "$real" ]; then
        err "$libdir/$name does not resolve to $real"
    fi
done

[ $fail -eq 0 ] && echo "PASS"
exit $fail
