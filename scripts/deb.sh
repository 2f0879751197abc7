#!/bin/sh
# deb.sh - build openvddk's Debian packages from this tree (`make deb`).
#
#   sh scripts/deb.sh [OUTDIR]        OUTDIR defaults to build-deb/
#
# The tree as it is on disk (committed or not; without .git and the build*
# directories) is copied to a temporary directory and built there with
# dpkg-buildpackage, so nothing is written into the tree.  OUTDIR gets the
# .deb files, the .changes and .buildinfo, build.log and `revision`.  The
# revision, which `vddk --version` names, is `git describe` of the tree
# when it is a git checkout, else OPENVDDK_REVISION from the environment,
# else "unknown"; debian/rules passes it to CMake.  JOBS sets the build's
# parallelism (default 2).
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$SRC/build-deb}
JOBS=${JOBS:-2}

for tool in dpkg-buildpackage dpkg-parsechangelog dh; do
    command -v "$tool" >/dev/null 2>&1 ||
        { echo "deb.sh: $tool is missing (sh scripts/deps.sh deb installs it)" >&2; exit 1; }
done

if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
    OPENVDDK_REVISION=$(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown)
fi
export OPENVDDK_REVISION="${OPENVDDK_REVISION:-unknown}"
VERSION=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-deb.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir "$W/openvddk-$VERSION"
tar -C "$SRC" --exclude=./.git --exclude='./build*' --exclude='__pycache__' -cf - . |
    tar -C "$W/openvddk-$VERSION" -xf -

mkdir -p "$OUT"
rm -f "$OUT"/*.deb "$OUT"/*.ddeb "$OUT"/*.changes "$OUT"/*.buildinfo
echo "deb.sh: building openvddk $VERSION (revision $OPENVDDK_REVISION) in $W" >&2
if ! (cd "$W/openvddk-$VERSION" && dpkg-buildpackage -b -us -uc -j"$JOBS") \
        > "$OUT/build.log" 2>&1; then
    tail -n 40 "$OUT/build.log" >&2
    echo "deb.sh: dpkg-buildpackage failed; the whole log is $OUT/build.log" >&2
    exit 1
fi
cp "$W"/*.deb "$W"/*.changes "$W"/*.buildinfo "$OUT"/
echo "$OPENVDDK_REVISION" > "$OUT/revision"
echo "deb.sh: packages in $OUT:" >&2
(cd "$OUT" && ls -1 ./*.deb) >&2
