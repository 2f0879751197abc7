#!/bin/sh
# Build tests/vsphere/vcsim (govmomi's vCenter simulator with our small main)
# offline, in GOPATH mode, against Debian's golang-github-vmware-govmomi-dev.
#
#   build-vcsim.sh OUTPUT_BINARY
#
# Everything Go writes (GOPATH copy of main.go, build cache) goes under
# OUTPUT_BINARY's directory, except that VCSIM_GOCACHE, when set, names the
# build cache: build trees may share one (Go locks it), so that only the
# first one compiles govmomi (make check and make check-asan do).  Rebuilds
# only when main.go is newer than the binary.  Exits 77 when go or the
# govmomi source is missing.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTPUT_BINARY" >&2
    exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
src="$here/vcsim/main.go"
out=$1
case $out in
    /*) ;;
    *) out="$(pwd)/$out" ;;
esac
outdir=$(dirname "$out")
mkdir -p "$outdir"

GOVMOMI_ROOT=${GOVMOMI_ROOT:-/usr/share/gocode}
if ! command -v go >/dev/null 2>&1; then
    echo "build-vcsim: 'go' not found (apt-get install golang-go); skipping" >&2
    exit 77
fi
for pkg in github.com/vmware/govmomi/simulator github.com/google/uuid; do
    if [ ! -d "$GOVMOMI_ROOT/src/$pkg" ]; then
        echo "build-vcsim: $GOVMOMI_ROOT/src/$pkg missing" \
             "(apt-get install golang-github-vmware-govmomi-dev golang-github-google-uuid-dev); skipping" >&2
        exit 77
    fi
done

if [ -x "$out" ] && [ ! "$src" -nt "$out" ]; then
    exit 0
fi

gopath="$outdir/vcsim-gopath"
gocache=${VCSIM_GOCACHE:-$outdir/vcsim-gocache}
mkdir -p "$gopath/src/openvddk/vcsim" "$gocache"
cp "$src" "$gopath/src/openvddk/vcsim/main.go"

echo "build-vcsim: building $out" >&2
cd "$gopath"
env GO111MODULE=off GOPROXY=off GOFLAGS= \
    GOPATH="$gopath:$GOVMOMI_ROOT" \
    GOCACHE="$gocache" \
    GOTMPDIR= \
    go build -o "$out.tmp" openvddk/vcsim
mv -f "$out.tmp" "$out"
