#!/bin/sh
# serve_paths.sh - `vddk serve` and paths outside its datastore.
#
# Export names that leave the datastore ("..", an absolute path, a symbolic
# link, a dangling one), missing names, a FIFO, and disks inside whose
# descriptor names an extent outside (relative, absolute, through a
# symbolic link, missing) or whose parent is outside (relative, absolute,
# missing): every one gets the very same NBD reply, byte for byte (through
# nbd_badproto --go), and the library client the same error.
#
# Nothing outside is ever opened: the outside extents and parents are FIFOs
# with a writer waiting in open(2), which returns as soon as anyone opens
# the FIFO for reading (O_RDONLY or O_RDWR); every writer must still be
# waiting at the end.  And a read-only server opens the files of an export
# read-only (the open flags of its descriptors in /proc).
. "$(dirname "$0")/lib.sh"
[ -x "$BADPROTO" ] || die "BADPROTO is not set"

mkdir -p ds/vm out
run "$VDDK" create -s 1M ds/vm/good.vmdk >/dev/null
run "$VDDK" create -t monolithicFlat -s 1M out/o.vmdk >/dev/null

# waiting_writer FIFO: make FIFO and a writer blocked opening it.
WRITERS=""
waiting_writer() {
    mkfifo "$1"
    sh -c 'exec 3>"$1"; echo opened >"$1.opened"' sh "$1" &
    PIDS="$PIDS $!"
    WRITERS="$WRITERS $!:$1"
}

# flat_naming NAME EXTENT: ds/vm/NAME.vmdk, a monolithicFlat disk whose
# extent line names EXTENT (its own flat file is removed).
flat_naming() {
    run "$VDDK" create -t monolithicFlat -s 1M "ds/vm/$1.vmdk" >/dev/null
    rm "ds/vm/$1-flat.vmdk"
    sed -i "s|\"$1-flat.vmdk\"|\"$2\"|" "ds/vm/$1.vmdk"
    grep -q "\"$2\"" "ds/vm/$1.vmdk" || die "ds/vm/$1.vmdk does not name $2"
}

# child_of NAME HINT: ds/vm/NAME.vmdk, a split sparse child of
# ds/vm/pbase.vmdk whose parentFileNameHint is changed to HINT.
run "$VDDK" create -s 1M ds/vm/pbase.vmdk >/dev/null
child_of() {
    run "$VDDK" snapshot -t split-sparse ds/vm/pbase.vmdk "ds/vm/$1.vmdk" >/dev/null
    sed -i "s|^parentFileNameHint=.*|parentFileNameHint=\"$2\"|" "ds/vm/$1.vmdk"
    grep -q "^parentFileNameHint=\"$2\"" "ds/vm/$1.vmdk" || die "ds/vm/$1.vmdk: hint not set"
}

# Extents outside.
waiting_writer out/x1-flat.vmdk
waiting_writer out/x2-flat.vmdk
waiting_writer out/x3-flat.vmdk
flat_naming rel ../../out/x1-flat.vmdk
flat_naming abs "$W/out/x2-flat.vmdk"
flat_naming slink slink-target.vmdk
ln -s ../../out/x3-flat.vmdk ds/vm/slink-target.vmdk
flat_naming relmiss ../../out/missing-flat.vmdk
flat_naming absmiss "$W/out/missing-flat.vmdk"
flat_naming inmiss gone-flat.vmdk
# Parents outside.
waiting_writer out/p1.vmdk
waiting_writer out/p2.vmdk
child_of prel ../../out/p1.vmdk
child_of pabs "$W/out/p2.vmdk"
child_of pmiss ../../out/pgone.vmdk
# Export names.
ln -s ../../out/o.vmdk ds/vm/link.vmdk
ln -s ../../out/none.vmdk ds/vm/dangle.vmdk
mkfifo ds/vm/fifo.vmdk

serve serve.log --datastore "ds=$W/ds" --bind 127.0.0.1 --port 0

log "one reply for every refused name"
set -- ds/vm/rel.vmdk ds/vm/abs.vmdk ds/vm/slink.vmdk ds/vm/relmiss.vmdk ds/vm/absmiss.vmdk \
    ds/vm/inmiss.vmdk ds/vm/prel.vmdk ds/vm/pabs.vmdk ds/vm/pmiss.vmdk \
    ds/vm/../../out/o.vmdk ds/vm/../../out/none.vmdk "[ds] ../out/o.vmdk" \
    "[ds] $W/out/o.vmdk" "[ds] $W/out/none.vmdk" "[ds] /etc/passwd" \
    ds/vm/link.vmdk ds/vm/dangle.vmdk ds/vm/none.vmdk ds/none/none.vmdk ds/vm/fifo.vmdk
run "$BADPROTO" "$PORT" --go "$@" > replies.txt
[ "$(wc -l < replies.txt)" -eq $# ] || die "expected $# replies: $(cat replies.txt)"
first=$(head -n 1 replies.txt)
case $first in
    "80000006 no such disk"*) ;;    # NBD_REP_ERR_UNKNOWN
    *) die "unexpected reply to $1: $first" ;;
esac
i=1
while read -r line; do
    eval "name=\${$i}"
    [ "$line" = "$first" ] || die "the reply to $name differs:
  $line
the reply to $1:
  $first"
    i=$((i + 1))
done < replies.txt
ok
# The server's log says which it was.
grep -q 'vm/rel.vmdk refused: .*out/x1-flat.vmdk is outside every datastore' serve.log ||
    die "the log does not say why rel.vmdk was refused: $(grep rel.vmdk serve.log)"
ok
# The library client: the same error for all (VIX_E_FILE_NOT_FOUND).
if [ -x "$VIXNET" ]; then
    for name in ds/vm/rel.vmdk ds/vm/relmiss.vmdk ds/vm/prel.vmdk ds/vm/link.vmdk \
        ds/vm/none.vmdk; do
        fails 4 "$VIXNET" -p "$PORT" info "$name"
    done
fi
# A disk inside is served.
[ "$(run "$BADPROTO" "$PORT" --go ds/vm/good.vmdk)" = "ACK 1048576" ] ||
    die "good.vmdk is not served"
ok

log "nothing outside was opened"
for w in $WRITERS; do
    pid=${w%%:*} fifo=${w#*:}
    kill -0 "$pid" 2>/dev/null && [ ! -e "$fifo.opened" ] ||
        die "$fifo (outside the datastore) was opened by the server"
    ok
done
kill -0 "$SPID" 2>/dev/null || die "the server died: $(tail -5 serve.log)"
stop "$SPID"

log "a read-only server opens files read-only"
# open_modes PID: the access mode (0 read-only, 2 read-write) of each open
# file of PID under $W/ds, one per line.
open_modes() {
    for fd in /proc/"$1"/fd/*; do
        case $(readlink "$fd" 2>/dev/null) in
            "$W"/ds/*)
                flags=$(sed -n 's/^flags:[[:space:]]*//p' /proc/"$1"/fdinfo/"${fd##*/}")
                echo $((0$flags & 3)) ;;
        esac
    done
}
# held MODE ARGS...: with a server started with ARGS, hold good.vmdk open
# through one client and check the modes of the server's files.
HELD=0
held() {
    want=$1
    shift
    HELD=$((HELD + 1))     # a new log each time: serve() reads the port from it
    serve "held$HELD.log" --datastore "ds=$W/ds" --bind 127.0.0.1 --port 0 "$@"
    # New names each time: the client opens its output only once the
    # control FIFO has a writer, so an old output could be read as its.
    mkfifo "hold$HELD.ctl"
    "$BADPROTO" "$PORT" --hold ds/vm/good.vmdk < "hold$HELD.ctl" > "hold$HELD.out" &
    HPID=$!
    PIDS="$PIDS $HPID"
    exec 3>"hold$HELD.ctl"
    wait_for "hold$HELD.out" "ACK" "$HPID"
    modes=$(open_modes "$SPID" | sort -u)
    exec 3>&-
    wait "$HPID" || die "the holding client failed"
    [ -n "$modes" ] || die "the server holds no file of good.vmdk open"
    [ "$modes" = "$want" ] || die "server $*: open modes $modes, expected $want"
    ok
    stop "$SPID"
}
held 2                      # a writable server: read-write (the check sees modes)
held 0 --readonly
held 0 --single-link

echo "$NAME: $CHECKS checks passed"
