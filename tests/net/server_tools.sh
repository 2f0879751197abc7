#!/bin/sh
# server_tools.sh - `vddk serve` against real NBD clients: nbdinfo (size,
# contexts, map), nbdcopy in both directions, qemu-img convert and map,
# over nbd:// and nbd+unix://, in plain text, with X.509 and with PSK.
# References come from qemu-img reading the VMDK files directly.
. "$(dirname "$0")/lib.sh"
need nbdinfo nbdcopy qemu-img certtool python3

MiB=1048576
SIZE=$((64 * MiB))

# A two-link chain with data in both links, and a disk to write into.
mkdir -p ds/vm
run "$VDDK" create -s 64M ds/vm/base.vmdk >/dev/null
run "$VDDK" create -s 64M ds/vm/w.vmdk >/dev/null
run "$VDDK" fill -o 1M -l 3M --random --seed 1 ds/vm/base.vmdk >/dev/null
run "$VDDK" fill -o 40M -l 64K -p 0x5a ds/vm/base.vmdk >/dev/null
run "$VDDK" snapshot ds/vm/base.vmdk ds/vm/child.vmdk >/dev/null
run "$VDDK" fill -o 2M -l 100K --random --seed 2 ds/vm/child.vmdk >/dev/null
run "$VDDK" fill -o 20M -l 1M -p 0x77 ds/vm/child.vmdk >/dev/null
run qemu-img convert -f vmdk -O raw ds/vm/child.vmdk ref.raw
"$VDDK" map ds/vm/child.vmdk | vddk_data > ref.map
[ -s ref.map ] || die "no data in the reference map"
head -c $SIZE /dev/urandom > in.raw
dd if=/dev/zero of=in.raw bs=1M seek=30 count=4 conv=notrunc status=none   # a zero run

mkpki pki
K=$(mkpsk keys.psk alice)
[ -n "$K" ] || die "no PSK"

# check MODE READ_URI WRITE_URI QEMU_SRC QEMU_WRITE: one round of checks.
# QEMU_SRC/QEMU_WRITE are qemu-img source arguments (a URI, or
# --image-opts with an --object).
check() {
    mode=$1 ru=$2 wu=$3
    log "$mode: nbdinfo"
    size=$(timeout "$T" nbdinfo --size "$ru") || die "$mode: nbdinfo --size failed"
    [ "$size" = "$SIZE" ] || die "$mode: nbdinfo size $size, expected $SIZE"
    ok
    timeout "$T" nbdinfo --json "$ru" > info.json || die "$mode: nbdinfo --json failed"
    grep -q '"base:allocation"' info.json || die "$mode: base:allocation not listed"
    ok
    timeout "$T" nbdinfo --map "$ru" | nbdinfo_data > got.map || die "$mode: nbdinfo --map"
    cmp -s got.map ref.map || die "$mode: nbdinfo --map data runs differ:
$(cat got.map)
expected:
$(cat ref.map)"
    ok
    log "$mode: nbdcopy from the server"
    rm -f out.raw
    run nbdcopy "$ru" out.raw
    cmp out.raw ref.raw || die "$mode: nbdcopy read differs from qemu-img's reading"
    ok
    log "$mode: nbdcopy to the server"
    run nbdcopy in.raw "$wu"
    rm -f back.raw
    run nbdcopy "$wu" back.raw
    cmp back.raw in.raw || die "$mode: data written with nbdcopy did not come back"
    ok
}

# qcheck MODE ARGS...: qemu-img convert and map through ARGS (its source).
qcheck() {
    mode=$1
    shift
    log "$mode: qemu-img convert and map"
    rm -f q.raw
    timeout "$T" qemu-img convert -O raw "$@" q.raw || die "$mode: qemu-img convert failed"
    cmp q.raw ref.raw || die "$mode: qemu-img convert through NBD differs"
    ok
    timeout "$T" qemu-img map --output=json "$@" > qmap.json || die "$mode: qemu-img map failed"
    python3 - qmap.json > got.map <<'EOF'
import json, sys
runs = [(e["start"], e["length"]) for e in json.load(open(sys.argv[1])) if e["data"]]
out = []
for s, l in runs:
    if out and out[-1][0] + out[-1][1] == s:
        out[-1][1] += l
    else:
        out.append([s, l])
for s, l in out:
    print(s, l)
EOF
    cmp -s got.map ref.map || die "$mode: qemu-img map data runs differ: $(cat got.map)"
    ok
}

# ---- plain TCP and Unix socket ------------------------------------------------
serve plain.log --datastore "ds=$W/ds" --bind 127.0.0.1 --port 0 --unix "$W/nbd.sock"
[ -n "$PORT" ] || die "no port in the server log"
check plain "nbd://127.0.0.1:$PORT/ds/vm/child.vmdk" "nbd://127.0.0.1:$PORT/ds/vm/w.vmdk"
check unix "nbd+unix:///ds/vm/child.vmdk?socket=$W/nbd.sock" \
    "nbd+unix:///ds/vm/w.vmdk?socket=$W/nbd.sock"
# The VDDK-style name works too (percent-encoded in a URI).
size=$(timeout "$T" nbdinfo --size "nbd://127.0.0.1:$PORT/%5Bds%5D%20vm/child.vmdk") ||
    die "nbdinfo with a [ds] export name failed"
[ "$size" = "$SIZE" ] || die "[ds] export name: size $size"
ok
timeout "$T" nbdinfo --list "nbd://127.0.0.1:$PORT/" > list.txt || die "nbdinfo --list failed"
grep -q '\[ds\] vm/child.vmdk' list.txt || die "nbdinfo --list misses [ds] vm/child.vmdk"
! grep -q 'extent\|flat' list.txt || die "nbdinfo --list shows extent files"
ok
qcheck plain "nbd://127.0.0.1:$PORT/ds/vm/child.vmdk"
qcheck unix "nbd+unix:///ds/vm/child.vmdk?socket=$W/nbd.sock"
# SIGTERM: everything written is flushed into the VMDK before exit.
run nbdcopy ref.raw "nbd://127.0.0.1:$PORT/ds/vm/w.vmdk"
stop "$SPID"
grep -q "stopped" plain.log || die "no clean stop in the log: $(tail -3 plain.log)"
[ "$(disk_sha ds/vm/w.vmdk)" = "$(raw_sha ref.raw)" ] ||
    die "w.vmdk does not hold what was written before SIGTERM"
ok

# ---- read-only, single link ----------------------------------------------------
serve ro.log --datastore "ds=$W/ds" --bind 127.0.0.1 --port 0 --single-link
if timeout "$T" nbdcopy in.raw "nbd://127.0.0.1:$PORT/ds/vm/w.vmdk" 2>/dev/null; then
    die "nbdcopy wrote to a read-only server"
fi
ok
timeout "$T" nbdinfo --map "nbd://127.0.0.1:$PORT/ds/vm/child.vmdk" | nbdinfo_data > got.map
"$VDDK" map --single-link ds/vm/child.vmdk | vddk_data > single.map
cmp -s got.map single.map || die "--single-link map differs from vddk map --single-link"
ok
stop "$SPID"

# ---- X.509 --------------------------------------------------------------------
serve x509.log --datastore "ds=$W/ds" --bind 127.0.0.1 --port 0 --unix "$W/tls.sock" \
    --tls=require --tls-cert pki/server-cert.pem --tls-key pki/server-key.pem
if timeout "$T" nbdinfo --size "nbd://127.0.0.1:$PORT/ds/vm/child.vmdk" >/dev/null 2>&1; then
    die "a plain client was served by a --tls=require server"
fi
ok
check x509 "nbds://127.0.0.1:$PORT/ds/vm/child.vmdk?tls-certificates=$W/pki" \
    "nbds://127.0.0.1:$PORT/ds/vm/w.vmdk?tls-certificates=$W/pki"
check x509-unix "nbds+unix:///ds/vm/child.vmdk?socket=$W/tls.sock&tls-certificates=$W/pki" \
    "nbds+unix:///ds/vm/w.vmdk?socket=$W/tls.sock&tls-certificates=$W/pki"
qcheck x509 --object "tls-creds-x509,id=tls0,dir=$W/pki,endpoint=client" --image-opts \
    "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=$PORT,export=ds/vm/child.vmdk,tls-creds=tls0"
qcheck x509-unix --object "tls-creds-x509,id=tls0,dir=$W/pki,endpoint=client" --image-opts \
    "driver=nbd,server.type=unix,server.path=$W/tls.sock,export=ds/vm/child.vmdk,tls-creds=tls0,tls-hostname=localhost"
stop "$SPID"

# ---- PSK ----------------------------------------------------------------------
serve psk.log --datastore "ds=$W/ds" --bind 127.0.0.1 --port 0 --tls=on --tls-psk keys.psk
check psk "nbds://alice@127.0.0.1:$PORT/ds/vm/child.vmdk?tls-psk-file=$W/keys.psk" \
    "nbds://alice@127.0.0.1:$PORT/ds/vm/w.vmdk?tls-psk-file=$W/keys.psk"
mkdir -p pskdir
cp keys.psk pskdir/keys.psk
qcheck psk --object "tls-creds-psk,id=tls0,dir=$W/pskdir,username=alice,endpoint=client" \
    --image-opts \
    "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=$PORT,export=ds/vm/child.vmdk,tls-creds=tls0"
# --tls=on: clients without TLS are served as well.
size=$(timeout "$T" nbdinfo --size "nbd://127.0.0.1:$PORT/ds/vm/child.vmdk") ||
    die "--tls=on refused a plain client"
ok
# A wrong key is refused.
echo "alice:$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" > wrong.psk
if timeout "$T" nbdinfo --size "nbds://alice@127.0.0.1:$PORT/ds/vm/child.vmdk?tls-psk-file=$W/wrong.psk" \
    >/dev/null 2>&1; then
    die "a wrong PSK was accepted"
fi
ok
stop "$SPID"

echo "$NAME: $CHECKS checks passed"
