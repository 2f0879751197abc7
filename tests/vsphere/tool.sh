#!/bin/sh
# tool.sh - the vddk tool on vSphere disks of govmomi's simulator: the
# connection options on read-only subcommands (info, map, dump, checksum,
# compare, clone), `vddk vsphere` (text and JSON), `vddk thumbprint`, the
# password never on the command line, writes refused, and the errors a user
# meets (thumbprint, password, moref, snapshot, refused port) as the tool
# prints them.
set -eu
NAME=tool
: "${VSPHERELIB:?}" "${VCSIM:?}" "${VDDK:?}"
. "$VSPHERELIB"
die() { echo "$NAME: FAIL: $*" >&2; exit 1; }
log() { echo "$NAME: $*" >&2; }
command -v qemu-img >/dev/null 2>&1 || { log "SKIP: qemu-img missing"; exit 77; }
W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-vsphere.XXXXXX")
trap 'vcsim_stop; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM HUP

vcsim_start -user admin -password secret -folder-auth || exit $?
printf 'secret\n' >"$W/pw"
VMDIR=$(dirname "$(vcsim_path_local "$VCSIM_DISK")")
REL="[$VCSIM_DS] $(basename "$VMDIR")"
"$VDDK" create -s 8M "$VMDIR/d.vmdk" >/dev/null
"$VDDK" fill -q -o 1M -l 2M --random --seed 9 "$VMDIR/d.vmdk" >/dev/null
vcsim_cmd "setdisk $VCSIM_VM $VCSIM_DISKKEY $REL/d.vmdk" >/dev/null || die setdisk
C="--server $VCSIM_SERVER --user admin --password-file $W/pw --thumbprint $VCSIM_SHA1 --vm $VCSIM_VM"
v() { timeout 120 "$VDDK" "$@"; }

# shellcheck disable=SC2086
v info $C "$REL/d.vmdk" >"$W/info" || die "info"
grep -q "8 MiB\|8388608" "$W/info" || die "info: $(cat "$W/info")"
# shellcheck disable=SC2086
v map --json $C "$REL/d.vmdk" >"$W/rmap" || die "map"
v map --json "$VMDIR/d.vmdk" >"$W/lmap"
cmp "$W/rmap" "$W/lmap" || die "remote map differs from the local one"
# shellcheck disable=SC2086
R=$(v checksum $C "$REL/d.vmdk" | cut -d' ' -f1) || die checksum
qemu-img convert -O raw "$VMDIR/d.vmdk" "$W/d.raw"
[ "$R" = "$(sha256sum "$W/d.raw" | cut -d' ' -f1)" ] || die "checksum differs from sha256sum"
# shellcheck disable=SC2086
v compare $C "$REL/d.vmdk" "$VMDIR/d.vmdk" >/dev/null || die "compare remote with local"
# shellcheck disable=SC2086
v dump -o 1M -l 64 $C "$REL/d.vmdk" >"$W/dump" || die dump
[ "$(wc -l <"$W/dump")" -ge 4 ] || die "dump output"
# Environment instead of options, and a backup to a local file.
VDDK_SERVER=$VCSIM_SERVER VDDK_USER=admin VDDK_PASSWORD=secret VDDK_THUMBPRINT=$VCSIM_SHA256 \
    v clone -q -t stream --vm "$VCSIM_VM" "$REL/d.vmdk" "$W/b.vmdk" >/dev/null || die "clone"
qemu-img convert -O raw "$W/b.vmdk" "$W/b.raw"
cmp "$W/b.raw" "$W/d.raw" || die "backup differs"
log "info, map, checksum, compare, dump, clone on a vSphere disk"

# shellcheck disable=SC2086
v vsphere $C >"$W/ls" || die "vsphere"
grep -q "^$VCSIM_VM  $VCSIM_VMNAME  poweredOn" "$W/ls" || die "vsphere list: $(head "$W/ls")"
grep -qF "disk $VCSIM_DISKKEY  $REL/d.vmdk" "$W/ls" || die "vsphere disk line"
S=$(vcsim_field "$(vcsim_cmd "snapshot $VCSIM_VM before")" snapshot)
v vsphere --json --server "$VCSIM_SERVER" --user admin --password-file "$W/pw" \
    --thumbprint "$VCSIM_SHA1" >"$W/ls.json" || die "vsphere --json"
/usr/bin/python3 - "$W/ls.json" "$VCSIM_VM" "$S" "$VCSIM_DISKKEY" <<'PY' || die "vsphere JSON"
import json, sys
vms = json.load(open(sys.argv[1]))
vm = [v for v in vms if v["moref"] == sys.argv[2]][0]
assert any(s["moref"] == sys.argv[3] and s["name"] == "before" for s in vm["snapshots"]), vm
assert any(d["key"] == int(sys.argv[4]) and d["path"].endswith("/d.vmdk") for d in vm["disks"]), vm
assert len(vms) > 1
PY
# shellcheck disable=SC2086
v thumbprint "$VCSIM_SERVER" >"$W/tp" || die thumbprint
grep -qx "SHA-1   $VCSIM_SHA1" "$W/tp" && grep -qx "SHA-256 $VCSIM_SHA256" "$W/tp" ||
    die "thumbprint: $(cat "$W/tp")"
log "vsphere listing, JSON, thumbprint"

rc=0; v info --server "$VCSIM_SERVER" --password secret "$REL/d.vmdk" 2>"$W/err" || rc=$?
[ $rc = 2 ] && grep -q "never taken from the command line" "$W/err" || die "--password accepted"
# shellcheck disable=SC2086
rc=0; v fill -q -l 1M $C "$REL/d.vmdk" 2>"$W/err" || rc=$?
[ $rc = 1 ] && grep -q "cannot write" "$W/err" || die "write not refused: $(cat "$W/err")"
rc=0; v info --server "$VCSIM_SERVER" --user admin --password-file "$W/pw" \
    --thumbprint "$VCSIM_SHA1" "$REL/d.vmdk" 2>"$W/err" || rc=$?
[ $rc = 1 ] && grep -q "needs --vm" "$W/err" || die "no --vm: $(cat "$W/err")"
rc=0; v info --server "$VCSIM_SERVER" --user admin --password-file "$W/pw" \
    --vm "$VCSIM_VM" "$REL/d.vmdk" 2>"$W/err" || rc=$?
[ $rc = 1 ] && grep -q "not trusted" "$W/err" || die "untrusted: $(cat "$W/err")"
log "password on the command line, writes, no --vm, untrusted certificate: refused"
# fails TEXT -- vddk args: exit status 1 and TEXT in what it printed
fails() {
    text=$1
    shift 2
    rc=0; v "$@" >"$W/out" 2>"$W/err" || rc=$?
    [ $rc = 1 ] && grep -qF -- "$text" "$W/err" || die "expected '$text' (exit 1), got $rc: $(cat "$W/err")"
}
BAD=$(echo "$VCSIM_SHA1" | sed 's/^../00/')
[ "$BAD" != "$VCSIM_SHA1" ] || BAD=$(echo "$VCSIM_SHA1" | sed 's/^../11/')
fails "expected $BAD" -- info --server "$VCSIM_SERVER" --user admin --password-file "$W/pw" \
    --thumbprint "$BAD" --vm "$VCSIM_VM" "$REL/d.vmdk"
printf 'wrong\n' >"$W/badpw"
fails "wrong user name or password" -- info --server "$VCSIM_SERVER" --user admin \
    --password-file "$W/badpw" --thumbprint "$VCSIM_SHA1" --vm "$VCSIM_VM" "$REL/d.vmdk"
# shellcheck disable=SC2086
fails "no virtual machine with moref vm-99999" -- info $C --vm vm-99999 "$REL/d.vmdk"
# shellcheck disable=SC2086
fails "is not a snapshot of" -- info $C --snapshot snapshot-99999 "$REL/d.vmdk"
# shellcheck disable=SC2086
fails "is not a disk of VM" -- info $C "$REL/other.vmdk"
P2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fails "connection refused" -- info --server "127.0.0.1:$P2" --user admin --password-file "$W/pw" \
    --thumbprint "$VCSIM_SHA1" --vm "$VCSIM_VM" "$REL/d.vmdk"
log "wrong thumbprint, password, moref, snapshot, disk, refused port: clear errors"
echo "$NAME: PASS"
