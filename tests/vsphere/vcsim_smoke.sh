#!/bin/sh
# vcsim_smoke.sh - the vcsim harness itself: start-up line, thumbprints,
# /about, datastore file access with Range, the snapshot / setdisk /
# adddisk commands (checked over SOAP too), clean stop, and SIGKILL.
# Exit status 77 when go, govmomi, curl or python3 is missing.
set -eu
NAME=vcsim_smoke
: "${VSPHERELIB:?VSPHERELIB must name tests/vsphere/lib.sh}"
: "${VCSIM:?VCSIM must name the vcsim binary to build or use}"
. "$VSPHERELIB"

die() { echo "$NAME: FAIL: $*" >&2; exit 1; }
log() { echo "$NAME: $*" >&2; }
for tool in curl "$VCSIM_PY"; do
    command -v "$tool" >/dev/null 2>&1 || { log "SKIP: $tool is missing"; exit 77; }
done

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-vsphere.XXXXXX")
trap 'vcsim_stop; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM HUP

t0=$(date +%s)
vcsim_start || exit $?
log "vcsim pid $VCSIM_PID at $VCSIM_URL (start-up incl. build check $(( $(date +%s) - t0 )) s)"

for v in VCSIM_URL VCSIM_HOST VCSIM_PORT VCSIM_SERVER VCSIM_SHA1 VCSIM_SHA256 \
         VCSIM_DC VCSIM_DS VCSIM_DSDIR VCSIM_VM VCSIM_VMNAME VCSIM_VMHOST \
         VCSIM_DISK VCSIM_DISKKEY VCSIM_PID VCSIM_JSON; do
    eval "val=\${$v:-}"
    [ -n "$val" ] || die "$v is empty"
done
[ "$VCSIM_URL" = "https://$VCSIM_SERVER/sdk" ] || die "URL $VCSIM_URL vs $VCSIM_SERVER"
[ -d "$VCSIM_DSDIR" ] || die "datastore directory $VCSIM_DSDIR missing"
case $VCSIM_DISKKEY in *[!0-9]*) die "disk key $VCSIM_DISKKEY" ;; esac
case $VCSIM_DISK in "[$VCSIM_DS] "*.vmdk) ;; *) die "disk $VCSIM_DISK" ;; esac

# Thumbprints: the certificate the server really presents.
"$VCSIM_PY" - "$VCSIM_HOST" "$VCSIM_PORT" "$VCSIM_SHA1" "$VCSIM_SHA256" <<'EOF' ||
import hashlib, ssl, sys
der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((sys.argv[1], int(sys.argv[2]))))
tp = lambda h: ":".join("%02X" % b for b in h.digest())
for want, h in ((sys.argv[3], hashlib.sha1(der)), (sys.argv[4], hashlib.sha256(der))):
    if tp(h) != want:
        sys.exit("thumbprint %s, server presents %s" % (want, tp(h)))
EOF
    die "thumbprints"

# /about lists the SOAP methods.
code=$(curl -sk -o "$W/about" -w '%{http_code}' "https://$VCSIM_SERVER/about") || die "curl /about"
[ "$code" = 200 ] || die "/about answered $code"
grep -q CreateSnapshot_Task "$W/about" || die "/about does not list CreateSnapshot_Task"

# Datastore files: a file written into the directory, read with Range.
p=$(vcsim_path_local "[$VCSIM_DS] smoke/data.bin") || die "vcsim_path_local"
[ "$p" = "$VCSIM_DSDIR/smoke/data.bin" ] || die "vcsim_path_local gave $p"
mkdir -p "$VCSIM_DSDIR/smoke"
head -c 1048576 /dev/urandom >"$p"
dd if="$p" of="$W/want" bs=1 skip=70000 count=5000 2>/dev/null
furl="https://$VCSIM_SERVER/folder/smoke/data.bin?dcPath=$VCSIM_DC&dsName=$VCSIM_DS"
code=$(curl -sk -H 'Range: bytes=70000-74999' -b 'vmware_soap_session=none' \
       -D "$W/hdr" -o "$W/got" -w '%{http_code}' "$furl") || die "curl range"
[ "$code" = 206 ] || die "Range GET answered $code"
grep -qi '^Content-Range: bytes 70000-74999/1048576' "$W/hdr" || die "Content-Range: $(cat "$W/hdr")"
cmp -s "$W/want" "$W/got" || die "Range GET returned the wrong bytes"
log "Range GET ok"

# Commands.
r=$(vcsim_cmd "snapshot $VCSIM_VM smoke1") || die "snapshot: $r"
SNAP=$(vcsim_field "$r" snapshot)
case $SNAP in snapshot-[0-9]*) ;; *) die "snapshot answer $r" ;; esac

dir=${VCSIM_DISK#"[$VCSIM_DS] "}
dir=${dir%/*}
DELTA="[$VCSIM_DS] $dir/smoke-000001.vmdk"
echo delta >"$(vcsim_path_local "$DELTA")"
r=$(vcsim_cmd "setdisk $VCSIM_VM $VCSIM_DISKKEY $DELTA $VCSIM_DISK") || die "setdisk: $r"
[ "$(vcsim_field "$r" ok)" = true ] || die "setdisk answer $r"

r=$(vcsim_cmd "adddisk $VCSIM_VM [$VCSIM_DS] $dir/smoke-second.vmdk 2048") || die "adddisk: $r"
KEY2=$(vcsim_field "$r" key)
case $KEY2 in ''|*[!0-9]*) die "adddisk answer $r" ;; esac

if r=$(vcsim_cmd "setdisk $VCSIM_VM $VCSIM_DISKKEY [NoSuchDS] x.vmdk"); then
    die "setdisk with a bad datastore succeeded: $r"
fi
[ -n "$(vcsim_field "$r" error)" ] || die "no error text: $r"
r=$(vcsim_cmd "frobnicate") && die "unknown command succeeded: $r"

# Independently over SOAP: the VM's disk is the delta on the base, the
# snapshot still names the base, the second disk is there.
"$VCSIM_PY" - "$VCSIM_URL" "$VCSIM_VM" "$SNAP" "$VCSIM_DISKKEY" "$DELTA" "$VCSIM_DISK" "$KEY2" <<'EOF' ||
import ssl, sys, urllib.request
import xml.etree.ElementTree as ET
url, vm, snap, key, delta, base, key2 = sys.argv[1:]
ctx = ssl._create_unverified_context()
V = "urn:vim25"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
cookie = []
def call(body):
    env = ('<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
           'xmlns:xsi="%s"><soapenv:Body>%s</soapenv:Body></soapenv:Envelope>' % (XSI, body))
    req = urllib.request.Request(url, env.encode(), {"Content-Type": "text/xml",
                                 "SOAPAction": "urn:vim25/6.5"})
    if cookie:
        req.add_header("Cookie", cookie[0])
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        c = r.headers.get("Set-Cookie")
        if c:
            cookie[:] = [c.split(";")[0]]
        return ET.fromstring(r.read())
sc = call('<RetrieveServiceContent xmlns="%s"><_this type="ServiceInstance">'
          'ServiceInstance</_this></RetrieveServiceContent>' % V)
sm = sc.find(".//{%s}sessionManager" % V).text
pc = sc.find(".//{%s}propertyCollector" % V).text
call('<Login xmlns="%s"><_this type="SessionManager">%s</_this><userName>u</userName>'
     '<password>p</password></Login>' % (V, sm))
def disks(typ, obj, prop):
    x = call('<RetrievePropertiesEx xmlns="%s"><_this type="PropertyCollector">%s</_this>'
             '<specSet><propSet><type>%s</type><pathSet>%s</pathSet></propSet>'
             '<objectSet><obj type="%s">%s</obj></objectSet></specSet><options/>'
             '</RetrievePropertiesEx>' % (V, pc, typ, prop, typ, obj))
    out = {}
    for d in x.iter():
        if d.get("{%s}type" % XSI) == "VirtualDisk":
            chain, b = [], d.find("{%s}backing" % V)
            while b is not None:
                chain.append(b.find("{%s}fileName" % V).text)
                b = b.find("{%s}parent" % V)
            out[d.find("{%s}key" % V).text] = chain
    return out
now = disks("VirtualMachine", vm, "config.hardware.device")
then = disks("VirtualMachineSnapshot", snap, "config")
if now.get(key) != [delta, base]:
    sys.exit("VM disk %s over SOAP: %r" % (key, now))
if key2 not in now:
    sys.exit("added disk %s not visible: %r" % (key2, now))
if then.get(key) != [base] or key2 in then:
    sys.exit("snapshot %s config changed: %r" % (snap, then))
EOF
    die "SOAP check"
log "snapshot $SNAP, setdisk, adddisk (key $KEY2) ok"

# Clean stop removes the datastore directory.
dsdir=$VCSIM_DSDIR
pid=$VCSIM_PID
vcsim_stop
kill -0 "$pid" 2>/dev/null && die "vcsim still running after vcsim_stop"
[ ! -e "$dsdir" ] || die "$dsdir left behind"
vcsim_stop # idempotent

# SIGKILL: the server is gone at once; vcsim_stop still cleans up.
vcsim_start || exit $?
dsdir=$VCSIM_DSDIR
pid=$VCSIM_PID
vcsim_kill
kill -0 "$pid" 2>/dev/null && die "vcsim survived vcsim_kill"
curl -sk -m 5 -o /dev/null "https://$VCSIM_SERVER/about" && die "server answers after vcsim_kill"
r=$(vcsim_cmd "snapshot $VCSIM_VM x") && die "command answered after vcsim_kill: $r"
vcsim_stop
[ ! -e "$dsdir" ] || die "$dsdir left behind after vcsim_kill"
log "PASS"
