# lib.sh - run govmomi's vCenter simulator (tests/vsphere/vcsim) from test
# scripts.  POSIX sh, meant to be sourced; sets no shell options itself and
# works under `set -eu`.
#
# Environment: VCSIM (path of the vcsim binary; built by build-vcsim.sh
# when missing or older than vcsim/main.go), VSPHERELIB (path of this file,
# used to find build-vcsim.sh).  CTest sets both.
#
#   vcsim_start [FLAGS...]   build if needed, start vcsim FLAGS, wait for
#                            its inventory line and export:
#       VCSIM_URL VCSIM_HOST VCSIM_PORT VCSIM_SERVER (host:port)
#       VCSIM_SHA1 VCSIM_SHA256 (AA:BB:... thumbprints)  VCSIM_DC
#       VCSIM_DS VCSIM_DSDIR (first datastore, its directory)
#       VCSIM_VM VCSIM_VMNAME VCSIM_VMHOST (first VM)  VCSIM_VMPOWER
#       (poweredOn at start)  VCSIM_DISK ("[ds] path" of its first disk)
#       VCSIM_DISKKEY  VCSIM_PID  VCSIM_JSON
#       VCSIM_ESX (1 with -esx, else 0)  VCSIM_SESSIONMGR (SessionManager
#       moref: SessionManager / ha-sessionmgr)
#       VCSIM_NFCSERVICE (NfcService moref: nfcService / ha-nfc-service)
#       VCSIM_NFCHOST (ticket host; empty with -esx)  VCSIM_NFCPORT
#       VCSIM_NFCSHA1 (ticket sslThumbprint; empty without -nfc-cert)
#       VCSIM_NFCTICKETS (ticket directory; empty without -nfc-tickets)
#                            Returns 77 when vcsim cannot be built here
#                            (call it as `vcsim_start || exit $?`).
#       Flags:
#         -user U -password P   require exactly this login (default: any)
#         -cert F -key F        HTTPS key pair (default: built-in)
#         -listen A             address (default 127.0.0.1:0)
#         -esx                  ESX model (one host "ha-host", datacenter
#                               ha-datacenter) instead of vCenter (VPX)
#         -nfc-cert F           PEM certificate of the NFC responder; its
#                               SHA-1 is the tickets' sslThumbprint.  Without
#                               it the ticket methods fault (NotSupported).
#         -nfc-host H           tickets' host (vCenter mode; 127.0.0.1)
#         -nfc-port N           tickets' port (902)
#         -folder-auth          (with -user, vCenter model) /folder
#                               answers 401 unless the request carries the
#                               cookie of a live session of -user, as
#                               vCenter does (vcsim's own /folder does not
#                               check)
#         -nfc-tickets DIR      write every ticket to DIR/<sessionId>
#                               (atomically: DIR/.tmp-<id>, then rename);
#                               created if missing, never cleaned by vcsim
#       NFC over SOAP (logged-in session required, like other calls):
#         RetrieveInternalContent(ServiceInstance) -> nfcService moref
#         NfcGetVmFiles(vm)                        -> read-only ticket
#         NfcRandomAccessOpenDisk(vm, diskDeviceKey[, hostForAccess]) -> rw
#         NfcRandomAccessOpenReadonly(same)        -> read-only, one disk
#         NfcGetServerNfcLibVersion(hostForAccess) -> 11 (see nfcversion)
#       Ticket file lines: "service vpxa-nfc|nfc", "mode ro|rw", "vm MOREF",
#       "file [ds] path" (every file granted: NfcGetVmFiles all chains of
#       the VM and of its snapshots; the disk methods that disk's chain),
#       "ds NAME DIR" (the datacenter's datastores), "busy [ds] path" (leaf
#       of each disk while the VM is powered on).
#   vcsim_cmd LINE           send one command, print the JSON answer line;
#                            status 0 answered, 2 answered {"error":...},
#                            1 no answer in time (VCSIM_CMD_TIMEOUT, 30 s).
#       Commands:
#         snapshot VM NAME              {"snapshot":"snapshot-N"}
#         setdisk VM KEY FILE [PARENT...] [capkb=N]  point disk KEY at a
#                                       chain (and set its capacity)
#         adddisk VM FILE CAPACITYKB    {"key":N}
#         poweron VM / poweroff VM      {"power":"poweredOn"|"poweredOff"}
#                                       (already so is no error)
#         nfcstats                      {"tickets":N,"last":ID,"ids":[...],
#                                        "calls":{METHOD:N},"faults":N}
#         nfcversion N|none             what NfcGetServerNfcLibVersion
#                                       answers (none: InvalidRequest fault)
#         expire USER                   {"expired":N}: TerminateSession of
#                                       every session of USER
#         folderauth check|deny         (-folder-auth) deny: /folder answers
#                                       401 to everyone; check: back to normal
#         quit
#   vcsim_field JSON KEY     print one top-level field of a JSON line.
#   vcsim_path_local "[ds] dir/file.vmdk"   print the local file behind it.
#   vcsim_kill               SIGKILL the server (for "server gone" tests).
#   vcsim_stop               quit, wait, kill if needed, remove everything;
#                            idempotent, safe in an EXIT trap.
#
# One server at a time per shell.  vcsim's stdin is a FIFO held open on file
# descriptor 8 of the calling shell.

VCSIM_PY=/usr/bin/python3
VCSIM_PID=
_vcsim_tmp=

_vcsim_err() { echo "vcsim: $*" >&2; }

# _vcsim_lines FILE: number of complete lines in FILE.
_vcsim_lines() {
    _vl=$(wc -l <"$1" 2>/dev/null | tr -d ' ')
    echo "${_vl:-0}"
}

vcsim_start() {
    if [ -n "$VCSIM_PID" ]; then
        _vcsim_err "already running (pid $VCSIM_PID)"
        return 1
    fi
    if [ -z "${VCSIM:-}" ] || [ -z "${VSPHERELIB:-}" ]; then
        _vcsim_err "VCSIM and VSPHERELIB must be set"
        return 1
    fi
    if [ ! -x "$VCSIM_PY" ]; then
        _vcsim_err "SKIP: $VCSIM_PY is missing"
        return 77
    fi
    _vc_rc=0
    sh "$(dirname "$VSPHERELIB")/build-vcsim.sh" "$VCSIM" || _vc_rc=$?
    if [ "$_vc_rc" -ne 0 ]; then
        _vcsim_err "build failed ($_vc_rc)"
        return "$_vc_rc"
    fi
    _vcsim_tmp=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-vcsim.XXXXXX") || return 1
    mkfifo "$_vcsim_tmp/in" || return 1
    # vcsim's side opens the FIFO (and only then out and err) once this
    # shell opens it for writing below: make out exist before the wait.
    : >"$_vcsim_tmp/out"
    "$VCSIM" "$@" <"$_vcsim_tmp/in" >"$_vcsim_tmp/out" 2>"$_vcsim_tmp/err" &
    VCSIM_PID=$!
    export VCSIM_PID
    # Opening the FIFO for writing waits for vcsim's side; the shell keeps
    # it open so that vcsim sees EOF only when we close it.
    exec 8>"$_vcsim_tmp/in"
    _vc_i=0
    while [ "$(_vcsim_lines "$_vcsim_tmp/out")" -lt 1 ]; do
        if ! kill -0 "$VCSIM_PID" 2>/dev/null; then
            _vcsim_err "exited before start-up: $(cat "$_vcsim_tmp/err")"
            vcsim_stop
            return 1
        fi
        _vc_i=$((_vc_i + 1))
        if [ $_vc_i -gt 300 ]; then
            _vcsim_err "no start-up line within 30 s: $(cat "$_vcsim_tmp/err")"
            vcsim_stop
            return 1
        fi
        sleep 0.1
    done
    VCSIM_JSON=$_vcsim_tmp/vcsim.json
    head -n 1 "$_vcsim_tmp/out" >"$VCSIM_JSON"
    _vc_env=$("$VCSIM_PY" - "$VCSIM_JSON" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
ds = j["datastores"][0]
vm = j["vms"][0]
disk = vm["disks"][0]
v = {
    "URL": j["url"], "HOST": j["host"], "PORT": j["port"],
    "SERVER": "%s:%d" % (j["host"], j["port"]),
    "SHA1": j["sha1"], "SHA256": j["sha256"], "DC": j["datacenter"],
    "DS": ds["name"], "DSDIR": ds["dir"],
    "VM": vm["moref"], "VMNAME": vm["name"], "VMHOST": vm["host"],
    "VMPOWER": vm.get("power", ""),
    "DISK": disk["file"], "DISKKEY": disk["key"],
    "ESX": 1 if j.get("esx") else 0,
    "SESSIONMGR": j.get("sessionManager", ""),
}
nfc = j.get("nfc", {})
for k in ("service", "host", "port", "sha1", "tickets"):
    v["NFC" + k.upper()] = nfc.get(k, "")
for k, x in v.items():
    print("VCSIM_%s='%s'; export VCSIM_%s" % (k, str(x).replace("'", "'\\''"), k))
EOF
) || {
        _vcsim_err "cannot parse start-up line: $(cat "$VCSIM_JSON")"
        vcsim_stop
        return 1
    }
    eval "$_vc_env"
    export VCSIM_JSON
    return 0
}

vcsim_cmd() {
    if [ -z "$VCSIM_PID" ] || ! kill -0 "$VCSIM_PID" 2>/dev/null; then
        _vcsim_err "not running"
        return 1
    fi
    _vc_n=$(_vcsim_lines "$_vcsim_tmp/out")
    # A subshell takes the SIGPIPE if vcsim is gone.
    (printf '%s\n' "$1" >&8) 2>/dev/null || {
        _vcsim_err "cannot send: $1"
        return 1
    }
    _vc_n=$((_vc_n + 1))
    _vc_i=0
    _vc_max=$(( ${VCSIM_CMD_TIMEOUT:-30} * 10 ))
    while [ "$(_vcsim_lines "$_vcsim_tmp/out")" -lt "$_vc_n" ]; do
        _vc_i=$((_vc_i + 1))
        if [ $_vc_i -gt "$_vc_max" ] || ! kill -0 "$VCSIM_PID" 2>/dev/null; then
            _vcsim_err "no answer to: $1"
            return 1
        fi
        sleep 0.05
    done
    _vc_line=$(sed -n "${_vc_n}p" "$_vcsim_tmp/out")
    printf '%s\n' "$_vc_line"
    case $_vc_line in
        '{"error":'*) return 2 ;;
    esac
    return 0
}

vcsim_field() {
    "$VCSIM_PY" -c 'import json, sys
v = json.loads(sys.argv[1]).get(sys.argv[2])
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "$1" "$2"
}

vcsim_path_local() {
    "$VCSIM_PY" - "$VCSIM_JSON" "$1" <<'EOF'
import json, os, re, sys
m = re.match(r"^\[([^\]]+)\] ?(.*)$", sys.argv[2])
if not m:
    sys.exit("vcsim_path_local: not a datastore path: %r" % sys.argv[2])
for ds in json.load(open(sys.argv[1]))["datastores"]:
    if ds["name"] == m.group(1):
        print(os.path.join(ds["dir"], m.group(2)))
        sys.exit(0)
sys.exit("vcsim_path_local: no datastore %r" % m.group(1))
EOF
}

vcsim_kill() {
    if [ -n "$VCSIM_PID" ]; then
        kill -KILL "$VCSIM_PID" 2>/dev/null || true
        wait "$VCSIM_PID" 2>/dev/null || true
    fi
}

vcsim_stop() {
    if [ -n "$VCSIM_PID" ]; then
        if kill -0 "$VCSIM_PID" 2>/dev/null; then
            (printf 'quit\n' >&8) 2>/dev/null || true
        fi
        exec 8>&-
        _vc_i=0
        while kill -0 "$VCSIM_PID" 2>/dev/null && [ $_vc_i -lt 100 ]; do
            _vc_i=$((_vc_i + 1))
            sleep 0.1
        done
        if kill -0 "$VCSIM_PID" 2>/dev/null; then
            kill -TERM "$VCSIM_PID" 2>/dev/null || true
            sleep 1
            kill -KILL "$VCSIM_PID" 2>/dev/null || true
        fi
        wait "$VCSIM_PID" 2>/dev/null || true
        VCSIM_PID=
    fi
    # After a SIGKILL vcsim could not remove its datastore directories.
    if [ -n "${VCSIM_JSON:-}" ] && [ -f "$VCSIM_JSON" ]; then
        "$VCSIM_PY" - "$VCSIM_JSON" <<'EOF' || true
import json, os, shutil, sys
for ds in json.load(open(sys.argv[1]))["datastores"]:
    d = ds["dir"]
    if os.path.basename(d).startswith("govcsim-") and os.path.isdir(d):
        shutil.rmtree(d, ignore_errors=True)
EOF
    fi
    if [ -n "$_vcsim_tmp" ]; then
        rm -rf "$_vcsim_tmp"
        _vcsim_tmp=
    fi
    VCSIM_JSON=
    return 0
}
