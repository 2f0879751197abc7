#!/bin/sh
# backup.sh - `vddk backup`, `vddk verify` and `vddk restore` of whole VMs
# against govmomi's vCenter simulator (snapshots, inventory, the https
# datastore transport) and nfcd (tests/nfc: the nbd/nbdssl transports, for
# a backup over NFC and a restore into a VM's disks).
#
# Two VMs with two real disks each are placed at the VMs' disk paths.
# Checked: a full backup (streamOptimized and --sparse), verify, restore to
# local files equal to qemu-img's reading of the sources; an incremental
# backup after changing a few MiB stores about that much and restores to
# the changed disks; a VM whose disk is gone fails the backup and leaves no
# set and no snapshot; backups killed at random points leave no set that
# looks complete, and the next run removes their snapshots; corrupted
# blocks fail verify naming the block; corrupt manifests are refused;
# restore into a VM over nbdssl; the usage errors.
set -eu
NAME=backup
: "${VSPHERELIB:?}" "${VCSIM:?}" "${VDDK:?}" "${NFCD:?}"
. "$VSPHERELIB"
die() { echo "$NAME: FAIL: $*" >&2; exit 1; }
log() { echo "$NAME: $*" >&2; }
for t in qemu-img certtool python3 sha256sum; do
    command -v $t >/dev/null 2>&1 || { log "SKIP: $t missing"; exit 77; }
done
. "$(dirname "$0")/../nfc/lib.sh"

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-backup.XXXXXX")
trap 'nfcd_stop; vcsim_stop; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM HUP
T=${VSPHERE_TIMEOUT:-300}

nfcd_cert "$W/cert"
mkdir "$W/tickets" "$W/sets"
vcsim_start -user vuser -password 'pa ss' -nfc-cert "$W/cert/cert.pem" \
    -nfc-tickets "$W/tickets" || exit $?
export VDDK_PASSWORD='pa ss'
CONN="--server $VCSIM_SERVER --user vuser --thumbprint $VCSIM_SHA1"
# V ARGS...: vddk with the connection options
V() { timeout "$T" "$VDDK" "$@" $CONN; }
S=$W/sets

# ---- two VMs, two real disks each ----------------------------------------------------
eval "$(python3 - "$VCSIM_JSON" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
for i, vm in enumerate(j["vms"][:2]):
    d = vm["disks"][0]
    print("VM%d=%s; KEY%d=%s; FILE%d='%s'; NAME%d='%s'" %
          (i, vm["moref"], i, d["key"], i, d["file"], i, vm["name"]))
EOF
)"
[ -n "${VM1:-}" ] || die "vcsim has fewer than two VMs"
for i in 0 1; do
    eval "vm=\$VM$i key=\$KEY$i file=\$FILE$i"
    dir=$(dirname "$(vcsim_path_local "$file")")
    rel=$(basename "$dir")
    # Disk A: 40 MiB + 64 KiB (a short last block), monolithicSparse.
    "$VDDK" create -s 41024K "$dir/bk-a.vmdk" >/dev/null
    "$VDDK" fill -q --random --seed $((i + 1)) -o 1M -l 5M "$dir/bk-a.vmdk" >/dev/null
    "$VDDK" fill -q -p 0x5a -o 9M -l 1536K "$dir/bk-a.vmdk" >/dev/null
    "$VDDK" fill -q -p 0x33 -o 40M -l 64K "$dir/bk-a.vmdk" >/dev/null
    vcsim_cmd "setdisk $vm $key [$VCSIM_DS] $rel/bk-a.vmdk capkb=41024" >/dev/null ||
        die "setdisk $vm"
    # Disk B: a vmfsThin disk of 24 MiB.
    "$VDDK" create -t vmfsThin -s 24M "$dir/bk-b.vmdk" >/dev/null
    "$VDDK" fill -q --random --seed $((i + 7)) -o 2M -l 3M "$dir/bk-b.vmdk" >/dev/null
    out=$(vcsim_cmd "adddisk $vm [$VCSIM_DS] $rel/bk-b.vmdk 24576") || die "adddisk $vm"
    eval "KEYB$i=$(vcsim_field "$out" key) DIR$i=$dir"
done
log "VMs $VM0 and $VM1, disks $KEY0/$KEYB0 and $KEY1/$KEYB1"

# raw_sum FILE: sha256 of the disk's content as qemu-img reads it
raw_sum() {
    qemu-img convert -O raw "$1" "$W/raw" || die "qemu-img convert $1"
    sha256sum "$W/raw" | cut -d' ' -f1
    rm -f "$W/raw"
}
# snapshots VM: the names of the VM's snapshots, one a line
snapshots() {
    V vsphere --json --vm "$1" >"$W/inv.json" || die "vddk vsphere --vm $1"
    python3 - "$W/inv.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
for vm in (j["vms"] if isinstance(j, dict) else j):
    for s in vm.get("snapshots", []):
        print(s["name"])
EOF
}
no_snapshots_of_ours() {
    for vm in $VM0 $VM1; do
        if snapshots "$vm" | grep -qx openvddk-backup; then
            die "$1: a snapshot of ours is left on $vm"
        fi
    done
}
# mf EXPR SET: evaluate a Python expression on the set's manifest (as m)
mf() { python3 -c "import json,sys; m=json.load(open(sys.argv[1]+'/manifest.json')); print($1)" "$2"; }
# check_restore SET DIR: the restored disks equal the sources as they are now
check_restore() {
    for i in 0 1; do
        eval "vm=\$VM$i key=\$KEY$i keyb=\$KEYB$i dir=\$DIR$i"
        for pair in "$key:bk-a" "$keyb:bk-b"; do
            k=${pair%%:*} n=${pair#*:}
            got=$(raw_sum "$2/$vm/disk-$k.vmdk")
            want=$(raw_sum "$dir/$n.vmdk")
            [ "$got" = "$want" ] || die "$1: restored $vm disk $k differs from $dir/$n.vmdk"
            inset=$(mf "[d['sha256'] for v in m['vms'] for d in v['disks'] if v['moref']=='$vm' and d['key']==$k][0]" "$1")
            [ "$inset" = "$want" ] || die "$1: manifest sha256 of $vm disk $k is not the content's"
        done
    done
}

# ---- a full backup ------------------------------------------------------------------------
V backup --transport https --vm "$VM0" --vm "$VM1" --json "$S/full" >"$W/full.json" 2>"$W/err" ||
    die "full backup: $(cat "$W/err")"
python3 - "$W/full.json" <<'EOF' || die "backup --json summary: $(cat "$W/full.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ok"] is True and j["incremental"] is False, j
assert len(j["vms"]) == 2 and all(len(v["disks"]) == 2 for v in j["vms"]), j
assert all(v["snapshot_removed"] for v in j["vms"]), j
EOF
[ -f "$S/full/manifest.json" ] || die "no manifest"
ls "$S" | grep -q partial && die "a partial directory is left"
no_snapshots_of_ours "after a full backup"
[ "$(mf "m['vms'][0]['disks'][0]['format']" "$S/full")" = streamOptimized ] || die "format"
for i in 0 1; do
    eval "vm=\$VM$i"
    python3 -c "import json,sys; c=json.load(open(sys.argv[1])); assert c" "$S/full/$vm/config.json" ||
        die "$vm/config.json is not JSON"
    qemu-img check "$S/full/$vm/disk-$(eval echo \$KEY$i).vmdk" >/dev/null ||
        die "qemu-img check of $vm's stream disk"
done
# allocated counts what QueryAllocatedBlocks saw; stored the data blocks.
# Disk A holds data in blocks 1-5, 9, 10 and the short block 40.
st=$(mf "[d['stored'] for d in m['vms'][0]['disks'] if d['key']==$KEY0][0]" "$S/full")
[ "$st" -eq $((7 * 1048576 + 65536)) ] || die "stored $st bytes of disk A"
V verify "$S/full" >"$W/out" 2>&1 || die "verify full: $(cat "$W/out")"
grep -q "backup set verified" "$W/out" || die "verify output: $(cat "$W/out")"
V restore "$S/full" --to "$W/r-full" -q || die "restore full"
check_restore "$S/full" "$W/r-full"
# A restored thin disk stays thin: disk A's copy holds about its data.
sz=$(du -k "$W/r-full/$VM0/disk-$KEY0.vmdk" | cut -f1)
[ "$sz" -lt 16384 ] || die "restored disk A takes $sz KiB"
# --all with a name filter picks VM1 only; --progress draws on stderr.
V backup --transport https --all --name "$NAME1" --progress --per-host 1 --parallel 1 \
    "$S/one" >"$W/out" 2>"$W/err" || die "backup --all --name: $(cat "$W/err")"
[ "$(mf "[v['moref'] for v in m['vms']]" "$S/one")" = "['$VM1']" ] || die "--all --name picked $(mf "[v['moref'] for v in m['vms']]" "$S/one")"
grep -q "backup: 2/2 disks" "$W/err" || die "no progress line: $(cat "$W/err")"
grep -q "backed up 1 VM, 2 disks" "$W/out" || die "summary: $(cat "$W/out")"
rm -rf "$S/one"
log "full backup, verify and restore: ok"

# ---- sparse sets, and an incremental on top ----------------------------------------------------
V backup --transport https --sparse -q --vm "$VM0" --vm "$VM1" "$S/mon" || die "sparse backup"
[ "$(mf "m['vms'][0]['disks'][0]['format']" "$S/mon")" = monolithicSparse ] || die "sparse format"
# Change 3 MiB of VM0's disk A (data over data, and data over a hole)
# and 1 MiB of VM1's disk B.
"$VDDK" fill -q --random --seed 99 -o 2M -l 1M "$DIR0/bk-a.vmdk" >/dev/null
"$VDDK" fill -q --random --seed 98 -o 30M -l 2M "$DIR0/bk-a.vmdk" >/dev/null
"$VDDK" fill -q -p 0 -o 3M -l 1M "$DIR1/bk-b.vmdk" >/dev/null
V backup --transport https -q --vm "$VM0" --vm "$VM1" --base "$S/mon" "$S/tue" ||
    die "incremental backup"
[ "$(mf "m['base']" "$S/tue")" = ../mon ] || die "the manifest does not name its base"
stored=$(mf "sum(d['stored'] for v in m['vms'] for d in v['disks'])" "$S/tue")
[ "$stored" -eq $((4 * 1048576)) ] || die "incremental stored $stored bytes for 4 MiB changed"
bytes=$(du -k -c "$S/tue/$VM0"/*.vmdk "$S/tue/$VM1"/*.vmdk | tail -1 | cut -f1)
[ "$bytes" -lt 6144 ] || die "the incremental set's disks take $bytes KiB for 4 MiB changed"
V verify -q "$S/tue" || die "verify incremental"
V restore "$S/tue" --to "$W/r-tue" -q || die "restore incremental"
check_restore "$S/tue" "$W/r-tue"
# The sets move together: the child's link is relative.
mv "$S" "$W/moved"
V verify -q "$W/moved/tue" || die "verify after moving the sets"
mv "$W/moved" "$S"
log "incremental backup: $stored bytes stored, $bytes KiB on disk; restore ok"

# ---- verify finds corruption ----------------------------------------------------------------
cp -r "$S/mon" "$W/bad"
f=$W/bad/$VM0/disk-$KEY0.vmdk
# A byte inside the first data grain of the sparse copy: find it by its content.
off=$(python3 - "$f" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
# disk A has 0x5a bytes at 9 MiB: the grain holding them is all 0x5a
print(data.index(b"\x5a" * 65536) + 4096)
EOF
)
printf 'X' | dd of="$f" bs=1 seek="$off" conv=notrunc 2>/dev/null
if V verify "$W/bad" >"$W/out" 2>&1; then die "verify passed a corrupted set"; fi
grep -q "block 9 (offset 9437184) does not match" "$W/out" || die "verify message: $(cat "$W/out")"
rm -rf "$W/bad"
cp -r "$S/full" "$W/bad"
f=$W/bad/$VM1/disk-$KEYB1.vmdk
size=$(stat -c %s "$f")
printf 'XXXXXXXX' | dd of="$f" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
if V verify "$W/bad" >"$W/out" 2>&1; then die "verify passed a corrupted stream disk"; fi
grep -Eq "block [0-9]+|SHA-256" "$W/out" || die "verify message (stream): $(cat "$W/out")"
rm -rf "$W/bad"
# Manifests: missing, not JSON, unsafe path.
mkdir "$W/bad"
V verify "$W/bad" >"$W/out" 2>&1 && die "verify of a directory without manifest"
grep -q "not a complete backup set" "$W/out" || die "message: $(cat "$W/out")"
echo '{"format": "openvddk-backup", "version": 1' >"$W/bad/manifest.json"
V verify "$W/bad" >"$W/out" 2>&1 && die "verify of a truncated manifest"
grep -q "manifest.json: not valid JSON" "$W/out" || die "message: $(cat "$W/out")"
sed 's#"vm-[0-9]*/disk-#"../../etc/disk-#' "$S/full/manifest.json" >"$W/bad/manifest.json"
V restore "$W/bad" --to "$W/r-bad" >"$W/out" 2>&1 && die "restore of an unsafe manifest"
grep -q "leaves the set directory" "$W/out" || die "message: $(cat "$W/out")"
[ ! -e "$W/r-bad" ] || die "restore of a bad manifest wrote something"
rm -rf "$W/bad"
log "verify finds corruption: ok"

# ---- failures leave nothing ---------------------------------------------------------------
mv "$DIR1/bk-b.vmdk" "$DIR1/bk-b.away"
if V backup --transport https -q --vm "$VM0" --vm "$VM1" "$S/broken" 2>"$W/err"; then
    die "a backup with a missing disk succeeded"
fi
grep -q "bk-b.vmdk" "$W/err" || die "the error does not name the disk: $(cat "$W/err")"
[ ! -e "$S/broken" ] && ! ls "$S" | grep -q partial || die "a failed backup left files"
no_snapshots_of_ours "after a failed backup"
mv "$DIR1/bk-b.away" "$DIR1/bk-b.vmdk"
V backup --transport https -q --vm "$VM0" "$S/full" 2>"$W/err" && die "backup into an existing set"
grep -q "already exists" "$W/err" || die "message: $(cat "$W/err")"

# wait_started PID NAME: until the run has made NAME.partial-PID (or ended)
wait_started() {
    n=0
    while [ ! -d "$S/$2.partial-$1" ] && [ $n -lt 600 ] && kill -0 "$1" 2>/dev/null; do
        sleep 0.05
        n=$((n + 1))
    done
}
# Killed at points after its start (the slowest start is an ASan build's):
# never a complete-looking set; the next run cleans up the snapshot and the
# partial directory.
swept=0 partials=0
for delay in 0.05 0.4 1.2; do
    # shellcheck disable=SC2086
    "$VDDK" backup --transport https -q --parallel 1 --vm "$VM0" --vm "$VM1" $CONN \
        "$S/killed" >/dev/null 2>&1 &
    pid=$!
    wait_started $pid killed
    # ... and has taken its first snapshot (an ASan build can take seconds
    # to get there), so that each kill leaves one for the next run.
    n=0
    while ! snapshots "$VM0" | grep -qx openvddk-backup && [ $n -lt 300 ] &&
          kill -0 $pid 2>/dev/null; do
        n=$((n + 1))
    done
    sleep "$delay"
    kill -9 $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    if [ -e "$S/killed" ]; then
        # It finished before the kill: then it is complete.
        V verify -q "$S/killed" || die "a set that exists after a kill does not verify"
        rm -rf "$S/killed"
    fi
    for p in "$S"/killed.partial-*; do
        [ -e "$p" ] || continue
        [ ! -e "$p/manifest.json" ] || die "$p holds a manifest"
    done
    V backup --transport https -q --vm "$VM0" --vm "$VM1" "$S/after" 2>"$W/err" ||
        die "backup after a kill: $(cat "$W/err")"
    if grep -q "removed snapshot .* left by an earlier backup" "$W/err"; then
        swept=$((swept + 1))
    fi
    no_snapshots_of_ours "after a run following a kill at $delay s"
    rm -rf "$S/after"
    V backup --transport https -q --vm "$VM0" "$S/killed" 2>"$W/err" ||
        die "backup into the killed run's set: $(cat "$W/err")"
    if grep -q "removed .*killed.partial-.* left by an interrupted backup" "$W/err"; then
        partials=$((partials + 1))
    fi
    ls "$S" | grep -q "killed.partial" && die "the partial directory of the killed run is left"
    rm -rf "$S/killed"
done
# The kills must have hit mid-backup at least once.
[ "$swept" -gt 0 ] || die "no kill left a snapshot behind: the cleanup was not exercised"
[ "$partials" -gt 0 ] || die "no kill left a partial set behind"
# Ctrl-C (SIGINT) and SIGTERM: the run itself removes its snapshots and
# its partial set before exiting.
interrupted=0
for sig in INT TERM; do
    # shellcheck disable=SC2086
    "$VDDK" backup --transport https -q --parallel 1 --vm "$VM0" --vm "$VM1" $CONN \
        "$S/sig" >/dev/null 2>"$W/err" &
    pid=$!
    # Signal once the run has started its set (its handlers are set by
    # then), however slow the start (ASan builds).
    wait_started $pid sig
    sleep 0.1
    kill -$sig $pid 2>/dev/null || true
    rc=0
    wait $pid || rc=$?
    if [ "$rc" -ne 0 ]; then
        interrupted=$((interrupted + 1))
        grep -q "interrupted" "$W/err" || die "SIG$sig: $(cat "$W/err")"
        [ ! -e "$S/sig" ] || die "SIG$sig left a set"
    fi
    ls "$S" | grep -q "sig.partial" && die "SIG$sig left a partial set"
    no_snapshots_of_ours "after SIG$sig"
    rm -rf "$S/sig"
done
[ "$interrupted" -gt 0 ] || die "no signal arrived mid-backup"
log "killed backups: ok ($swept left a snapshot, $partials a partial set; all cleaned up)"

# ---- over NFC: a backup with nbdssl, a restore into the VM ---------------------------------
vcsim_cmd "poweroff $VM0" >/dev/null || die poweroff
NFCD_TICKET_DIR=$W/tickets NFCD_CERT_DIR=$W/cert nfcd_start || die "nfcd did not start"
N="--nfc-port $NFCD_PORT"
V backup --transport nbdssl $N -q --vm "$VM0" "$S/nfc" 2>"$W/err" || die "backup over nbdssl: $(cat "$W/err")"
for k in $KEY0 $KEYB0; do
    a=$(mf "[d['sha256'] for d in m['vms'][0]['disks'] if d['key']==$k][0]" "$S/nfc")
    b=$(mf "[d['sha256'] for v in m['vms'] for d in v['disks'] if v['moref']=='$VM0' and d['key']==$k][0]" "$S/tue")
    [ "$a" = "$b" ] || die "disk $k over nbdssl differs from the https backup"
done
# Scribble over VM0's disks, then restore the Monday set into them.
"$VDDK" fill -q -p 0x77 -o 0 -l 12M "$DIR0/bk-a.vmdk" >/dev/null
"$VDDK" fill -q -p 0x77 -o 0 -l 8M "$DIR0/bk-b.vmdk" >/dev/null
V restore "$S/mon" --to-vm "$VM1" -q 2>"$W/err" && die "restore of a two-VM set without --source-vm"
grep -q "source-vm" "$W/err" || die "message: $(cat "$W/err")"
V restore "$S/mon" --source-vm "$VM0" --to-vm "$VM0" --transport nbdssl $N -q 2>"$W/err" ||
    die "restore into the VM: $(cat "$W/err")"
want=$(mf "[d['sha256'] for v in m['vms'] for d in v['disks'] if v['moref']=='$VM0' and d['key']==$KEY0][0]" "$S/mon")
[ "$(raw_sum "$DIR0/bk-a.vmdk")" = "$want" ] || die "disk A after restore into the VM"
want=$(mf "[d['sha256'] for v in m['vms'] for d in v['disks'] if v['moref']=='$VM0' and d['key']==$KEYB0][0]" "$S/mon")
[ "$(raw_sum "$DIR0/bk-b.vmdk")" = "$want" ] || die "disk B after restore into the VM"
V restore "$S/mon" --source-vm "$VM0" --to-vm "$VM0" --transport https -q 2>"$W/err" &&
    die "restore over https"
grep -q "nbd or nbdssl" "$W/err" || die "message: $(cat "$W/err")"
[ -z "$(nfcd_violations)" ] || die "nfcd logged protocol violations: $(nfcd_violations | head -3)"
log "NFC backup and restore into a VM: ok"

# ---- usage ------------------------------------------------------------------------------------
"$VDDK" backup --vm "$VM0" "$S/x" >/dev/null 2>&1 && die "backup without --server"
V backup "$S/x" 2>"$W/err" && die "backup without VMs"
grep -q "name the VMs" "$W/err" || die "message: $(cat "$W/err")"
V backup --all --vm "$VM0" "$S/x" 2>/dev/null && die "--all with --vm"
V backup --snapshot snapshot-1 --vm "$VM0" "$S/x" 2>/dev/null && die "backup with --snapshot"
V backup --transport https -q --vm vm-999999 "$S/x" 2>"$W/err" && die "backup of an unknown VM"
[ ! -e "$S/x" ] || die "a failed backup made its set"
"$VDDK" restore "$S/full" >/dev/null 2>&1 && die "restore without --to"
log "all checks passed"
