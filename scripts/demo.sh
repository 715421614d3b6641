#!/usr/bin/env bash
# The demo: two speakerd daemons on loopback, no root needed.
#
# The receiver (config/examples/demo/receiver) listens on 127.0.0.1; the sender
# (config/examples/demo/sender, node demo-node) peers with it from 127.0.0.2 and
# advertises the demo Services.  The script waits until the receiver holds every
# planned route, prints what it received and the session summary, then stops
# both daemons with SIGTERM (Cease/Administrative Shutdown) and cleans up.
#
# Environment:
#   VENV            virtualenv to use; created (and speakerd installed in it) if missing
#                   (default: .venv in the checkout)
#   PYTHON          interpreter to create the venv with (default: python3)
#   DEMO_RECEIVER   receiver address (default 127.0.0.1)   \  loopback (127.0.0.0/8)
#   DEMO_SENDER     sender address   (default 127.0.0.2)   /  addresses only
#   DEMO_PORT       BGP port both listen on (default 11179, at most 16384)
#   DEMO_TIMEOUT    seconds to wait for the routes (default 30)
#
# Exit status: 0 when the receiver got every planned route and both daemons
# stopped cleanly, non-zero otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
RECEIVER=${DEMO_RECEIVER:-127.0.0.1}
SENDER=${DEMO_SENDER:-127.0.0.2}
PORT=${DEMO_PORT:-11179}
TIMEOUT=${DEMO_TIMEOUT:-30}

for a in "$RECEIVER" "$SENDER"; do
    case $a in
        127.*) ;;
        *) echo "demo: $a is not a loopback address (127.0.0.0/8 only)" >&2; exit 2 ;;
    esac
done

if [ ! -x "$VENV/bin/speakerd" ] || [ ! -x "$VENV/bin/speakerctl" ]; then
    echo "demo: creating $VENV and installing speakerd into it" >&2
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q -e "$ROOT"
fi
PY=$VENV/bin/python
SPEAKERD=$VENV/bin/speakerd
CTL=$VENV/bin/speakerctl

TMP=$(mktemp -d "${TMPDIR:-/tmp}/speakerd-demo.XXXXXX")
RECEIVER_PID=
SENDER_PID=

stop() {  # stop <pid>: SIGTERM, wait, and return its exit code
    local pid=$1 rc=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || rc=$?
    return "$rc"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # anything still running at this point is stopped by PID
    for pid in $SENDER_PID $RECEIVER_PID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $SENDER_PID $RECEIVER_PID; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$rc" -ne 0 ]; then
        for f in "$TMP"/*.log; do
            [ -f "$f" ] || continue
            echo "---- $(basename "$f")" >&2
            tail -n 20 "$f" >&2
        done
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT INT TERM

# the demo manifests, with the chosen addresses and port
for side in receiver sender; do
    mkdir -p "$TMP/$side"
    sed -e "s/127\.0\.0\.1/@RECEIVER@/g" -e "s/127\.0\.0\.2/@SENDER@/g" \
        -e "s/@RECEIVER@/$RECEIVER/g" -e "s/@SENDER@/$SENDER/g" -e "s/11179/$PORT/g" \
        "config/examples/demo/$side/$side.yaml" > "$TMP/$side/$side.yaml"
done

"$SPEAKERD" run -c "$TMP/receiver" --node receiver --socket "$TMP/receiver.sock" \
    --state "$TMP/receiver-state.json" --watch 0 > "$TMP/receiver.log" 2>&1 &
RECEIVER_PID=$!
"$SPEAKERD" run -c "$TMP/sender" --node demo-node --socket "$TMP/sender.sock" \
    --state "$TMP/sender-state.json" --watch 0 > "$TMP/sender.log" 2>&1 &
SENDER_PID=$!

# wait until the receiver holds every route the sender plans (bounded)
count() {  # count <socket> <speakerctl words...>: the "total" of a JSON answer, or -1
    "$CTL" --socket "$1" --json "${@:2}" 2>/dev/null \
        | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["total"])' 2>/dev/null || echo -1
}
deadline=$((SECONDS + TIMEOUT))
while :; do
    want4=$(count "$TMP/sender.sock" show bgp ipv4)
    want6=$(count "$TMP/sender.sock" show bgp ipv6)
    got4=$(count "$TMP/receiver.sock" show bgp ipv4 received-routes sender)
    got6=$(count "$TMP/receiver.sock" show bgp ipv6 received-routes sender)
    if [ "$want4" -gt 0 ] && [ "$got4" -eq "$want4" ] && [ "$got6" -eq "$want6" ]; then
        break
    fi
    for pid in $RECEIVER_PID $SENDER_PID; do
        kill -0 "$pid" 2>/dev/null || { echo "demo: a daemon exited early" >&2; exit 1; }
    done
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "demo: after ${TIMEOUT}s the receiver has $got4/$want4 IPv4 and $got6/$want6 IPv6 routes" >&2
        exit 1
    fi
    sleep 0.2
done

echo "== receiver: speakerctl show bgp ipv4 received-routes sender"
"$CTL" --socket "$TMP/receiver.sock" show bgp ipv4 received-routes sender
echo
echo "== receiver: speakerctl show bgp ipv6 received-routes sender"
"$CTL" --socket "$TMP/receiver.sock" show bgp ipv6 received-routes sender
echo
echo "== receiver: speakerctl show bgp summary"
"$CTL" --socket "$TMP/receiver.sock" show bgp summary
echo

# graceful stop: the sender first, so the receiver records its Cease
rc=0
stop "$SENDER_PID" || rc=$?
SENDER_PID=
if [ "$rc" -ne 0 ]; then
    echo "demo: the sender exited with $rc" >&2
    exit 1
fi
stop "$RECEIVER_PID" || rc=$?
RECEIVER_PID=
if [ "$rc" -ne 0 ]; then
    echo "demo: the receiver exited with $rc" >&2
    exit 1
fi
echo "demo: both daemons stopped cleanly"
