# lib.sh - helpers for tests that run nfcd, the NFC responder (sourced;
# POSIX sh; safe under set -eu).
#
#   NFCD=/path/to/nfcd             (CTest sets it: $<TARGET_FILE:nfcd>)
#   nfcd_cert DIR                  DIR/cert.pem + DIR/key.pem, self-signed
#   nfcd_start [NFCD ARGS...]      start nfcd on 127.0.0.1 (any free port) with
#                                  a fresh ticket dir, log and port file; exports
#                                  NFCD_PORT NFCD_TICKETS NFCD_LOG NFCD_PID
#                                  NFCD_CERT NFCD_SHA1 NFCD_DIR.  Set
#                                  NFCD_TICKET_DIR to serve the tickets another
#                                  program (vcsim) writes there, NFCD_CERT_DIR
#                                  to use its cert.pem/key.pem (nfcd_cert)
#   nfcd_stop                      SIGTERM, wait (bounded), sets NFCD_STATUS
#                                  (exit status; 0 expected); idempotent, for
#                                  an EXIT trap; removes NFCD_DIR unless
#                                  NFCD_KEEP=1
#   nfcd_violations                prints the VIOLATION lines of the log (tests
#                                  assert it prints nothing after clean runs)
#   nfcd_unclean                   prints the UNCLEAN lines (a client left an
#                                  AIO session without CLOSE_SESSION: also
#                                  empty after clean runs)
#   nfcd_ticket ID MODE SERVICE FILE...
#                                  writes ticket NFCD_TICKETS/ID (atomically).
#                                  MODE ro|rw; SERVICE vpxa-nfc (vCenter) or nfc
#                                  (ESXi).  Each FILE is either a local disk
#                                  path, granted as "[nfcd] <path without the
#                                  leading />" (datastore nfcd = /; see
#                                  nfcd_dspath), or "busy:PATH" (granted but
#                                  busy), or a datastore path "[DS] rel" taken
#                                  as is, or "ds:NAME=DIR" (a datastore
#                                  mapping).  NFCD_VM (default vm-1) names the VM.
#   nfcd_dspath PATH               the datastore path nfcd_ticket grants for a
#                                  local path ("[nfcd] tmp/x/disk.vmdk")
#   nfcd_session                   prints a fresh UUID-like session id

: "${NFCD:=}"
NFCD_PID=""
NFCD_DIR=""

nfcd_cert() {
    _nd=$1
    mkdir -p "$_nd"
    certtool --generate-privkey --key-type=ecdsa --outfile "$_nd/key.pem" >/dev/null 2>&1
    cat > "$_nd/cert.info" <<EOF
organization = openvddk nfcd test
cn = localhost
dns_name = localhost
ip_address = 127.0.0.1
tls_www_server
encryption_key
signing_key
expiration_days = 2
EOF
    certtool --generate-self-signed --load-privkey "$_nd/key.pem" \
        --template "$_nd/cert.info" --outfile "$_nd/cert.pem" >/dev/null 2>&1
    [ -s "$_nd/cert.pem" ] || { echo "nfcd_cert: certtool made no certificate" >&2; return 1; }
}

# Upper-case colon hex fingerprint of a certificate: _nfcd_fp CERT sha1|sha256
_nfcd_fp() {
    certtool --fingerprint --hash "$2" --infile "$1" 2>/dev/null | tr -d ' \n' |
        tr 'a-f' 'A-F' | sed 's/../&:/g; s/:$//'
}

nfcd_start() {
    [ -n "$NFCD" ] || { echo "nfcd_start: NFCD is not set" >&2; return 1; }
    nfcd_stop   # one instance at a time
    NFCD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/nfcd.XXXXXX")
    NFCD_TICKETS=${NFCD_TICKET_DIR:-$NFCD_DIR/tickets}
    NFCD_LOG=$NFCD_DIR/nfcd.log
    _nc=${NFCD_CERT_DIR:-$NFCD_DIR}
    NFCD_CERT=$_nc/cert.pem
    mkdir -p "$NFCD_TICKETS"
    [ -n "${NFCD_CERT_DIR:-}" ] || nfcd_cert "$NFCD_DIR"
    NFCD_SHA1=$(_nfcd_fp "$NFCD_CERT" sha1)
    "$NFCD" --listen 127.0.0.1:0 --port-file "$NFCD_DIR/port" --cert "$NFCD_CERT" \
        --key "$_nc/key.pem" --tickets "$NFCD_TICKETS" --log "$NFCD_LOG" "$@" \
        </dev/null >"$NFCD_DIR/stdout" 2>"$NFCD_DIR/stderr" &
    NFCD_PID=$!
    _ni=0
    while [ ! -s "$NFCD_DIR/port" ]; do
        if ! kill -0 "$NFCD_PID" 2>/dev/null; then
            echo "nfcd_start: nfcd exited: $(cat "$NFCD_DIR/stderr")" >&2
            NFCD_PID=""
            return 1
        fi
        _ni=$((_ni + 1))
        if [ $_ni -gt 300 ]; then
            echo "nfcd_start: no port file after 30 s" >&2
            return 1
        fi
        sleep 0.1
    done
    NFCD_PORT=$(cat "$NFCD_DIR/port")
    export NFCD_PORT NFCD_TICKETS NFCD_LOG NFCD_PID NFCD_CERT NFCD_SHA1 NFCD_DIR
}

nfcd_stop() {
    NFCD_STATUS=${NFCD_STATUS:-0}
    if [ -n "${NFCD_PID:-}" ]; then
        kill -TERM "$NFCD_PID" 2>/dev/null || true
        _ni=0
        while kill -0 "$NFCD_PID" 2>/dev/null; do
            _ni=$((_ni + 1))
            if [ $_ni -gt 300 ]; then
                echo "nfcd_stop: nfcd did not stop in 30 s; killing it" >&2
                kill -KILL "$NFCD_PID" 2>/dev/null || true
                break
            fi
            sleep 0.1
        done
        NFCD_STATUS=0
        wait "$NFCD_PID" 2>/dev/null || NFCD_STATUS=$?
        if [ "$NFCD_STATUS" -ne 0 ] && [ -n "${NFCD_DIR:-}" ] && [ -s "$NFCD_DIR/stderr" ]; then
            echo "nfcd_stop: nfcd exited with status $NFCD_STATUS:" >&2
            tail -n 40 "$NFCD_DIR/stderr" >&2
        fi
        NFCD_PID=""
    fi
    if [ -n "${NFCD_DIR:-}" ] && [ "${NFCD_KEEP:-0}" != 1 ]; then
        rm -rf "$NFCD_DIR"
        NFCD_DIR=""
    fi
    return 0
}

nfcd_violations() {
    if [ -n "${NFCD_LOG:-}" ] && [ -f "$NFCD_LOG" ]; then
        grep 'VIOLATION' "$NFCD_LOG" || true
    fi
}

nfcd_unclean() {
    if [ -n "${NFCD_LOG:-}" ] && [ -f "$NFCD_LOG" ]; then
        grep 'UNCLEAN' "$NFCD_LOG" || true
    fi
}

nfcd_dspath() {
    case $1 in
        /*) _np=$1 ;;
        *) _np=$(pwd)/$1 ;;
    esac
    printf '[nfcd] %s\n' "${_np#/}"
}

nfcd_ticket() {
    _nid=$1
    _nmode=$2
    _nsvc=$3
    shift 3
    _ntmp=$NFCD_TICKETS/.tmp.$_nid
    {
        echo "service $_nsvc"
        echo "mode $_nmode"
        echo "vm ${NFCD_VM:-vm-1}"
        echo "ds nfcd /"
        for _nf in "$@"; do
            case $_nf in
                ds:*=*)
                    _nds=${_nf#ds:}
                    echo "ds ${_nds%%=*} ${_nds#*=}"
                    ;;
                busy:*)
                    echo "file $(nfcd_dspath "${_nf#busy:}")"
                    echo "busy $(nfcd_dspath "${_nf#busy:}")"
                    ;;
                \[*)
                    echo "file $_nf"
                    ;;
                *)
                    echo "file $(nfcd_dspath "$_nf")"
                    ;;
            esac
        done
    } > "$_ntmp"
    mv "$_ntmp" "$NFCD_TICKETS/$_nid"
}

nfcd_session() {
    od -An -tx1 -N16 /dev/urandom | tr -d ' \n' |
        sed 's/^\(........\)\(....\)\(....\)\(....\)\(............\)$/\1-\2-\3-\4-\5/'
}
