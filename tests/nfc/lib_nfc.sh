#!/bin/sh
# lib_nfc.sh - libvixDiskLib's nbd and nbdssl transports (VMware NFC)
# end to end: vcsim (tests/vsphere) issues the tickets, nfcd (this
# directory, a strict responder written from the protocol reference)
# serves the disks, tests/net/vixnet drives the public API.
#
# Checked: every VMDK type and a chain read equal to qemu-img's reading of
# the same files; ReadAsync at depths 1 to 100; writes with every codec
# over nbd and nbdssl; QueryAllocatedBlocks, GetInfo, metadata and keys;
# Clone both ways (backup, restore into the VM's disk); a snapshot's
# disks; direct-ESXi tickets (no host field); and the errors: wrong
# thumbprint on 902, a ticket the host does not know, drops at every
# handshake step and mid-transfer, server ERROR frames, a stalled reply
# (the config file's timeout; Read and ReadAsync) and a host that goes away.  nfcd must log no
# protocol violation throughout.
set -eu
NAME=lib_nfc
: "${VSPHERELIB:?}" "${VCSIM:?}" "${VIXNET:?}" "${VDDK:?}" "${NFCD:?}"
. "$VSPHERELIB"
die() { echo "$NAME: FAIL: $*" >&2; [ -f "${NFCD_LOG:-/}" ] && tail -20 "$NFCD_LOG" >&2; exit 1; }
log() { echo "$NAME: $*" >&2; }
for t in qemu-img certtool python3; do
    command -v $t >/dev/null 2>&1 || { log "SKIP: $t missing"; exit 77; }
done

. "$(dirname "$0")/lib.sh"
W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-nfc.XXXXXX")
trap 'nfcd_stop; vcsim_stop; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM HUP
T=${NFC_TIMEOUT:-120}

# nfcd must log no violation and exit cleanly; checked before each restart.
violations() {
    if [ -n "${NFCD_LOG:-}" ] && [ -n "$(nfcd_violations)" ]; then
        nfcd_violations | head -5 >&2
        die "nfcd logged protocol violations ($1)"
    fi
}
# start_nfcd [nfcd options...]: serve the tickets vcsim writes, with
# certificate $CERT (the one vcsim's tickets name unless a test says
# otherwise); sets NPORT.
CERT=$W/a
TICKETS=
start_nfcd() {
    violations "before a restart"
    nfcd_stop
    [ "${NFCD_STATUS:-0}" = 0 ] || die "nfcd exited with status $NFCD_STATUS"
    NFCD_TICKET_DIR=${TICKETS:-$W/tickets} NFCD_CERT_DIR=$CERT nfcd_start "$@" ||
        die "nfcd did not start"
    NPORT=$NFCD_PORT
}

nfcd_cert "$W/a"
nfcd_cert "$W/b"
mkdir "$W/tickets"
vcsim_start -user vuser -password 'pa ss' -nfc-cert "$W/a/cert.pem" \
    -nfc-tickets "$W/tickets" || exit $?
DS=$VCSIM_DS
VMDIR=$(dirname "$(vcsim_path_local "$VCSIM_DISK")")
VMREL=$(basename "$VMDIR")
export VIXNET_PASSWORD='pa ss'
# A running VM's current disk cannot be opened over NFC (as on ESXi).
vcsim_cmd "poweroff $VCSIM_VM" >/dev/null || die poweroff
start_nfcd

vx() { timeout "$T" "$VIXNET" -s "$VCSIM_HOST" -p "$VCSIM_PORT" -u vuser -t "$VCSIM_SHA1" \
           -v "moref=$VCSIM_VM" -N "$NPORT" "$@"; }
# expect CODE TEXT -- command: must fail with VixError CODE and TEXT in the message
expect() {
    code=$1 text=$2
    shift 3
    if "$@" >"$W/out" 2>"$W/err"; then die "succeeded, expected error $code: $*"; fi
    grep -q "error $code:" "$W/err" || die "expected error $code for: $* -- got: $(cat "$W/err")"
    grep -qF -- "$text" "$W/err" || die "expected '$text' in: $(cat "$W/err")"
}
setdisk() { vcsim_cmd "setdisk $VCSIM_VM $VCSIM_DISKKEY $*" >/dev/null || die "setdisk $*"; }
want() { qemu-img convert -O raw "$1" "$W/want.raw" || die "qemu-img convert $1"; }

# ---- every type, nbd and nbdssl, sync and async ------------------------------------
i=0
for t in monolithicSparse monolithicFlat twoGbMaxExtentSparse vmfs vmfsThin vmfsSparse \
         streamOptimized; do
    f="$VMDIR/t-$t.vmdk"
    if [ "$t" = streamOptimized ]; then
        "$VDDK" create -s 12M "$W/src.vmdk" >/dev/null
        "$VDDK" fill -q -o 1M -l 3M --random --seed 3 "$W/src.vmdk" >/dev/null
        "$VDDK" convert -q -t "$t" "$W/src.vmdk" "$f" >/dev/null || die "convert $t"
        rm -f "$W/src.vmdk"
    else
        "$VDDK" create -t "$t" -s 12M "$f" >/dev/null || die "create $t"
        "$VDDK" fill -q -o 1M -l 3M --random --seed 3 "$f" >/dev/null
        "$VDDK" fill -q -o 9M -l 100K -p 0x5a "$f" >/dev/null
    fi
    setdisk "[$DS] $VMREL/t-$t.vmdk"
    want "$f"
    m=nbd; [ $((i % 2)) = 1 ] && m=nbdssl
    i=$((i + 1))
    vx -m $m read "[$DS] $VMREL/t-$t.vmdk" "$W/got.raw" || die "read $t over $m"
    cmp "$W/want.raw" "$W/got.raw" || die "$t: $m read differs from qemu-img's"
    vx -m $m aread "[$DS] $VMREL/t-$t.vmdk" "$W/got.raw" 8 >/dev/null || die "aread $t"
    cmp "$W/want.raw" "$W/got.raw" || die "$t: $m ReadAsync differs"
    vx -m $m info "[$DS] $VMREL/t-$t.vmdk" >"$W/info" || die "info $t"
    grep -qx "transport $m" "$W/info" || die "$t: transport: $(cat "$W/info")"
    # Writes: the whole disk (streamOptimized disks are not writable yet).
    [ "$t" = streamOptimized ] && continue
    head -c 12M /dev/urandom >"$W/in12.raw"
    dd if=/dev/zero of="$W/in12.raw" bs=1M seek=4 count=4 conv=notrunc 2>/dev/null
    vx -m $m -z skipz write "[$DS] $VMREL/t-$t.vmdk" "$W/in12.raw" || die "write $t over $m"
    qemu-img convert -O raw "$f" "$W/got.raw"
    cmp "$W/in12.raw" "$W/got.raw" || die "$t: written over $m, the file differs"
done
violations types
# No modes given: nbdssl first, as VDDK.
vx info "[$DS] $VMREL/t-streamOptimized.vmdk" | grep -qx "transport nbdssl" || die "default mode is not nbdssl"
log "every type read and written over nbd and nbdssl equals qemu-img's reading"

# ---- a chain, codecs, depths -------------------------------------------------------
"$VDDK" create -s 24M "$VMDIR/base.vmdk" >/dev/null
"$VDDK" fill -q -o 0 -l 8M --random --seed 1 "$VMDIR/base.vmdk" >/dev/null
"$VDDK" snapshot "$VMDIR/base.vmdk" "$VMDIR/top.vmdk" >/dev/null || die "snapshot top"
"$VDDK" fill -q -o 2M -l 2M --random --seed 2 "$VMDIR/top.vmdk" >/dev/null
"$VDDK" fill -q -o 16M -l 1M -p 0x33 "$VMDIR/top.vmdk" >/dev/null
setdisk "[$DS] $VMREL/top.vmdk" "[$DS] $VMREL/base.vmdk"
D="[$DS] $VMREL/top.vmdk"
want "$VMDIR/top.vmdk"
# Each codec over both modes: reads here, writes below in the other mode.
for zm in none:nbd zlib:nbdssl fastlz:nbd skipz:nbdssl fastlz:nbdssl; do
    z=${zm%:*} m=${zm#*:}
    vx -m $m -z $z read "$D" "$W/got.raw" || die "read $z $m"
    cmp "$W/want.raw" "$W/got.raw" || die "chain: $m $z read differs"
done
# (Past 64 requests in flight on the connection, ReadAsync hands the rest
# to the worker threads, which wait for room.)
for d in 1 4 16 64 100; do
    vx -m nbd -z fastlz -b 128 aread "$D" "$W/got.raw" $d >/dev/null || die "aread depth $d"
    cmp "$W/want.raw" "$W/got.raw" || die "chain: ReadAsync depth $d (64 KiB requests) differs"
done
violations codecs
log "chain: every codec over nbd and nbdssl, ReadAsync depth 1 to 100"

# ---- allocation, info, metadata --------------------------------------------------------
vx -m nbd map "$D" >"$W/map" || die map
python3 - "$W/map" <<'EOF' || die "QueryAllocatedBlocks: $(cat "$W/map")"
import sys
runs = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
M = 1 << 20
K64 = 1 << 16
def covered(a, b):
    return all(any(o <= x < o + l for o, l in runs) for x in range(a, b, K64))
# data: base 0-8M, top 2-4M and 16-17M; everything else is a hole
assert covered(0, 8 * M) and covered(16 * M, 17 * M), runs
assert not covered(12 * M, 12 * M + K64), runs
assert sum(l for o, l in runs) <= 10 * M, runs
EOF
vx -m nbdssl info "$D" >"$W/info" || die info
grep -qx "capacity 49152" "$W/info" || die "capacity: $(cat "$W/info")"
grep -qx "adapter 3" "$W/info" || die "adapter: $(cat "$W/info")"
grep -q "^uuid -" "$W/info" && die "no uuid: $(cat "$W/info")"
vx -m nbd meta "$D" adapterType | grep -qx lsilogic || die "ReadMetadata adapterType"
vx -m nbd keys "$D" >"$W/keys" || die keys
grep -qx longContentID "$W/keys" && grep -qx adapterType "$W/keys" || die "keys: $(cat "$W/keys")"
expect 6 "no disk-database write" -- vx -m nbd setmeta "$D" foo bar
violations metadata
log "QueryAllocatedBlocks, GetInfo, ReadMetadata, GetMetadataKeys"

# ---- writes: every codec, then restore and backup ---------------------------------------
python3 - "$W/in.raw" <<'EOF'
import os, sys
M = 1 << 20
with open(sys.argv[1], "wb") as f:
    for i in range(24):
        f.write(os.urandom(M) if i % 2 == 0 else b"\0" * M)
EOF
for zm in none:nbdssl zlib:nbd fastlz:nbdssl skipz:nbd; do
    z=${zm%:*} m=${zm#*:}
    vx -m $m -z $z write "$D" "$W/in.raw" || die "write $z $m"
    qemu-img convert -O raw "$VMDIR/top.vmdk" "$W/got.raw"
    cmp "$W/in.raw" "$W/got.raw" || die "write $z over $m: the disk differs"
    "$VDDK" fill -q -o 0 -l 24M -p 0 "$VMDIR/top.vmdk" >/dev/null
done
vx -m nbdssl backup "$D" "$W/backup.vmdk" stream >/dev/null || die backup
qemu-img compare -q "$W/backup.vmdk" "$VMDIR/top.vmdk" || die "backup differs from the disk"
"$VDDK" create -s 24M "$W/restore.vmdk" >/dev/null
"$VDDK" fill -q -o 1M -l 6M --random --seed 8 "$W/restore.vmdk" >/dev/null
vx -m nbdssl -z skipz restore "$W/restore.vmdk" "$D" >/dev/null || die restore
qemu-img compare -q "$W/restore.vmdk" "$VMDIR/top.vmdk" || die "restore: the VM's disk differs"
vx -m nbdssl backup "$D" "$W/back2.vmdk" sparse >/dev/null || die "backup 2"
qemu-img compare -q "$W/restore.vmdk" "$W/back2.vmdk" || die "backup after restore differs"
violations writes
log "writes (every codec, nbd and nbdssl), restore and backup through Clone"

# ---- a snapshot's disks, a read-only connection ---------------------------------------
S1=$(vcsim_field "$(vcsim_cmd "snapshot $VCSIM_VM s1")" snapshot) || die snapshot
"$VDDK" snapshot "$VMDIR/top.vmdk" "$VMDIR/new.vmdk" >/dev/null || die "snapshot new"
setdisk "[$DS] $VMREL/new.vmdk" "[$DS] $VMREL/top.vmdk" "[$DS] $VMREL/base.vmdk"
want "$VMDIR/top.vmdk"
vx -m nbdssl -S "$S1" read "$D" "$W/got.raw" || die "read as of $S1"
cmp "$W/want.raw" "$W/got.raw" || die "snapshot read differs"
expect 4 "is not a disk of VM" -- vx -m nbd -S "$S1" info "[$DS] $VMREL/new.vmdk"
expect 11 "read-only" -- vx -m nbd -r swrite "[$DS] $VMREL/new.vmdk"
log "snapshot $S1 selects its disk; a read-only connection refuses writes"
D="[$DS] $VMREL/new.vmdk"
want "$VMDIR/new.vmdk"

# ---- the vddk tool: info, backup and restore over nbdssl ----------------------------------
printf '%s\n' 'pa ss' >"$W/pw"
v() { timeout "$T" "$VDDK" "$@" --server "$VCSIM_SERVER" --user vuser --password-file "$W/pw" \
          --thumbprint "$VCSIM_SHA1" --vm "$VCSIM_VM" --transport nbdssl --nfc-port "$NPORT"; }
v info "$D" >"$W/info" || die "vddk info"
grep -q "nbdssl" "$W/info" || die "vddk info: transport: $(cat "$W/info")"
v clone -q -t stream "$D" "$W/tool-backup.vmdk" >/dev/null || die "vddk clone (backup)"
qemu-img compare -q "$W/tool-backup.vmdk" "$VMDIR/new.vmdk" || die "vddk backup differs"
"$VDDK" create -s 24M "$W/tool-src.vmdk" >/dev/null
# (6 MiB of data: the zeros of the restore become zeroed grains over the
# parent's data, so the reads below see only these as allocated.)
"$VDDK" fill -q -o 3M -l 6M --random --seed 4 "$W/tool-src.vmdk" >/dev/null
rc=0; v clone -q "$W/tool-src.vmdk" "$D" >/dev/null 2>"$W/err" || rc=$?
[ $rc != 0 ] && grep -q "overWrite" "$W/err" || die "restore without --overwrite: $(cat "$W/err")"
v clone -q --overwrite "$W/tool-src.vmdk" "$D" >/dev/null || die "vddk clone (restore)"
qemu-img compare -q "$W/tool-src.vmdk" "$VMDIR/new.vmdk" || die "vddk restore differs"
want "$VMDIR/new.vmdk"
violations tool
log "vddk info, clone to local (backup) and clone --overwrite into the VM's disk (restore)"

# ---- errors ------------------------------------------------------------------------------
# The certificate on 902 is not the one the ticket names.
CERT=$W/b
start_nfcd
expect 30201 "thumbprint mismatch" -- vx -m nbdssl info "$D"
CERT=$W/a
# A ticket the host does not know (as a used one): vcsim writes it elsewhere.
TICKETS=$W/tickets-none
start_nfcd
expect 35 "refused the ticket" -- vx -m nbd info "$D"
TICKETS=
# Drops at every step of the handshake.
for step in accept tls1 session banner proxy tls2 classic aio open; do
    start_nfcd --fail close-at=$step
    m=nbd; [ $step = tls2 ] && m=nbdssl
    if vx -m $m info "$D" >"$W/out" 2>"$W/err"; then die "drop at $step: open succeeded"; fi
    grep -q "NFC" "$W/err" || die "drop at $step: $(cat "$W/err")"
done
log "wrong thumbprint on 902, unknown ticket, a drop at each handshake step"
# Mid-transfer: a drop, ERROR frames, a stall (the config file's timeout),
# a host going away.
start_nfcd --fail close-at=read:3
expect 14011 "connection lost" -- vx -m nbd read "$D" "$W/got.raw"
start_nfcd --fail error-at=read:2:7
expect 7 "server error 0x7" -- vx -m nbd read "$D" "$W/got.raw"
start_nfcd --fail error-at=write:1:13
expect 13 "server error 0xd" -- vx -m nbd swrite "$D"
start_nfcd --fail error-at=open:11
expect 11 "read-only" -- vx -m nbd swrite "$D"
printf 'vixDiskLib.nfc.ReadTimeoutMs = 1500\n' >"$W/cfg"
start_nfcd --fail stall-at=read:2
expect 14011 "timed out" -- vx -c "$W/cfg" -m nbd read "$D" "$W/got.raw"
# The same with ReadAsync: the calling thread sends those reads itself and
# nothing waits for their replies but the connection's reader.
start_nfcd --fail close-at=read:3
expect 14011 "connection lost" -- vx -m nbd -b 128 aread "$D" "$W/got.raw" 8
start_nfcd --fail error-at=read:2:7
expect 7 "server error 0x7" -- vx -m nbd -b 128 aread "$D" "$W/got.raw" 8
start_nfcd --fail stall-at=read:2
expect 14011 "timed out" -- vx -c "$W/cfg" -m nbd -b 128 aread "$D" "$W/got.raw" 8
violations errors
start_nfcd
vx -m nbd readloop "$D" >"$W/loop.out" 2>"$W/loop.err" &
LOOP=$!
i=0
until grep -q reading "$W/loop.out" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 300 ] || die "readloop did not start: $(cat "$W/loop.err")"
    sleep 0.1
done
violations "before the kill"
kill -9 "$NFCD_PID"; wait "$NFCD_PID" 2>/dev/null || true; NFCD_PID=
rc=0; wait $LOOP || rc=$?
[ $rc != 0 ] && grep -q "error 14014:" "$W/loop.err" ||
    die "host gone: expected 14014, got $rc: $(cat "$W/loop.err")"
log "a drop mid-read, ERROR frames (read, write, open), a stalled reply (Read and ReadAsync), a host gone"

# ---- direct ESXi: tickets without a host field, dialed at the server --------------------
vcsim_stop
vcsim_start -esx -user vuser -password 'pa ss' -nfc-cert "$W/a/cert.pem" \
    -nfc-tickets "$W/tickets" || exit $?
VMDIR=$(dirname "$(vcsim_path_local "$VCSIM_DISK")")
VMREL=$(basename "$VMDIR")
vcsim_cmd "poweroff $VCSIM_VM" >/dev/null || die "poweroff (esx)"
"$VDDK" create -s 8M "$VMDIR/e.vmdk" >/dev/null
"$VDDK" fill -q -o 1M -l 2M --random --seed 5 "$VMDIR/e.vmdk" >/dev/null
setdisk "[$VCSIM_DS] $VMREL/e.vmdk"
start_nfcd
want "$VMDIR/e.vmdk"
vx -m nbdssl read "[$VCSIM_DS] $VMREL/e.vmdk" "$W/got.raw" || die "esx read"
cmp "$W/want.raw" "$W/got.raw" || die "esx: read differs"
grep -q "PROXY nfcssl" "$NFCD_LOG" || die "esx: service was not nfcssl"
violations esx
log "direct ESXi tickets (no host, service nfc)"
log "PASS"
