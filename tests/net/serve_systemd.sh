#!/bin/sh
# serve_systemd.sh - `vddk serve` as a systemd service, without systemd:
# sockets passed with LISTEN_FDS/LISTEN_PID (a python3 exec wrapper binds
# them first), readiness and reload messages to NOTIFY_SOCKET (a python3
# datagram socket), the config file (--config) with its errors, SIGHUP
# reloads (a datastore added and one removed while a qemu-io connection
# stays open and keeps working; a PSK file rotated; a broken config kept
# out), and journal-style log lines when JOURNAL_STREAM names stderr.
. "$(dirname "$0")/lib.sh"
need python3 nbdinfo qemu-io qemu-img

mkdir -p ds1/vm ds2/vm
run "$VDDK" create -s 16M ds1/vm/a.vmdk >/dev/null
run "$VDDK" fill -l 4M -p 0xab ds1/vm/a.vmdk >/dev/null
run "$VDDK" create -s 32M ds2/vm/b.vmdk >/dev/null

# ---- NOTIFY_SOCKET: a datagram socket that writes each message as a line -----
python3 - "$W/notify.sock" "$W/notify.log" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        m = s.recv(4096).decode()
        f.write(m.replace("\n", "|") + "\n")
        f.flush()
EOF
NPID=$!
PIDS="$PIDS $NPID"
i=0
while [ ! -S "$W/notify.sock" ]; do
    i=$((i + 1)); [ $i -lt 300 ] || die "the notify socket did not appear"; sleep 0.1
done
: > notify.log

# ---- LISTEN_FDS ---------------------------------------------------------------------
# listen_exec PORTFILE ARGS...: bind 127.0.0.1:0 and a Unix socket u.sock,
# pass them as descriptors 3 and 4 with LISTEN_FDS=2 and this process's id
# in LISTEN_PID, and exec vddk serve ARGS (the same process).
cat > listen_exec.py <<'EOF'
import fcntl, os, socket, sys
portfile, args = sys.argv[1], sys.argv[2:]
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("127.0.0.1", 0))
tcp.listen(16)
ux = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ux.bind("u.sock")
ux.listen(16)
with open(portfile, "w") as f:
    f.write("%d\n" % tcp.getsockname()[1])
high = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, 20) for s in (tcp, ux)]
tcp.close()
ux.close()
for fd, target in zip(high, (3, 4)):
    os.dup2(fd, target)
    os.set_inheritable(target, True)
    os.close(fd)
os.environ["LISTEN_FDS"] = "2"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(args[0], args)
EOF

log "LISTEN_FDS: sockets passed by the service manager; READY=1"
NOTIFY_SOCKET=$W/notify.sock python3 listen_exec.py port.txt "$VDDK" serve \
    --datastore "ds1=$W/ds1" --port 1 2> lfds.log &
SPID=$!
PIDS="$PIDS $SPID"
wait_for lfds.log "TLS off" "$SPID"
P=$(cat port.txt)
grep -q "listening on 127.0.0.1:$P (socket passed by the service manager)" lfds.log ||
    die "the TCP socket was not taken from LISTEN_FDS: $(cat lfds.log)"
grep -q "listening on unix:u.sock (socket passed by the service manager)" lfds.log ||
    die "the Unix socket was not taken from LISTEN_FDS: $(cat lfds.log)"
grep -q "listening on \*:1\$" lfds.log && die "--port was used besides LISTEN_FDS"
ok
[ "$(run nbdinfo --size "nbd://127.0.0.1:$P/ds1/vm/a.vmdk")" = 16777216 ] ||
    die "nbdinfo over the passed TCP socket"
[ "$(run nbdinfo --size "nbd+unix:///ds1/vm/a.vmdk?socket=$W/u.sock")" = 16777216 ] ||
    die "nbdinfo over the passed Unix socket"
ok
wait_for notify.log '^READY=1' "$SPID"
ok
stop "$SPID"
grep -q '^STOPPING=1' notify.log || die "no STOPPING=1: $(cat notify.log)"
[ -S u.sock ] || die "the server removed the Unix socket it did not create"
ok
rm -f u.sock

log "LISTEN_PID of another process: the variables are ignored"
LISTEN_FDS=1 LISTEN_PID=1 "$VDDK" serve --datastore "ds1=$W/ds1" --bind 127.0.0.1 --port 0 \
    2> other.log &
SPID=$!
PIDS="$PIDS $SPID"
wait_for other.log "TLS off" "$SPID"
grep -q 'listening on 127.0.0.1:[0-9]*$' other.log || die "own socket not bound: $(cat other.log)"
stop "$SPID"
ok

log "LISTEN_FDS naming something that is not a listening socket"
cat > bad_exec.py <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.dup2(fd, 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
EOF
if timeout "$T" python3 bad_exec.py ds1/vm/a.vmdk "$VDDK" serve --datastore "ds1=$W/ds1" \
        2> badfd.log; then
    die "a file as LISTEN_FDS socket was accepted"
fi
grep -q "vddk: serve: descriptor 3 is not a socket" badfd.log || die "bad fd: $(cat badfd.log)"
if timeout "$T" sh -c 'LISTEN_FDS=x LISTEN_PID=$$ exec "$0" serve --datastore "ds1=$1" \
        --bind 127.0.0.1 --port 0' "$VDDK" "$W/ds1" 2> badenv.log; then
    die "LISTEN_FDS=x was accepted"
fi
grep -q 'LISTEN_FDS="x": expected 1 to 16 sockets' badenv.log || die "bad env: $(cat badenv.log)"
ok

# ---- the config file ----------------------------------------------------------------------
log "config file: settings, command line after it, errors naming the line"
cat > serve.conf <<EOF
# a comment
datastore = ds1=$W/ds1

bind = 127.0.0.1
port = 1
readonly = yes
EOF
# --port 0 after --config wins over the file's port 1.
"$VDDK" serve --config serve.conf --port 0 2> conf.log &
SPID=$!
PIDS="$PIDS $SPID"
wait_for conf.log "TLS off" "$SPID"
PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' conf.log)
[ -n "$PORT" ] && [ "$PORT" != 1 ] || die "the command line did not override port: $(cat conf.log)"
grep -q "datastore \[ds1\] = $W/ds1 (read-only)" conf.log || die "readonly = yes: $(cat conf.log)"
stop "$SPID"
ok
conf_fails() {   # conf_fails TEXT EXPECTED: a config file with TEXT is refused
    printf '%s\n' "$1" > bad.conf
    if timeout "$T" "$VDDK" serve --config bad.conf 2> bad.err; then
        die "config '$1' was accepted"
    fi
    grep -Fq "$2" bad.err || die "config '$1': expected '$2', got: $(cat bad.err)"
    [ "$(wc -l < bad.err)" -eq 1 ] || die "config '$1': more than one line: $(cat bad.err)"
    ok
}
conf_fails "datastore = ds1=$W/ds1
prot = 1" "vddk: serve: bad.conf:2: unknown key 'prot'"
conf_fails "readonly = maybe" "bad.conf:1: readonly takes yes or no, not 'maybe'"
conf_fails "port = 70000" "bad.conf:1: bad port '70000'"
conf_fails "datastore ds1" "bad.conf:1: expected \"key = value\""
conf_fails "datastore =" "bad.conf:1: datastore needs a value"
conf_fails "config = other.conf" "bad.conf:1: unknown key 'config'"
conf_fails "datastore = x=$W/nowhere" "bad.conf:1: datastore x: $W/nowhere"
conf_fails "# only a comment" "at least one --datastore NAME=DIR is needed"
if timeout "$T" "$VDDK" serve --config "$W/missing.conf" 2> miss.err; then
    die "a missing config file was accepted"
fi
grep -q "vddk: serve: $W/missing.conf: cannot open the config file: No such file" miss.err ||
    die "missing config: $(cat miss.err)"
ok

# ---- SIGHUP reload --------------------------------------------------------------------------
log "SIGHUP: datastores replaced while a connection stays open"
mkpki pki
KA=$(mkpsk alice.psk alice)
cat > live.conf <<EOF
datastore = ds1=$W/ds1
tls = on
tls-psk = $W/live.psk
EOF
cp alice.psk live.psk
: > notify.log
NOTIFY_SOCKET=$W/notify.sock "$VDDK" serve --config live.conf --bind 127.0.0.1 --port 0 \
    2> live.log &
SPID=$!
PIDS="$PIDS $SPID"
wait_for live.log "TLS on with PSK" "$SPID"
PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' live.log)
U=nbd://127.0.0.1:$PORT
wait_for notify.log '^READY=1' "$SPID"

# A connection that stays open across the reloads (plain NBD, tls = on).
mkfifo qio.in
qemu-io -f raw "$U/ds1/vm/a.vmdk" < qio.in > qio.out 2>&1 &
QPID=$!
PIDS="$PIDS $QPID"
exec 7> qio.in
# qio N CMD: send a qemu-io command and wait for its Nth "ops;" line.
qio() {
    echo "$2" >&7
    wait_count qio.out 'ops;' "$1" "$QPID"
}
qio 1 "read -P 0xab 0 64k"
grep -q "failed" qio.out && die "qemu-io read: $(cat qio.out)"
ok

# Reload: ds1 replaced by ds2, PSK of bob instead of alice.
KB=$(mkpsk live.psk bob)
cat > live.conf <<EOF
datastore = ds2=$W/ds2
tls = on
tls-psk = $W/live.psk
EOF
kill -HUP "$SPID"
wait_for live.log "reloaded: new connections use this configuration" "$SPID"
# notify.log already holds the first READY=1: wait for the second one.
wait_count notify.log '^READY=1' 2 "$SPID"
grep -q "^RELOADING=1|MONOTONIC_USEC=[0-9][0-9]*\$" notify.log ||
    die "no RELOADING=1 with MONOTONIC_USEC: $(cat notify.log)"
[ "$(grep -c '^READY=1' notify.log)" -eq 2 ] || die "READY=1 after the reload: $(cat notify.log)"
grep -n "RELOADING\|READY" notify.log | tail -n 2 | head -n 1 | grep -q RELOADING ||
    die "RELOADING=1 must come before the second READY=1: $(cat notify.log)"
grep -q "datastore \[ds2\] = $W/ds2" live.log || die "ds2 not announced: $(cat live.log)"
ok
[ "$(run nbdinfo --size "$U/ds2/vm/b.vmdk")" = 33554432 ] || die "ds2 not served after the reload"
if timeout "$T" nbdinfo --size "$U/ds1/vm/a.vmdk" > /dev/null 2> gone.err; then
    die "ds1 still served to new connections after the reload"
fi
ok
# The connection opened before still reads and writes its disk.
qio 2 "read -P 0xab 1M 64k"
qio 3 "write -P 0x5c 8M 64k"
qio 4 "read -P 0x5c 8M 64k"
grep -q "failed" qio.out && die "qemu-io after the reload: $(cat qio.out)"
ok
# TLS: bob's key works for new connections, alice's no longer.
[ "$(run nbdinfo --size "nbds://bob@127.0.0.1:$PORT/ds2/vm/b.vmdk?tls-psk-file=$W/live.psk")" = \
  33554432 ] || die "bob's PSK after the reload"
if timeout "$T" nbdinfo --size "nbds://alice@127.0.0.1:$PORT/ds2/vm/b.vmdk?tls-psk-file=$W/alice.psk" \
        > /dev/null 2>&1; then
    die "alice's PSK still accepted after the reload"
fi
ok

log "SIGHUP with a broken config: the configuration in force is kept"
echo "bogus line" >> live.conf
kill -HUP "$SPID"
wait_for live.log "reload: live.conf:4: expected \"key = value\"" "$SPID"
grep -q "the configuration in force is kept" live.log || die "$(cat live.log)"
wait_count notify.log '^READY=1' 3 "$SPID"
[ "$(run nbdinfo --size "$U/ds2/vm/b.vmdk")" = 33554432 ] || die "ds2 gone after a failed reload"
qio 5 "read -P 0x5c 8M 64k"
ok
exec 7>&-
i=0
while kill -0 "$QPID" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 300 ] || die "qemu-io did not exit"; sleep 0.1
done
stop "$SPID"
# What was written through the old connection is in the disk.
run qemu-io -f vmdk -c "read -P 0x5c 8M 64k" ds1/vm/a.vmdk > after.out 2>&1
grep -q "failed" after.out && die "the write through the kept connection is lost: $(cat after.out)"
ok

log "JOURNAL_STREAM naming stderr: priorities, no time"
: > j.log
JS=$(stat -c '%d:%i' j.log)
JOURNAL_STREAM=$JS "$VDDK" serve --datastore "ds1=$W/ds1" --bind 127.0.0.1 --port 0 2>> j.log &
SPID=$!
PIDS="$PIDS $SPID"
wait_for j.log "TLS off" "$SPID"
grep -q '^<6>listening on 127.0.0.1:[0-9]*$' j.log || die "journal lines: $(cat j.log)"
grep -q '^vddk serve:' j.log && die "time-stamped lines with JOURNAL_STREAM: $(cat j.log)"
stop "$SPID"
ok

log "$CHECKS checks passed"
