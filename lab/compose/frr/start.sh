#!/bin/sh
# PID 1 of the FRR lab container: start the daemons named in /etc/frr/daemons
# under watchfrr, stop them cleanly on SIGTERM (docker stop / docker-compose down).
set -eu
stop() {
    /usr/lib/frr/frrinit.sh stop || true
    exit 0
}
trap stop TERM INT
/usr/lib/frr/frrinit.sh start
# wait for a signal: `wait` returns as soon as one arrives, the trap runs
tail -f /dev/null &
wait $!
