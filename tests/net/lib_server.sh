#!/bin/sh
# lib_server.sh - libvixDiskLib (through vixnet, a VDDK-style client) against
# `vddk serve`: reads, allocation map, metadata, backup and restore of a
# three-link chain, paths outside the datastore, read-only connections,
# thumbprints, PSK credentials, TLS policy, a server killed or frozen in
# the middle of a read, and 16 clients at once.
. "$(dirname "$0")/lib.sh"
need certtool qemu-img python3
[ -x "$VIXNET" ] || die "VIXNET is not set"
X=$VIXNET

MiB=1048576

# A three-link chain: base <- c1 <- c2, data in every link.
mkdir -p ds/vm ds/restore
run "$VDDK" create -s 64M ds/vm/base.vmdk >/dev/null
run "$VDDK" fill -o 1M -l 8M --random --seed 1 ds/vm/base.vmdk >/dev/null
run "$VDDK" fill -o 50M -l 64K -p 0x11 ds/vm/base.vmdk >/dev/null
run "$VDDK" snapshot ds/vm/base.vmdk ds/vm/c1.vmdk >/dev/null
run "$VDDK" fill -o 4M -l 2M --random --seed 2 ds/vm/c1.vmdk >/dev/null
run "$VDDK" fill -o 20M -l 1M -p 0x22 ds/vm/c1.vmdk >/dev/null
run "$VDDK" snapshot ds/vm/c1.vmdk ds/vm/c2.vmdk >/dev/null
run "$VDDK" fill -o 8M -l 100K --random --seed 3 ds/vm/c2.vmdk >/dev/null
run "$VDDK" fill -o 30M -l 1M -p 0x33 ds/vm/c2.vmdk >/dev/null
run qemu-img convert -f vmdk -O raw ds/vm/c2.vmdk ref.raw
REF=$(raw_sha ref.raw)
[ "$(disk_sha ds/vm/c2.vmdk)" = "$REF" ] || die "engine and qemu-img disagree on the chain"
"$VDDK" map ds/vm/c2.vmdk | vddk_data > ref.map

# A restore target full of stale data, and one of another size.
run "$VDDK" create -s 64M ds/restore/target.vmdk >/dev/null
run "$VDDK" fill -p 0xee ds/restore/target.vmdk >/dev/null
run "$VDDK" create -s 32M ds/restore/small.vmdk >/dev/null

# Things outside the datastore.
run "$VDDK" create -s 1M outside.vmdk >/dev/null
ln -s ../../outside.vmdk ds/vm/link.vmdk
run "$VDDK" snapshot outside.vmdk ds/vm/outchild.vmdk >/dev/null

mkpki pki
KEY=$(mkpsk keys.psk alice)

# ---- plain ----------------------------------------------------------------
serve plain.log --datastore "ds=$W/ds" --bind 127.0.0.1 --port 0
P="-p $PORT"
run $X $P -m nbd connect >/dev/null
ok
run $X $P -m nbd info "[ds] vm/c2.vmdk" > info.txt
grep -q '^links 3$' info.txt || die "GetInfo numLinks: $(cat info.txt)"
grep -q '^capacity 131072$' info.txt || die "GetInfo capacity: $(cat info.txt)"
grep -q '^transport nbd$' info.txt || die "GetTransportMode: $(cat info.txt)"
grep -q '^geometry 8/255/63$' info.txt || die "GetInfo geometry: $(cat info.txt)"
ok
log "read, async read, allocation map, metadata"
run $X $P read "[ds] vm/c2.vmdk" out.raw
cmp out.raw ref.raw || die "Read through NBD differs from the chain"
ok
run $X $P aread "[ds] vm/c2.vmdk" aout.raw 16
cmp aout.raw ref.raw || die "ReadAsync through NBD differs from the chain"
ok
run $X $P map "[ds] vm/c2.vmdk" > got.map
cmp -s got.map ref.map || die "QueryAllocatedBlocks differs: $(cat got.map) vs $(cat ref.map)"
ok
[ "$(run $X $P meta "[ds] vm/c2.vmdk" adapterType)" = lsilogic ] || die "ReadMetadata adapterType"
ok
fails 20 $X $P setmeta "[ds] vm/c2.vmdk" foo bar
fails 11 $X $P -r write "[ds] restore/target.vmdk" ref.raw

log "backup of the chain (streamOptimized and monolithicSparse)"
run $X $P backup "[ds] vm/c2.vmdk" "$W/bk.vmdk"
[ "$(disk_sha bk.vmdk)" = "$REF" ] || die "streamOptimized backup differs from the chain"
run qemu-img compare -f vmdk -F raw bk.vmdk ref.raw >/dev/null
ok
run $X $P backup "[ds] vm/c2.vmdk" "$W/bk2.vmdk" sparse
[ "$(disk_sha bk2.vmdk)" = "$REF" ] || die "monolithicSparse backup differs from the chain"
ok

log "restore over an export full of stale data"
run $X $P restore "$W/bk.vmdk" "[ds] restore/target.vmdk"
run $X $P read "[ds] restore/target.vmdk" rest.raw
cmp rest.raw ref.raw || die "restored export differs from the backup"
ok
fails 3 $X $P restore "$W/bk.vmdk" "[ds] restore/small.vmdk"

log "names outside the datastore"
# Outside or missing: the same reply (serve_paths.sh), VIX_E_FILE_NOT_FOUND.
fails 4 $X $P info "[ds] ../outside.vmdk"
fails 4 $X $P info "[ds] vm/link.vmdk"
fails 4 $X $P info "[ds] vm/outchild.vmdk"
fails 4 $X $P info "ds/vm/../../outside.vmdk"
fails 4 $X $P info "[ds] vm/none.vmdk"
fails 4 $X $P info "[other] vm/c2.vmdk"

log "16 clients at once"
i=0
while [ $i -lt 8 ]; do
    run "$VDDK" create -s 16M "ds/vm/d$i.vmdk" >/dev/null
    run "$VDDK" fill -o $((i * 128))K -l 5M --random --seed $((i + 10)) "ds/vm/d$i.vmdk" >/dev/null
    i=$((i + 1))
done
cpids=""
i=0
while [ $i -lt 16 ]; do
    d=$((i % 8))
    if [ $((i / 8)) -eq 0 ]; then
        timeout "$T" $X $P read "[ds] vm/d$d.vmdk" "c$i.raw" 2>"c$i.err" &
    else
        timeout "$T" $X $P aread "[ds] vm/d$d.vmdk" "c$i.raw" 8 2>"c$i.err" &
    fi
    cpids="$cpids $!"
    i=$((i + 1))
done
i=0
for p in $cpids; do
    wait "$p" || die "client $i failed: $(cat "c$i.err")"
    i=$((i + 1))
done
i=0
while [ $i -lt 16 ]; do
    d=$((i % 8))
    [ "$(raw_sha "c$i.raw")" = "$(disk_sha "ds/vm/d$d.vmdk")" ] || die "client $i read wrong data"
    i=$((i + 1))
done
ok

log "server killed in the middle of reading"
timeout "$T" $X $P readloop "[ds] vm/c2.vmdk" > loop.out 2> loop.err &
LPID=$!
wait_for loop.out reading "$LPID"
kill -9 "$SPID"
rc=0
wait "$LPID" || rc=$?
[ $rc -ne 124 ] || die "the client hung after the server died"
grep -q "error 14011:" loop.err || die "expected VIX_E_HOST_TCP_CONN_LOST, got: $(cat loop.err)"
ok
# Nothing listens any more: ConnectEx fails cleanly.
fails 18000 $X $P -m nbd connect

log "frozen server: the read timeout fires"
serve frozen.log --datastore "ds=$W/ds" --bind 127.0.0.1 --port 0
printf 'openvddk.net.ReadTimeoutMs = "1500"\n' > short.cfg
timeout "$T" $X -p "$PORT" -c short.cfg readloop "[ds] vm/c2.vmdk" > loop2.out 2> loop2.err &
LPID=$!
wait_for loop2.out reading "$LPID"
kill -STOP "$SPID"
rc=0
wait "$LPID" || rc=$?
kill -CONT "$SPID"
[ $rc -ne 124 ] || die "the client hung on a frozen server"
grep -q "error 14011:" loop2.err || die "expected a timeout (14011), got: $(cat loop2.err)"
grep -q "timed out" loop2.err || die "the message does not say it timed out: $(cat loop2.err)"
ok
# nbdssl only, but the server offers no TLS: refused.  The default mode
# list (nbdssl:nbd) falls back to plain.
fails 18000 $X -p "$PORT" -m nbdssl connect
run $X -p "$PORT" info "[ds] vm/c2.vmdk" | grep -q '^transport nbd$' || die "no fallback to nbd"
ok
stop "$SPID"

# ---- X.509 -------------------------------------------------------------------
serve x509.log --datastore "ds=$W/ds" --bind 127.0.0.1 --port 0 --tls=require \
    --tls-cert pki/server-cert.pem --tls-key pki/server-key.pem
P="-p $PORT"
SHA1=$(fingerprint pki/server-cert.pem sha1)
SHA256=$(fingerprint pki/server-cert.pem sha256)
OTHER=$(fingerprint pki/other-cert.pem sha1)
[ ${#SHA1} -eq 59 ] && [ ${#SHA256} -eq 95 ] || die "bad fingerprints: $SHA1 / $SHA256"
log "thumbprints"
run $X $P -m nbdssl -t "$SHA1" info "[ds] vm/c2.vmdk" > info.txt
grep -q '^transport nbdssl$' info.txt || die "GetTransportMode over TLS: $(cat info.txt)"
ok
run $X $P -m nbdssl -t "$SHA256" connect >/dev/null
ok
fails 30201 $X $P -m nbdssl -t "$OTHER" connect
grep -q "$OTHER" fails.err && grep -q "$SHA1" fails.err ||
    die "the mismatch message does not name both fingerprints: $(cat fails.err)"
ok
fails 30201 $X $P -m nbdssl connect
printf 'openvddk.net.CAFile = "%s"\n' "$W/pki/ca-cert.pem" > ca.cfg
run $X $P -m nbdssl -c ca.cfg connect >/dev/null
ok
fails 3 $X $P -m nbdssl -t "12:34" connect
log "TLS required, client in plain text"
fails 18000 $X $P -m nbd connect
grep -q "requires TLS" fails.err || die "the message does not say TLS is required: $(cat fails.err)"
ok
log "backup and read over TLS"
run $X $P -t "$SHA1" backup "[ds] vm/c2.vmdk" "$W/bk3.vmdk"
[ "$(disk_sha bk3.vmdk)" = "$REF" ] || die "backup over TLS differs"
ok
run $X $P -t "$SHA1" aread "[ds] vm/c2.vmdk" tout.raw 16
cmp tout.raw ref.raw || die "ReadAsync over TLS differs"
ok
stop "$SPID"

# ---- PSK ---------------------------------------------------------------------
serve psk.log --datastore "ds=$W/ds" --bind 127.0.0.1 --port 0 --tls-psk keys.psk
P="-p $PORT"
log "PSK credentials"
run $X $P -m nbdssl -u alice -w "$KEY" read "[ds] vm/c2.vmdk" pout.raw
cmp pout.raw ref.raw || die "read with PSK differs"
ok
WRONG=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
fails 35 $X $P -m nbdssl -u alice -w "$WRONG" connect
fails 35 $X $P -m nbdssl -u mallory -w "$KEY" connect
if timeout "$T" $X $P -m nbdssl connect >/dev/null 2>&1; then
    die "a client without credentials was served by a PSK server"
fi
ok
log "restore over TLS-PSK"
run "$VDDK" fill -p 0xee ds/restore/target.vmdk >/dev/null
run $X $P -u alice -w "$KEY" restore "$W/bk2.vmdk" "[ds] restore/target.vmdk"
stop "$SPID"
[ "$(disk_sha ds/restore/target.vmdk)" = "$REF" ] || die "restore over PSK: the export differs"
ok

echo "$NAME: $CHECKS checks passed"
