#!/bin/sh
# nfcd_self.sh - the NFC responder (nfcd) against an independent Python
# client (nfc_py.py, scenarios in nfcd_self.py): full handshakes (nbd and
# nbdssl, vCenter and ESXi services, lib version 11 and 7), reads with every
# codec, writes with every codec and read back, QUERY_ALLOCATED_BLOCKS,
# DDB_GET, closes; refusals (used ticket, busy file, RW on RO ticket) and
# protocol violations that must drop the connection and be logged; failure
# injection.  Exit 77 when python3, certtool or qemu-img is missing.
set -eu

NAME=nfcd_self
: "${NFCD:?NFCD must name the nfcd binary}"
HERE=$(cd "$(dirname "$0")" && pwd)
for tool in python3 certtool qemu-img; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$NAME: SKIP: $tool is not installed" >&2
        exit 77
    fi
done
. "$HERE/lib.sh"

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-nfc.XXXXXX")
export W
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
cleanup() {
    nfcd_stop
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "$NAME: FAIL: $*" >&2
    if [ -n "${NFCD_LOG:-}" ] && [ -f "$NFCD_LOG" ]; then
        echo "--- last lines of the nfcd log:" >&2
        tail -n 30 "$NFCD_LOG" >&2
    fi
    exit 1
}
T=120
py() {
    timeout "$T" python3 "$HERE/nfcd_self.py" "$@" || die "scenario(s) $* failed"
}
no_violations() {
    v=$(nfcd_violations)
    [ -z "$v" ] || die "nfcd logged violations after $1: $v"
    v=$(nfcd_unclean)
    [ -z "$v" ] || die "nfcd logged unclean session ends after $1: $v"
}
stop_clean() {
    nfcd_stop
    [ "$NFCD_STATUS" -eq 0 ] || die "nfcd exited with status $NFCD_STATUS after SIGTERM"
}

# A disk with holes, random, compressible and sparse-ish grains; its size is
# not a multiple of 1 MiB (QAB's last chunk runs past the end).
python3 - "$W/raw.img" <<'EOF'
import random, sys
r = random.Random(42)
K = 65536
out = bytearray()
for i in range(8 * 16 + 3):
    k = i % 5
    if k == 0:
        c = bytes(K)
    elif k == 1:
        c = r.randbytes(K)
    elif k == 2:
        c = b"".join(b"grain %05d text %08d\n" % (i, j) for j in range(K // 24 + 1))[:K]
    elif k == 3:
        c = b"".join(bytes(4096) if j % 2 else r.randbytes(4096) for j in range(16))
    else:
        b = bytearray(K)
        for _ in range(5):
            p = r.randrange(K - 16)
            b[p:p + 16] = r.randbytes(16)
        c = bytes(b)
    out += c
out[-5:] = b"last!"
open(sys.argv[1], "wb").write(out)
EOF
qemu-img convert -q -f raw -O vmdk "$W/raw.img" "$W/disk.vmdk"
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicFlat "$W/raw.img" "$W/flat.vmdk"
cp "$W/disk.vmdk" "$W/disk-rw.vmdk"
cp "$W/disk.vmdk" "$W/busy.vmdk"
cp "$W/disk.vmdk" "$W/other.vmdk"
# The embedded descriptor of disk.vmdk (DDB_GET checks every ddb key).
python3 - "$W/disk.vmdk" "$W/desc.txt" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
assert d[:4] == b"KDMV", "not a monolithicSparse VMDK"
off, size = struct.unpack_from("<QQ", d, 28)
text = d[off * 512:(off + size) * 512].split(b"\0")[0]
open(sys.argv[2], "wb").write(text)
EOF

D=$W/disk.vmdk
RWD=$W/disk-rw.vmdk

# ---- main responder: lib version 11, shuffled and interleaved reads -------
nfcd_start
nfcd_ticket ro-1 ro vpxa-nfc "$D" "busy:$W/busy.vmdk" "$W/flat.vmdk"
nfcd_ticket rw-1 rw nfc "$RWD"
nfcd_ticket rw-2 ro vpxa-nfc "$RWD"
nfcd_ticket par-1 ro vpxa-nfc "$D"
nfcd_ticket par-2 ro vpxa-nfc "$D"
i=0
while [ $i -lt 12 ]; do
    nfcd_ticket "neg-$i" ro vpxa-nfc "$D"
    i=$((i + 1))
done
i=0
while [ $i -lt 5 ]; do
    nfcd_ticket "negw-$i" rw vpxa-nfc "$RWD"
    i=$((i + 1))
done
nfcd_ticket neg-svc ro nfc "$D"
for s in neg-c43 neg-thumb neg-buf; do
    nfcd_ticket "$s" ro vpxa-nfc "$D"
done
[ -f "$NFCD_TICKETS/ro-1" ] || die "nfcd_ticket wrote no ticket"

py ro rw-ssl parallel
no_violations "the clean scenarios"
grep -q 'TLS #2 up' "$NFCD_LOG" || die "no TLS #2 in the log"
grep -q "CLASSIC 54 name='vddk' opId='nbdmode'" "$NFCD_LOG" || die "C54 strings not logged"
[ ! -f "$NFCD_TICKETS/ro-1" ] || die "a used ticket was not removed"
py negative
nv=$(nfcd_violations | wc -l)
[ "$nv" -eq 21 ] || die "expected 21 violations in the log, found $nv: $(nfcd_violations)"
stop_clean
[ "${NFCD_KEEP:-0}" = 1 ] || [ ! -e "${NFCD_LOG:-/nonexistent}" ] || die "nfcd_stop left the log"

# ---- lib version 7, --no-shuffle ---------------------------------------
nfcd_start --lib-version 7 --no-shuffle --seed 1
nfcd_ticket lib7-1 ro vpxa-nfc "$D"
py lib7
no_violations "lib7"
stop_clean

# ---- failure injection ---------------------------------------------------
nfcd_start --fail once --fail close-at=read:2
nfcd_ticket inj-1 ro vpxa-nfc "$D"
nfcd_ticket inj-2 ro vpxa-nfc "$D"
py inject-close
grep -q 'INJECT: close-at=read:2' "$NFCD_LOG" || die "close-at=read:2 not logged"
no_violations "inject-close"
stop_clean

nfcd_start --fail error-at=read:2:7 --fail stall-at=read:3 --fail error-at=write:1:8
nfcd_ticket inj-3 rw vpxa-nfc "$RWD"
py inject-errors
no_violations "inject-errors"
stop_clean

nfcd_start --fail error-at=open:13
nfcd_ticket inj-4 ro vpxa-nfc "$D"
py inject-open
no_violations "inject-open"
stop_clean

for step in tls1 session banner proxy tls2 classic aio open write:1; do
    nfcd_start --fail "close-at=$step"
    nfcd_ticket close-1 rw vpxa-nfc "$RWD"
    py "close-at=$step"
    grep -q "INJECT: close-at=$step" "$NFCD_LOG" || die "close-at=$step not logged"
    no_violations "close-at=$step"
    stop_clean
done

# close-at=accept: the client sees the connection end before the banner.
nfcd_start --fail close-at=accept
timeout 20 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
sys.exit(0 if s.recv(100) == b"" else 1)' "$NFCD_PORT" || die "close-at=accept: banner sent"
stop_clean

# Bad command lines.
if "$NFCD" --listen 127.0.0.1:0 >/dev/null 2>&1; then die "nfcd ran without --port-file"; fi
if "$NFCD" --listen 127.0.0.1:0 --port-file "$W/p" --cert x --key y --tickets "$W" \
    --fail close-at=nowhere >/dev/null 2>&1; then
    die "nfcd accepted a bad --fail spec"
fi
echo "$NAME: PASS"
