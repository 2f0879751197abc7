#!/bin/sh
# lib_peers.sh - libvixDiskLib (through vixnet) against NBD servers that
# are not ours: qemu-nbd serving a raw file (TCP and Unix socket) and
# nbdkit's memory plugin.  Read, write, allocation (block status), flush.
. "$(dirname "$0")/lib.sh"
need qemu-nbd nbdkit python3
[ -x "$VIXNET" ] || die "VIXNET is not set"
X=$VIXNET
MiB=1048576

# covers MAP START LEN: some mapped range of MAP ("offset length") contains [START, START+LEN).
covers() {
    awk -v s="$2" -v l="$3" '$1 <= s && $1 + $2 >= s + l { f = 1 } END { exit !f }' "$1"
}
mapped() {
    awk '{ t += $2 } END { print t + 0 }' "$1"
}

# A sparse raw disk: data at 4 MiB (1 MiB) and 20 MiB (64 KiB).
truncate -s 64M disk.raw
head -c $MiB /dev/urandom | dd of=disk.raw bs=1M seek=4 conv=notrunc status=none
head -c 65536 /dev/urandom | dd of=disk.raw bs=64K seek=320 conv=notrunc status=none
cp --sparse=always disk.raw ref.raw
head -c $((64 * MiB)) /dev/urandom > in.raw
dd if=/dev/zero of=in.raw bs=1M seek=10 count=8 conv=notrunc status=none

peer_checks() {
    what=$1
    shift
    log "$what: read, map, info"
    run $X "$@" read disk out.raw
    cmp out.raw ref.raw || die "$what: read differs"
    ok
    run $X "$@" map disk > map.txt
    covers map.txt $((4 * MiB)) $MiB || die "$what: map misses data at 4 MiB: $(cat map.txt)"
    covers map.txt $((20 * MiB)) 65536 || die "$what: map misses data at 20 MiB: $(cat map.txt)"
    [ "$(mapped map.txt)" -lt $((32 * MiB)) ] || die "$what: holes reported as data: $(cat map.txt)"
    ok
    run $X "$@" info disk > info.txt
    grep -q '^capacity 131072$' info.txt || die "$what: capacity: $(cat info.txt)"
    grep -q '^transport nbd$' info.txt || die "$what: transport: $(cat info.txt)"
    ok
}

# ---- qemu-nbd over a Unix socket and TCP ------------------------------------
cp --sparse=always ref.raw q.raw
qemu-nbd -f raw -x disk -t -e 8 -k "$W/q.sock" q.raw 2>qnbd.log &
QPID=$!
PIDS="$PIDS $QPID"
i=0
while [ ! -S "$W/q.sock" ]; do
    i=$((i + 1))
    [ $i -lt 300 ] || die "qemu-nbd did not start: $(cat qnbd.log)"
    kill -0 "$QPID" 2>/dev/null || die "qemu-nbd exited: $(cat qnbd.log)"
    sleep 0.1
done
peer_checks "qemu-nbd (unix)" -s "unix:$W/q.sock"
log "qemu-nbd: write and flush"
run $X -s "unix:$W/q.sock" write disk in.raw
cmp q.raw in.raw || die "qemu-nbd: the file does not hold what was written"
ok
stop "$QPID" any

cp --sparse=always ref.raw q.raw
QPORT=$(free_port)
qemu-nbd -f raw -x disk -t -e 8 -b 127.0.0.1 -p "$QPORT" q.raw 2>qnbd2.log &
QPID=$!
PIDS="$PIDS $QPID"
i=0
until $X -p "$QPORT" -m nbd connect >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 300 ] || die "qemu-nbd (TCP) did not start: $(cat qnbd2.log)"
    kill -0 "$QPID" 2>/dev/null || die "qemu-nbd exited: $(cat qnbd2.log)"
    sleep 0.1
done
peer_checks "qemu-nbd (tcp)" -p "$QPORT" -m nbd
run $X -p "$QPORT" -m nbd write disk in.raw
cmp q.raw in.raw || die "qemu-nbd (tcp): the file does not hold what was written"
ok
stop "$QPID" any

# ---- nbdkit memory plugin ---------------------------------------------------
nbdkit -f -U "$W/k.sock" memory 64M 2>kit.log &
KPID=$!
PIDS="$PIDS $KPID"
i=0
while [ ! -S "$W/k.sock" ]; do
    i=$((i + 1))
    [ $i -lt 300 ] || die "nbdkit did not start: $(cat kit.log)"
    kill -0 "$KPID" 2>/dev/null || die "nbdkit exited: $(cat kit.log)"
    sleep 0.1
done
log "nbdkit memory: empty disk, write, read back, map, flush"
run $X -s "unix:$W/k.sock" map disk > map.txt
[ "$(mapped map.txt)" -eq 0 ] || die "nbdkit: a new memory disk shows data: $(cat map.txt)"
ok
run $X -s "unix:$W/k.sock" write disk ref.raw
run $X -s "unix:$W/k.sock" read disk out.raw
cmp out.raw ref.raw || die "nbdkit: read back differs"
ok
run $X -s "unix:$W/k.sock" map disk > map.txt
covers map.txt $((4 * MiB)) $MiB || die "nbdkit: map misses data at 4 MiB: $(cat map.txt)"
covers map.txt $((20 * MiB)) 65536 || die "nbdkit: map misses data at 20 MiB: $(cat map.txt)"
ok
run $X -s "unix:$W/k.sock" write disk in.raw
run $X -s "unix:$W/k.sock" aread disk out.raw 16
cmp out.raw in.raw || die "nbdkit: async read after a second write differs"
ok
stop "$KPID" any

echo "$NAME: $CHECKS checks passed"
