#!/bin/sh
# lib_read.sh - libvixDiskLib against govmomi's vCenter simulator (vcsim):
# ConnectEx with a VM moref (user/password and session cookie), the https
# transport reading every VMDK type and a three-link chain equal to what
# qemu-img reads locally, snapshot selection, paths outside the VM, and the
# errors a user meets (thumbprint, credentials, moref, snapshot, spec type,
# modes, refused port, unresolvable and unreachable hosts, a port that
# does not speak TLS, connect and read timeouts from the config file,
# writes, sessions expiring mid-read, a simulator killed mid-read).
#
# vcsim lacks some things a real vCenter has; where a check cannot be made
# against it, the script says so instead of faking it:
#  - vcsim's /folder serves requests without a session; the harness's
#    -folder-auth makes it answer 401 unless the request carries the cookie
#    of a session the SessionManager still knows, as vCenter does, so that
#    sessions ended by TerminateSession (the harness's `expire`) expire
#    mid-read for real;
#  - AuthorizationManager.DisableMethods is missing: PrepareForAccess must
#    log that and succeed.
set -eu
NAME=lib_read
: "${VSPHERELIB:?}" "${VCSIM:?}" "${VIXNET:?}" "${VDDK:?}"
. "$VSPHERELIB"
die() { echo "$NAME: FAIL: $*" >&2; exit 1; }
log() { echo "$NAME: $*" >&2; }
command -v qemu-img >/dev/null 2>&1 || { log "SKIP: qemu-img missing"; exit 77; }
command -v curl >/dev/null 2>&1 || { log "SKIP: curl missing"; exit 77; }

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-vsphere.XXXXXX")
LISTENERS=
trap '[ -z "$LISTENERS" ] || kill "$LISTENERS" 2>/dev/null || :; vcsim_stop; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM HUP
T=${VSPHERE_TIMEOUT:-120}

vcsim_start -user vuser -password 'pa ss' -folder-auth || exit $?
DS=$VCSIM_DS
VMDIR=$(dirname "$(vcsim_path_local "$VCSIM_DISK")")
VMREL=$(basename "$VMDIR")
export VIXNET_PASSWORD='pa ss'
vx() { timeout "$T" "$VIXNET" -s "$VCSIM_HOST" -p "$VCSIM_PORT" -u vuser -t "$VCSIM_SHA1" \
           -v "moref=$VCSIM_VM" "$@"; }
# expect CODE TEXT -- vixnet args: must fail with VixError CODE, text containing TEXT
expect() {
    code=$1 text=$2
    shift 3
    if "$@" >"$W/out" 2>"$W/err"; then die "succeeded, expected error $code: $*"; fi
    grep -q "error $code:" "$W/err" || die "expected error $code for: $* -- got: $(cat "$W/err")"
    grep -qF -- "$text" "$W/err" || die "expected '$text' in: $(cat "$W/err")"
}
setdisk() { vcsim_cmd "setdisk $VCSIM_VM $VCSIM_DISKKEY $*" >/dev/null || die "setdisk $*"; }
# check_equal "[ds] path" local_file: remote read (sync and async) == qemu-img's raw
check_equal() {
    qemu-img convert -O raw "$2" "$W/want.raw" || die "qemu-img convert $2"
    vx read "$1" "$W/got.raw" || die "read $1"
    cmp "$W/want.raw" "$W/got.raw" || die "$1: remote read differs from qemu-img's local read"
    vx aread "$1" "$W/agot.raw" 8 >/dev/null || die "aread $1"
    cmp "$W/want.raw" "$W/agot.raw" || die "$1: ReadAsync differs"
}

# ---- every type -------------------------------------------------------------
for t in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat vmfs \
         vmfsThin vmfsSparse streamOptimized; do
    f="$VMDIR/t-$t.vmdk"
    if [ "$t" = streamOptimized ]; then
        "$VDDK" create -s 12M "$W/src.vmdk" >/dev/null
        "$VDDK" fill -q -o 1M -l 3M --random --seed 3 "$W/src.vmdk" >/dev/null
        "$VDDK" fill -q -o 9M -l 100K -p 0x5a "$W/src.vmdk" >/dev/null
        "$VDDK" convert -q -t "$t" "$W/src.vmdk" "$f" >/dev/null || die "convert $t"
        rm -f "$W/src.vmdk"
    else
        "$VDDK" create -t "$t" -s 12M "$f" >/dev/null || die "create $t"
        "$VDDK" fill -q -o 1M -l 3M --random --seed 3 "$f" >/dev/null
        "$VDDK" fill -q -o 9M -l 100K -p 0x5a "$f" >/dev/null
    fi
    setdisk "[$DS] $VMREL/t-$t.vmdk"
    check_equal "[$DS] $VMREL/t-$t.vmdk" "$f"
    vx info "[$DS] $VMREL/t-$t.vmdk" >"$W/info" || die "info $t"
    grep -q https "$W/info" || die "$t: transport is not https: $(cat "$W/info")"
    log "type $t: remote reads equal qemu-img's"
done

# ---- connections are kept ---------------------------------------------------
# ReadAsync at depth 16 of 64 KiB requests: 192 range GETs from 16 workers
# must reuse their kept-alive connections (libcurl's default cache of 5
# closed one, TLS and all, after nearly every request).
setdisk "[$DS] $VMREL/t-vmfs.vmdk"
VIXNET_LOG=1 vx -b 128 aread "[$DS] $VMREL/t-vmfs.vmdk" "$W/agot.raw" 16 >/dev/null \
    2>"$W/conns" || die "aread depth 16"
qemu-img convert -O raw "$VMDIR/t-vmfs.vmdk" "$W/want.raw"
cmp "$W/want.raw" "$W/agot.raw" || die "ReadAsync depth 16 differs"
set -- $(sed -n 's/.*file service: \([0-9]*\) range requests on \([0-9]*\) new connections.*/\1 \2/p' \
             "$W/conns")
[ $# -eq 2 ] || die "no connection count in the log: $(cat "$W/conns")"
[ "$1" -ge 192 ] && [ "$2" -le 20 ] ||
    die "depth 16: $1 range requests opened $2 connections (16 workers should keep theirs)"
log "ReadAsync depth 16: $1 range requests on $2 new connections"
setdisk "[$DS] $VMREL/t-streamOptimized.vmdk"   # the chain's snapshot s1 takes this one

# ---- a three-link chain (sparse base, sparse and vmfsSparse deltas) ---------
"$VDDK" create -s 16M "$VMDIR/base.vmdk" >/dev/null
"$VDDK" fill -q -o 0 -l 8M --random --seed 1 "$VMDIR/base.vmdk" >/dev/null
S1=$(vcsim_cmd "snapshot $VCSIM_VM s1") || die "snapshot"
setdisk "[$DS] $VMREL/base.vmdk"          # not yet: the snapshot above named t-stream
S1=$(vcsim_field "$S1" snapshot)
"$VDDK" snapshot "$VMDIR/base.vmdk" "$VMDIR/mid.vmdk" >/dev/null || die "snapshot mid"
"$VDDK" fill -q -o 2M -l 2M --random --seed 2 "$VMDIR/mid.vmdk" >/dev/null
"$VDDK" snapshot "$VMDIR/mid.vmdk" "$VMDIR/top.vmdk" >/dev/null ||
    die "snapshot top"
"$VDDK" fill -q -o 3M -l 64K -p 0x77 "$VMDIR/top.vmdk" >/dev/null
S2=$(vcsim_field "$(vcsim_cmd "snapshot $VCSIM_VM s2")" snapshot) || die "snapshot s2"
setdisk "[$DS] $VMREL/top.vmdk" "[$DS] $VMREL/mid.vmdk" "[$DS] $VMREL/base.vmdk"
check_equal "[$DS] $VMREL/top.vmdk" "$VMDIR/top.vmdk"
vx info "[$DS] $VMREL/top.vmdk" | grep -q "links 3" || die "chain: not 3 links"
vx map "[$DS] $VMREL/top.vmdk" >"$W/map" || die "map"
[ -s "$W/map" ] || die "QueryAllocatedBlocks gave nothing"
vx meta "[$DS] $VMREL/top.vmdk" adapterType | grep -q lsilogic || die "ReadMetadata"
vx keys "[$DS] $VMREL/top.vmdk" | grep -q longContentID || die "GetMetadataKeys"
vx space "[$DS] $VMREL/top.vmdk" sparse >/dev/null || die "SpaceNeededForClone"
vx mode "[$DS] $VMREL/top.vmdk" | grep -qx https || die "GetTransportMode"
# A parent of the chain may be opened by itself; SINGLE_LINK reads one link.
vx read "[$DS] $VMREL/mid.vmdk" "$W/mid.raw" || die "open a parent of the chain"
qemu-img convert -O raw "$VMDIR/mid.vmdk" "$W/mid.want"
cmp "$W/mid.raw" "$W/mid.want" || die "parent read differs"
vx -1 info "[$DS] $VMREL/top.vmdk" | grep -q "links 1" || die "SINGLE_LINK"
# Backup: Clone from the remote disk to a local file.
vx backup "[$DS] $VMREL/top.vmdk" "$W/backup.vmdk" stream >/dev/null || die "backup"
qemu-img convert -O raw "$W/backup.vmdk" "$W/backup.raw"
qemu-img convert -O raw "$VMDIR/top.vmdk" "$W/top.raw"
cmp "$W/backup.raw" "$W/top.raw" || die "backup differs from the disk"
log "chain of 3: reads, map, metadata, single link, backup as local"

# ---- snapshots ------------------------------------------------------------------
# s1 was taken while the disk was t-streamOptimized; s2 while it was base.
vx -S "$S2" read "[$DS] $VMREL/base.vmdk" "$W/s2.raw" || die "read as of snapshot $S2"
qemu-img convert -O raw "$VMDIR/base.vmdk" "$W/base.raw"
cmp "$W/s2.raw" "$W/base.raw" || die "snapshot read differs"
expect 4 "is not a disk of VM" -- vx -S "$S2" info "[$DS] $VMREL/top.vmdk"
expect 4 "is not a disk of VM" -- vx -S "$S1" info "[$DS] $VMREL/base.vmdk"
vx -S "$S1" info "[$DS] $VMREL/t-streamOptimized.vmdk" >/dev/null || die "snapshot $S1 disk"
expect 4 "is not a snapshot of" -- vx -S snapshot-99999 connect
log "snapshots $S1 $S2 select their disks"

# ---- errors ----------------------------------------------------------------------
expect 4 "is not a disk of VM" -- vx info "[$DS] $VMREL/t-vmfs.vmdk"
expect 4 "no virtual machine with moref vm-99999" -- \
    "$VIXNET" -s "$VCSIM_HOST" -p "$VCSIM_PORT" -u vuser -t "$VCSIM_SHA1" -v moref=vm-99999 connect
BAD=$(echo "$VCSIM_SHA1" | sed 's/^../00/')
[ "$BAD" != "$VCSIM_SHA1" ] || BAD=$(echo "$VCSIM_SHA1" | sed 's/^../11/')
expect 30201 "expected $BAD" -- \
    "$VIXNET" -s "$VCSIM_HOST" -p "$VCSIM_PORT" -u vuser -t "$BAD" -v "moref=$VCSIM_VM" connect
grep -qF "presented $VCSIM_SHA1" "$W/err" || die "mismatch text lacks the actual thumbprint"
# SHA-256 pins, in lower case, work as well.
LOW=$(echo "$VCSIM_SHA256" | tr 'A-F' 'a-f')
"$VIXNET" -s "$VCSIM_HOST" -p "$VCSIM_PORT" -u vuser -t "$LOW" -v "moref=$VCSIM_VM" connect \
    >/dev/null || die "SHA-256 thumbprint"
# No thumbprint: the self-signed certificate is not trusted; say so.
expect 30201 "not trusted" -- \
    "$VIXNET" -s "$VCSIM_HOST" -p "$VCSIM_PORT" -u vuser -v "moref=$VCSIM_VM" connect
grep -qF "$VCSIM_SHA1" "$W/err" || die "untrusted text lacks the thumbprint"
expect 35 "wrong user name or password" -- env VIXNET_PASSWORD=nope \
    "$VIXNET" -s "$VCSIM_HOST" -p "$VCSIM_PORT" -u vuser -t "$VCSIM_SHA1" -v "moref=$VCSIM_VM" connect
expect 6 "vStorageObject" -- vx -T 1 connect
expect 6 "datastore connections" -- vx -T 2 connect
expect 18000 "none of the transport modes \"hotadd:san\"" -- vx -m hotadd:san connect
vx -m nbd:https connect >/dev/null || die "modes nbd:https"
expect 6 "cannot write" -- vx -m https swrite "[$DS] $VMREL/top.vmdk"
# A port nothing listens on.
P2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
expect 14009 "connection refused" -- \
    "$VIXNET" -s 127.0.0.1 -p "$P2" -u vuser -t "$VCSIM_SHA1" -v "moref=$VCSIM_VM" connect
# PrepareForAccess / EndAccess: vcsim has no DisableMethods; both succeed.
vx prepare | grep -qx ok || die "PrepareForAccess"
vx endaccess | grep -qx ok || die "EndAccess"
vx cleanup | grep -qx "cleaned 0 remaining 0" || die "Cleanup"
log "errors: unknown disk, moref, snapshot, thumbprints, credentials, spec, modes, refused, write"

# ---- a session cookie instead of a password ------------------------------------
soap() {
    curl -sk -b "$1" -c "$W/jar" -H 'Content-Type: text/xml' -H 'SOAPAction: "urn:vim25/6.5"' \
        --data "<?xml version=\"1.0\"?><Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\"><Body>$2</Body></Envelope>" \
        "$VCSIM_URL"
}
soap "" '<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>vuser</userName><password>pa ss</password></Login>' >/dev/null
COOKIE=$(awk '$6 == "vmware_soap_session" { print $7 }' "$W/jar")
[ -n "$COOKIE" ] || die "no cookie from a Login made with curl"
"$VIXNET" -s "$VCSIM_HOST" -p "$VCSIM_PORT" -t "$VCSIM_SHA1" -v "moref=$VCSIM_VM" -k "$COOKIE" \
    read "[$DS] $VMREL/top.vmdk" "$W/c.raw" || die "read with a session cookie"
cmp "$W/c.raw" "$W/top.raw" || die "cookie read differs"
# The library did not log that session out: it is the caller's.
soap "vmware_soap_session=$COOKIE" '<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>SessionManager</type><pathSet>currentSession</pathSet></propSet><objectSet><obj type="SessionManager">SessionManager</obj></objectSet></specSet><options/></RetrievePropertiesEx>' |
    grep -q vuser || die "the caller's session was logged out"
soap "vmware_soap_session=$COOKIE" '<Logout xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this></Logout>' >/dev/null
expect 35 "not (or no longer) a valid session" -- \
    "$VIXNET" -s "$VCSIM_HOST" -p "$VCSIM_PORT" -t "$VCSIM_SHA1" -v "moref=$VCSIM_VM" -k "$COOKIE" connect
log "session cookie: used, kept, and refused once logged out"

# ---- hosts that cannot be reached, ports that do not speak TLS, timeouts --------
printf 'openvddk.net.ConnectTimeoutMs = "1500"\n' >"$W/ct.cfg"
expect 18000 "does not resolve" -- \
    "$VIXNET" -s no-such-host.invalid -u vuser -t "$VCSIM_SHA1" -v "moref=$VCSIM_VM" connect
# An unreachable host: in a network namespace of its own (no routes at
# all) every address is unreachable.  Not on the machine's own network:
# here a proxy answers TLS for any IPv4 address, and what an unrouted
# address does elsewhere depends on that network.
if unshare -n true 2>/dev/null; then
    expect 18000 "cannot connect (Network is unreachable)" -- unshare -n \
        "$VIXNET" -c "$W/ct.cfg" -s 198.51.100.1 -u vuser -t "$VCSIM_SHA1" -v "moref=$VCSIM_VM" connect
else
    log "unreachable host not checked: unshare -n is not permitted here"
fi
# Two listeners on loopback (python3): one answers in plain HTTP and
# closes (a port that is not TLS), one accepts and says nothing (a hung
# server: the handshake must time out by the config file's limit).
python3 -c '
import socket, threading, time
def serve(s, speak):
    while True:
        c, _ = s.accept()
        if speak:
            c.recv(4096)
            c.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            c.close()
        else:
            threading.Thread(target=lambda c=c: (time.sleep(600), c.close()), daemon=True).start()
ports = []
for speak in (True, False):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
    ports.append(s.getsockname()[1])
    threading.Thread(target=serve, args=(s, speak), daemon=True).start()
print(*ports, flush=True)
threading.Event().wait()
' </dev/null >"$W/ports" 2>"$W/ports.err" &
LISTENERS=$!
i=0
while [ ! -s "$W/ports" ]; do
    i=$((i + 1)); [ $i -lt 100 ] || die "listeners did not start: $(cat "$W/ports.err")"; sleep 0.1
done
read -r PLAIN SILENT <"$W/ports"
expect 18000 "TLS handshake failed" -- \
    "$VIXNET" -s 127.0.0.1 -p "$PLAIN" -u vuser -t "$VCSIM_SHA1" -v "moref=$VCSIM_VM" connect
expect 18000 "timed out" -- timeout 60 \
    "$VIXNET" -c "$W/ct.cfg" -s 127.0.0.1 -p "$SILENT" -u vuser -t "$VCSIM_SHA1" -v "moref=$VCSIM_VM" connect
grep -qF "connect 1500 ms" "$W/err" || die "the timeout text does not name the configured limit: $(cat "$W/err")"
kill "$LISTENERS" 2>/dev/null || :
LISTENERS=
log "errors: unresolvable, unreachable, not TLS, silent server (connect timeout)"

# ---- sessions that expire mid-read, a server that stalls mid-read ----------------
# (VMDIR/big.vmdk: 256 MiB of zeros in a flat file, read over and over.)
"$VDDK" create -t vmfs -s 256M "$VMDIR/big.vmdk" >/dev/null
setdisk "[$DS] $VMREL/big.vmdk"
# start_loop [vixnet options]: readloop in the background, once it reads
start_loop() {
    # The redirection truncates loop.out in the child, which may run after the
    # first grep below: a "reading" left by the previous loop would pass it.
    rm -f "$W/loop.out"
    VIXNET_LOG=1 vx "$@" readloop "[$DS] $VMREL/big.vmdk" >"$W/loop.out" 2>"$W/loop.err" &
    LP=$!
    i=0
    while ! grep -q reading "$W/loop.out" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 300 ] || die "readloop did not start: $(cat "$W/loop.err")"
        kill -0 $LP 2>/dev/null || die "readloop ended: $(cat "$W/loop.err")"
        sleep 0.1
    done
}
# wait_relogins N: until the log shows N new logins (30 s at most)
wait_relogins() {
    i=0
    while [ "$(grep -c "logged in again" "$W/loop.err")" -lt "$1" ]; do
        i=$((i + 1))
        [ $i -lt 300 ] || die "no new login after the session expired: $(tail -5 "$W/loop.err")"
        kill -0 $LP 2>/dev/null || die "the read failed when its session expired: $(tail -3 "$W/loop.err")"
        sleep 0.1
    done
}
start_loop
N=$(vcsim_field "$(vcsim_cmd "expire vuser")" expired)
[ "$N" -ge 1 ] || die "expire ended no session"
wait_relogins 1
# Each expiry costs one new login; the read goes on.
vcsim_cmd "expire vuser" >/dev/null
wait_relogins 2
kill -0 $LP 2>/dev/null || die "the read failed after a new login: $(tail -3 "$W/loop.err")"
# A server that refuses the new session too: one new login, then the error.
vcsim_cmd "folderauth deny" >/dev/null
rc=0; wait $LP || rc=$?
[ $rc -ne 0 ] || die "readloop did not fail"
grep -q "error 35:" "$W/loop.err" || die "refused after a new login: expected VIX_E_AUTHENTICATION_FAIL, got: $(tail -3 "$W/loop.err")"
grep -q "after logging in again" "$W/loop.err" || die "the text does not say a new login was tried: $(tail -1 "$W/loop.err")"
vcsim_cmd "folderauth check" >/dev/null
log "expired sessions: one new login each, the read goes on; refused again: $(grep -o 'HTTP [0-9]* after logging in again' "$W/loop.err" | head -1)"
# A server that stops answering mid-read: the read fails by the config
# file's no-progress limit, then the server is let go again.
printf 'openvddk.net.ReadTimeoutMs = "2000"\n' >"$W/rt.cfg"
start_loop -c "$W/rt.cfg"
kill -STOP "$VCSIM_PID"
rc=0; wait $LP || rc=$?
kill -CONT "$VCSIM_PID"
[ $rc -ne 0 ] || die "readloop did not fail while the server was stopped"
grep -q "error 14011:" "$W/loop.err" || die "stalled server: expected VIX_E_HOST_TCP_CONN_LOST, got: $(tail -3 "$W/loop.err")"
grep -q "no progress 2000 ms" "$W/loop.err" || die "the timeout text does not name the configured limit: $(tail -1 "$W/loop.err")"
log "stalled server: $(grep -o "error 14011:.*" "$W/loop.err" | head -c 300)"

# ---- the simulator killed mid-read ------------------------------------------------
start_loop
sleep 0.3
vcsim_kill
rc=0; wait $LP || rc=$?
[ $rc -ne 0 ] || die "readloop did not fail when the server went away"
grep -q "error 14011:" "$W/loop.err" || die "server gone: expected VIX_E_HOST_TCP_CONN_LOST, got: $(cat "$W/loop.err")"
log "server killed mid-read: $(grep -o "error 14011:.*" "$W/loop.err" | head -c 200)"
echo "$NAME: PASS"
