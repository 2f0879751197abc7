# bench/lag.sh - sourced by benchmarks: a round trip added on loopback.
#
#   lag_relay RTT_US TARGET_PORT SCRATCH_DIR
#
# Starts tests/net/lagproxy ($LAGPROXY) in front of 127.0.0.1:TARGET_PORT
# with half of RTT_US added each way, and sets LAG_PORT to the port to use
# instead.  With RTT_US 0 there is no relay and LAG_PORT is TARGET_PORT.
# The relays' pids collect in LAG_PIDS; lag_stop ends them.
LAG_PIDS=
lag_relay() {
    LAG_PORT=$2
    [ "$1" -gt 0 ] || return 0
    _lag_f=$(mktemp "$3/lag.XXXXXX")
    "$LAGPROXY" $(($1 / 2)) "$2" >"$_lag_f" &
    LAG_PIDS="$LAG_PIDS $!"
    _lag_i=0
    until [ -s "$_lag_f" ]; do
        _lag_i=$((_lag_i + 1))
        [ $_lag_i -lt 50 ] || { echo "lagproxy did not start" >&2; return 1; }
        sleep 0.1
    done
    LAG_PORT=$(cat "$_lag_f")
}
lag_stop() {
    for _lag_p in $LAG_PIDS; do kill "$_lag_p" 2>/dev/null || :; done
    LAG_PIDS=
}
