#!/bin/sh
# snapshot.sh - the vSphere session calls of vddk/disk.h (tests/vsphere/vsnap)
# against govmomi's vCenter simulator: a session, CreateSnapshot_Task and
# RemoveSnapshot_Task with their tasks awaited, the snapshot tree with names,
# descriptions and depths, disks as of a snapshot, the VM's configuration as
# JSON, and the errors: a snapshot removed twice, an unknown VM, a wrong
# password.
#
# vcsim's tasks end before CreateSnapshot_Task returns (so the polling is only
# exercised on its first round), and its snapshots make no delta disks: a
# snapshot's config is a copy of the VM's, so the disk change that makes
# "disks as of the snapshot" visible is made here with vcsim's setdisk.
set -eu
NAME=snapshot
: "${VSPHERELIB:?}" "${VCSIM:?}" "${VSNAP:?}"
. "$VSPHERELIB"
die() { echo "$NAME: FAIL: $*" >&2; exit 1; }
log() { echo "$NAME: $*" >&2; }

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-vsnap.XXXXXX")
trap 'vcsim_stop; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM HUP
T=${VSPHERE_TIMEOUT:-120}

vcsim_start -user vuser -password 'pa ss' || exit $?
export VSNAP_PASSWORD='pa ss'
vs() { timeout "$T" "$VSNAP" -s "$VCSIM_HOST" -p "$VCSIM_PORT" -u vuser -t "$VCSIM_SHA1" "$@"; }
# expect CODE TEXT -- vsnap args: must fail with VixError CODE, text containing TEXT
expect() {
    code=$1 text=$2
    shift 3
    if "$@" >"$W/out" 2>"$W/err"; then die "succeeded, expected error $code: $*"; fi
    grep -q "error $code:" "$W/err" || die "expected error $code for: $* -- got: $(cat "$W/err")"
    grep -qF -- "$text" "$W/err" || die "expected '$text' in: $(cat "$W/err")"
}

# ---- session ------------------------------------------------------------------
vs open || die "session_open"
VSNAP_PASSWORD=wrong expect 35 "refused" -- vs open
log "session: opens; a wrong password fails at session_open (35)"

# ---- create, list, disks as of the snapshot -----------------------------------
DESC='before the "nightly" run: a\b'
S1=$(vs create "$VCSIM_VM" nightly "$DESC") || die "create"
case $S1 in snapshot-*) ;; *) die "create printed '$S1', not a snapshot moref" ;; esac
vs list "$VCSIM_VM" >"$W/ls" || die "list $VCSIM_VM"
grep -qxF "  snapshot $S1 0 nightly|$DESC" "$W/ls" || die "snapshot line: $(cat "$W/ls")"
vs list >"$W/all" || die "list (every VM)"
grep -qxF "vm $VCSIM_VM $VCSIM_VMNAME" "$W/all" || die "VM missing from the full list"
grep -qxF "  snapshot $S1 0 nightly|$DESC" "$W/all" || die "snapshot missing from the full list"
log "create: $S1 listed with its name and description, by VM and in the full list"

# A child snapshot without a description, after the VM's disk changed.
VMDIR=$(dirname "$VCSIM_DISK")              # "[ds] dir"
NEWDISK="$VMDIR/after-s1.vmdk"
touch "$(vcsim_path_local "$NEWDISK")"
vcsim_cmd "setdisk $VCSIM_VM $VCSIM_DISKKEY $NEWDISK" >/dev/null || die "setdisk"
S2=$(vs create "$VCSIM_VM" second) || die "create second"
vs list "$VCSIM_VM" >"$W/ls" || die "list"
grep -qxF "  snapshot $S2 1 second|(null)" "$W/ls" || die "child snapshot line: $(cat "$W/ls")"
grep -qxF "  disk $VCSIM_DISKKEY $NEWDISK" "$W/ls" || die "current disk: $(cat "$W/ls")"
vs list "$VCSIM_VM" "$S1" >"$W/ls1" || die "list as of $S1"
grep -qxF "  disk $VCSIM_DISKKEY $VCSIM_DISK" "$W/ls1" || die "disk as of $S1: $(cat "$W/ls1")"
vs list "$VCSIM_VM" "$S2" >"$W/ls2" || die "list as of $S2"
grep -qxF "  disk $VCSIM_DISKKEY $NEWDISK" "$W/ls2" || die "disk as of $S2: $(cat "$W/ls2")"
expect 3 "needs the VM" -- vs list "" "$S1"
log "list: child snapshot at depth 1 without description; disks as of each snapshot"

# ---- the VM's configuration as JSON -------------------------------------------
vs config "$VCSIM_VM" >"$W/config.json" || die "config"
/usr/bin/python3 - "$W/config.json" "$VCSIM_VMNAME" "$VCSIM_DISKKEY" "$NEWDISK" <<'PY' || die "config JSON"
import json, sys
c = json.load(open(sys.argv[1]))
name, key, disk = sys.argv[2], sys.argv[3], sys.argv[4]
assert c["_type"] == "VirtualMachineConfigInfo", c.get("_type")
assert c["name"] == name, c["name"]
devs = c["hardware"]["device"]
assert isinstance(devs, list) and len(devs) > 1, devs
disks = [d for d in devs if d.get("_type") == "VirtualDisk"]
assert disks, [d.get("_type") for d in devs]
d = [d for d in disks if d["key"] == key]
assert d, [x["key"] for x in disks]
assert d[0]["backing"]["fileName"] == disk, d[0]["backing"]
assert d[0]["backing"]["_type"] == "VirtualDiskFlatVer2BackingInfo"
# Values the server sends without xsi:type stay strings (most of them).
assert c["hardware"]["numCPU"] == "1", c["hardware"]["numCPU"]
assert c["template"] == "false", c["template"]
# extraConfig is an array even with one member.
assert isinstance(c.get("extraConfig", []), list), c.get("extraConfig")
ctl = [x for x in devs if x.get("_type", "").endswith("Controller") and "device" in x]
assert all(isinstance(x["device"], list) for x in ctl), ctl
PY
log "config: valid JSON with the VM's name and its device list"

# ---- remove ----------------------------------------------------------------------
vs remove "$S2" || die "remove $S2"
vs list "$VCSIM_VM" >"$W/ls" || die "list"
grep -qF "snapshot $S2 " "$W/ls" && die "$S2 still listed"
grep -qF "snapshot $S1 " "$W/ls" || die "$S1 gone with $S2"
vs remove "$S1" || die "remove $S1"
vs list "$VCSIM_VM" >"$W/ls" || die "list"
grep -q "snapshot" "$W/ls" && die "snapshots left: $(cat "$W/ls")"
expect 25 "there is no snapshot $S1" -- vs remove "$S1"
expect 25 "RemoveSnapshot_Task" -- vs remove "$S1"
log "remove: each snapshot goes; removing one again is VIX_E_OBJECT_NOT_FOUND (25)"

# removeChildren takes the subtree.
S3=$(vs create "$VCSIM_VM" parent) || die "create parent"
S4=$(vs create "$VCSIM_VM" child) || die "create child"
vs list "$VCSIM_VM" >"$W/ls" || die "list"
grep -qxF "  snapshot $S4 1 child|(null)" "$W/ls" || die "child: $(cat "$W/ls")"
vs remove "$S3" children || die "remove $S3 children"
vs list "$VCSIM_VM" >"$W/ls" || die "list"
grep -q "snapshot" "$W/ls" && die "removeChildren left: $(cat "$W/ls")"
# Not checked against vcsim: removing $S4 itself now.  vcsim drops only the
# removed snapshot's object, not its children's, and RemoveSnapshot_Task on
# such a left-over child panics in vcsim (an empty HTTP reply).
log "remove with children: the subtree goes"

# ---- unknown VM --------------------------------------------------------------
expect 25 "there is no virtual machine vm-9999" -- vs create vm-9999 x
expect 25 "there is no virtual machine with moref vm-9999" -- vs config vm-9999
expect 4 "vm-9999" -- vs list vm-9999
expect 3 "snapshot name" -- vs create "$VCSIM_VM" ""
log "unknown VM: create and config 25, list 4 (as vddk_disk_vsphere_list)"

# ---- everything in one session ------------------------------------------------
S5=$(vs cycle "$VCSIM_VM" oneshot) || die "cycle"
vs list "$VCSIM_VM" >"$W/ls" || die "list"
grep -q "snapshot" "$W/ls" && die "cycle left: $(cat "$W/ls")"
log "one session: create $S5, list, config, remove, list"

log "PASS"
