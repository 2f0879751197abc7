#!/bin/sh
# badproto.sh - bad protocol input to `vddk serve` (nbd_badproto): every bad
# connection gets an error reply or is closed, while a well-behaved
# connection and new connections keep being served; then the server
# still stops cleanly.
. "$(dirname "$0")/lib.sh"
[ -x "$BADPROTO" ] || die "BADPROTO is not set"

mkdir -p ds/vm
run "$VDDK" create -s 16M ds/vm/disk.vmdk >/dev/null
run "$VDDK" fill -o 0 -l 1M --random --seed 5 ds/vm/disk.vmdk >/dev/null
SHA=$(disk_sha ds/vm/disk.vmdk)
serve serve.log --datastore "ds=$W/ds" --bind 127.0.0.1 --port 0
run "$BADPROTO" "$PORT" ds/vm/disk.vmdk
kill -0 "$SPID" 2>/dev/null || die "the server died: $(tail -5 serve.log)"
stop "$SPID"
grep -q "stopped" serve.log || die "no clean stop: $(tail -5 serve.log)"
[ "$(disk_sha ds/vm/disk.vmdk)" = "$SHA" ] || die "bad input changed the disk"
echo "$NAME: all checks passed"
