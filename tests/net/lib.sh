# lib.sh - shared setup for the net test scripts (sourced, POSIX sh).
#
# Environment (set by CTest): VDDK (the tool), VIXNET (library client),
# BADPROTO (raw protocol client).  Each script gets a private scratch
# directory $W; every server it starts is killed on exit, and every
# client command runs under `timeout`, so nothing can hang the suite.
# Exit status 77 means "skipped" (a peer tool is missing).
set -eu

NAME=$(basename "$0" .sh)
: "${VDDK:?VDDK must name the vddk tool}"
: "${VIXNET:=}"
: "${BADPROTO:=}"
T=${NET_TIMEOUT:-120}

W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-net.XXXXXX")
PIDS=""
cleanup() {
    for p in $PIDS; do
        kill -9 "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$W"

log() { echo "$NAME: $*" >&2; }
die() { echo "$NAME: FAIL: $*" >&2; exit 1; }
CHECKS=0
ok() { CHECKS=$((CHECKS + 1)); }

need() {
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "$NAME: SKIP: $tool is not installed" >&2
            exit 77
        fi
    done
}

# run CMD...: run under the timeout; fail the test with the command line.
run() {
    timeout "$T" "$@" || die "command failed ($?): $*"
}

# fails CODE CMD...: CMD must fail and its stderr must contain "error CODE:".
fails() {
    want=$1
    shift
    if timeout "$T" "$@" >"$W/fails.out" 2>"$W/fails.err"; then
        die "expected error $want, but succeeded: $*"
    fi
    grep -q "error $want:" "$W/fails.err" ||
        die "expected error $want from: $*; got: $(cat "$W/fails.err")"
    ok
}

# wait_for FILE PATTERN PID: wait (bounded) until FILE contains PATTERN,
# failing early if PID died.
wait_for() {
    wait_count "$1" "$2" 1 "$3"
}

# wait_count FILE PATTERN N PID: wait (bounded) until N lines of FILE match
# PATTERN, failing early if PID died (for a file that already holds some).
wait_count() {
    i=0
    while n=$(grep -c "$2" "$1" 2>/dev/null); [ "${n:-0}" -lt "$3" ]; do
        kill -0 "$4" 2>/dev/null || die "process $4 exited: $(cat "$1" 2>/dev/null)"
        i=$((i + 1))
        [ $i -lt 300 ] || die "timed out waiting for $3 lines '$2' in $1: $(cat "$1")"
        sleep 0.1
    done
}

# serve LOG ARGS...: start `vddk serve ARGS` (TCP port 0 on 127.0.0.1 unless
# ARGS say otherwise); sets SPID and PORT (empty for Unix-only servers).
serve() {
    slog=$1
    shift
    # The child truncates the log when it starts, maybe after the first look
    # below: a line left by an earlier server of that name would pass it.
    rm -f "$slog"
    "$VDDK" serve "$@" 2>"$slog" &
    SPID=$!
    PIDS="$PIDS $SPID"
    wait_for "$slog" "TLS " "$SPID"
    PORT=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\)$/\1/p' "$slog" | head -n 1)
}

# stop PID [any]: SIGTERM and wait (bounded) for the exit, which must be
# status 0 (a sanitizer report or a crash on the way out fails the test)
# unless "any" is given (peer servers).
stop() {
    kill -TERM "$1" 2>/dev/null || true
    i=0
    while kill -0 "$1" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 300 ] || die "process $1 did not stop after SIGTERM"
        sleep 0.1
    done
    src=0
    wait "$1" 2>/dev/null || src=$?
    [ "${2:-}" = any ] || [ $src -eq 0 ] || die "process $1 exited with status $src after SIGTERM"
}

# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# mkpki DIR: a CA and a server certificate for localhost / 127.0.0.1, laid
# out as libnbd, qemu and nbdkit expect (ca-cert.pem, server-cert.pem,
# server-key.pem).  A second, unrelated certificate goes to other-*.pem.
mkpki() {
    d=$1
    mkdir -p "$d"
    certtool --generate-privkey --key-type=ecdsa --outfile "$d/ca-key.pem" 2>/dev/null
    cat > "$d/ca.info" <<EOF
cn = openvddk test CA
ca
cert_signing_key
expiration_days = 2
EOF
    certtool --generate-self-signed --load-privkey "$d/ca-key.pem" --template "$d/ca.info" \
        --outfile "$d/ca-cert.pem" 2>/dev/null
    cat > "$d/server.info" <<EOF
organization = openvddk test
cn = localhost
dns_name = localhost
ip_address = 127.0.0.1
tls_www_server
encryption_key
signing_key
expiration_days = 2
EOF
    for n in server other; do
        certtool --generate-privkey --key-type=ecdsa --outfile "$d/$n-key.pem" 2>/dev/null
        certtool --generate-certificate --load-privkey "$d/$n-key.pem" \
            --load-ca-certificate "$d/ca-cert.pem" --load-ca-privkey "$d/ca-key.pem" \
            --template "$d/server.info" --outfile "$d/$n-cert.pem" 2>/dev/null
    done
    [ -s "$d/server-cert.pem" ] || die "certtool made no certificate"
}

# fingerprint CERT HASH: colon-separated upper-case hex (VDDK's format).
fingerprint() {
    certtool --fingerprint --hash "$2" --infile "$1" 2>/dev/null | tr -d ' \n' |
        tr 'a-f' 'A-F' | sed 's/../&:/g; s/:$//'
}

# mkpsk FILE USER: a PSK file with one random 32-byte key; prints the hex key.
mkpsk() {
    k=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    echo "$2:$k" > "$1"
    echo "$k"
}

# disk_sha DISK: SHA-256 of a disk's content through our engine.
disk_sha() {
    "$VDDK" checksum "$1" | cut -d' ' -f1
}

raw_sha() {
    sha256sum "$1" | cut -d' ' -f1
}

# datamap: "start length" lines of data runs (merged) from either
# `nbdinfo --map` (type 0 = data) or `vddk map` (status data).
nbdinfo_data() {
    awk '$3 == "0" || $3 ~ /^0/ { if (NF >= 3 && ($3 + 0) == 0) print $1, $2 }' |
        awk 'NF == 2 { if ($1 == end) { end += $2; next } if (end != "") print start, end - start; start = $1; end = $1 + $2 } END { if (end != "") print start, end - start }'
}

vddk_data() {
    awk '$3 == "data" { print $1, $2 }' |
        awk 'NF == 2 { if ($1 == end) { end += $2; next } if (end != "") print start, end - start; start = $1; end = $1 + $2 } END { if (end != "") print start, end - start }'
}
