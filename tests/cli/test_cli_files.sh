#!/bin/sh
# test_cli_files.sh - files the tool must refuse, promptly and without
# leaving anything behind:
#
# - names a descriptor cannot hold (a double quote, a newline, a tab) for
#   create, snapshot, clone, convert and rename;
# - a child of a chain that already has 256 links (it could never be
#   opened), for both child types;
# - a FIFO, a socket or a character device where a disk file belongs: the
#   disk itself, its flat extent, a sparse extent, a parent (each command
#   runs under `timeout`, so a regression fails instead of hanging).
#
#   sh test_cli_files.sh VDDK
set -eu

VDDK=${1:?usage: test_cli_files.sh VDDK}
case $VDDK in /*) ;; *) VDDK=$(pwd)/$VDDK ;; esac
[ -x "$VDDK" ] || { echo "cli-files: $VDDK is not executable" >&2; exit 1; }
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-cli-files.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM
cd "$W"
CHECKS=0
# Generous: a refusal takes milliseconds; a hang is what this catches.
T=20

die() {
    echo "cli-files: FAIL: $*" >&2
    exit 1
}
ok() { CHECKS=$((CHECKS + 1)); }

# refused TEXT ARGS...: vddk ARGS fails with exit status 1 (not a timeout)
# and one line on stderr, "vddk: ..." containing TEXT.
refused() {
    text=$1
    shift
    set +e
    timeout $T "$VDDK" "$@" >"$W/out" 2>"$W/err"
    rc=$?
    set -e
    [ $rc -ne 124 ] || die "vddk $*: hung (killed after ${T}s)"
    [ $rc -eq 1 ] || die "vddk $*: exit status $rc, expected 1; stderr: $(cat "$W/err")"
    [ "$(wc -l <"$W/err")" -eq 1 ] || die "vddk $*: stderr is not one line: $(cat "$W/err")"
    case $(cat "$W/err") in
        "vddk: "*"$text"*) ;;
        *) die "vddk $*: stderr lacks '$text': $(cat "$W/err")" ;;
    esac
    ok
}

# listing DIR: its files (hidden ones too), one per line, escaped.
listing() {
    ls -A -b "$1"
}

# ---- names a descriptor cannot hold -------------------------------------------
mkdir names
cd names
"$VDDK" create -s 1M base.vmdk >/dev/null
"$VDDK" create -t monolithicFlat -s 1M flat.vmdk >/dev/null
before=$(listing .)
NL='
'
QUOTE='q"uote.vmdk'
NEWLINE="n${NL}l.vmdk"
TAB=$(printf 't\tab.vmdk')
# (Every type through the library: tests/abi/test_api.c test_bad_names.)
for t in monolithicSparse monolithicFlat streamOptimized; do
    refused "$QUOTE: a disk file name may not contain '\"'" create -t $t -s 1M "$QUOTE"
done
refused 'n\nl.vmdk: a disk file name may not contain a newline' create -s 1M "$NEWLINE"
refused 'n\nl.vmdk: a disk file name may not contain a newline' create -t flat -s 1M "$NEWLINE"
refused 't\tab.vmdk: a disk file name may not contain a control character (0x09)' \
    create -s 1M "$TAB"
refused "$QUOTE: a disk file name" snapshot base.vmdk "$QUOTE"
refused 'n\nl.vmdk: a disk file name' snapshot -t split-sparse base.vmdk "$NEWLINE"
refused "$QUOTE: a disk file name" clone base.vmdk "$QUOTE"
refused 'n\nl.vmdk: a disk file name' clone -t stream base.vmdk "$NEWLINE"
refused "$QUOTE: a disk file name" convert -t flat flat.vmdk "$QUOTE"
refused "$QUOTE: a disk file name" rename base.vmdk "$QUOTE"
refused 'n\nl.vmdk: a disk file name' rename flat.vmdk "$NEWLINE"
# The message names the file once, escaped.
"$VDDK" create -s 1M "$NEWLINE" 2>"$W/err" >/dev/null && die "created $NEWLINE"
[ "$(grep -c 'n\\nl.vmdk' "$W/err")" -eq 1 ] && [ "$(grep -o 'l\.vmdk' "$W/err" | wc -l)" -eq 1 ] ||
    die "the name is not given exactly once: $(cat "$W/err")"
ok
# Nothing was made, nothing was renamed.
[ "$(listing .)" = "$before" ] || die "refused names left files behind:
$(listing .)
expected:
$before"
ok
"$VDDK" info base.vmdk >/dev/null || die "base.vmdk no longer opens"
"$VDDK" info flat.vmdk >/dev/null || die "flat.vmdk no longer opens"
ok
# A name with only ordinary punctuation is fine.
"$VDDK" create -s 1M "sp ace's (1).vmdk" >/dev/null || die "a name with a space failed"
"$VDDK" info "sp ace's (1).vmdk" >/dev/null || die "a name with a space does not open"
ok
cd ..

# ---- a chain that already has 256 links ---------------------------------------
# base l000 <- l001 <- ... <- l255, made quickly: one real child made by the
# tool, then its descriptor and extent copied 254 times with the parent
# hint changed (one CID for all, so every parentCID matches).
mkdir chain
cd chain
"$VDDK" create -t twoGbMaxExtentSparse -s 64K l000.vmdk >/dev/null
"$VDDK" snapshot -t split-sparse l000.vmdk l001.vmdk >/dev/null
[ -f l001-s001.vmdk ] || die "the split child's extent is not l001-s001.vmdk: $(ls)"
CID=0c1d0c1d
sed -i "s/^CID=.*/CID=$CID/" l000.vmdk
sed -i "s/^CID=.*/CID=$CID/; s/^parentCID=.*/parentCID=$CID/" l001.vmdk
grep -q '^parentFileNameHint="l000.vmdk"$' l001.vmdk || die "unexpected hint: $(cat l001.vmdk)"
"$PY" - <<'EOF'
import shutil
text = open("l001.vmdk").read()
for i in range(2, 256):
    t = text.replace('"l001-s001.vmdk"', '"l%03d-s001.vmdk"' % i)
    t = t.replace('parentFileNameHint="l000.vmdk"', 'parentFileNameHint="l%03d.vmdk"' % (i - 1))
    open("l%03d.vmdk" % i, "w").write(t)
    shutil.copyfile("l001-s001.vmdk", "l%03d-s001.vmdk" % i)
EOF
"$VDDK" info l255.vmdk >"$W/out" || die "info on the 256-link chain failed"
grep -q "^chain: *256 links" "$W/out" || die "info does not show 256 links: $(cat "$W/out")"
ok
before=$(listing .)
refused "l256.vmdk: the chain of l255.vmdk already has 256 links, the most a disk can have" \
    snapshot l255.vmdk l256.vmdk
[ "$(listing .)" = "$before" ] || die "a refused snapshot left files behind"
ok
# One link less: a child is still made, and opens.
"$VDDK" snapshot l254.vmdk x255.vmdk >/dev/null || die "a child of a 255-link chain failed"
"$VDDK" info x255.vmdk >/dev/null || die "the 256th link does not open"
ok
cd ..

# ---- FIFOs, sockets and devices where disk files belong -------------------------
mkdir special
cd special
SPECIAL='not a disk file (a disk must be a regular file or a block device)'
# The disk itself.
mkfifo fifo.vmdk
refused "fifo.vmdk: is a FIFO, $SPECIAL" info fifo.vmdk
refused "fifo.vmdk: is a FIFO" checksum fifo.vmdk
refused "fifo.vmdk: is a FIFO" clone fifo.vmdk out.vmdk
[ ! -e out.vmdk ] || die "a refused clone left out.vmdk"
refused "fifo.vmdk: is a FIFO" snapshot fifo.vmdk child.vmdk
[ ! -e child.vmdk ] || die "a refused snapshot left child.vmdk"
ok
# The flat extent of a monolithicFlat disk (read-only and read-write).
"$VDDK" create -t monolithicFlat -s 1M flat.vmdk >/dev/null
rm flat-flat.vmdk
mkfifo flat-flat.vmdk
refused "flat-flat.vmdk: is a FIFO, $SPECIAL" info flat.vmdk
refused "flat-flat.vmdk: is a FIFO" fill -p 1 flat.vmdk
# A sparse extent of a split disk.
"$VDDK" create -t twoGbMaxExtentSparse -s 1M split.vmdk >/dev/null
rm split-s001.vmdk
mkfifo split-s001.vmdk
refused "split-s001.vmdk: is a FIFO" info split.vmdk
# A parent: the child's hint names a FIFO.
"$VDDK" create -s 1M p.vmdk >/dev/null
"$VDDK" snapshot p.vmdk c.vmdk >/dev/null
rm p.vmdk
mkfifo p.vmdk
refused "p.vmdk: is a FIFO" info c.vmdk
# A socket and a character device.
"$PY" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' sock.vmdk
refused "sock.vmdk: is a socket, $SPECIAL" info sock.vmdk
"$VDDK" create -t monolithicFlat -s 1M dev.vmdk >/dev/null
sed -i 's|"dev-flat.vmdk"|"/dev/zero"|' dev.vmdk
grep -q '"/dev/zero"' dev.vmdk || die "dev.vmdk does not name /dev/zero"
refused "/dev/zero: is a character device, $SPECIAL" info dev.vmdk
cd ..

echo "cli-files: $CHECKS checks passed"
