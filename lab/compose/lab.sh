#!/usr/bin/env bash
# The compose lab (make lab-up / make lab-down call this).
#
#   lab/compose/lab.sh up     build the router images, start the lab, wait until
#                             speakerd has sent every planned route to both
#                             routers, print the routers' tables
#   lab/compose/lab.sh show   print the routers' tables and speakerd's summary
#   lab/compose/lab.sh down   stop and remove the lab (containers, network, state volume)
#
# Environment: SPEAKERD_IMAGE (default speakerd:0.1.0; built by `make image`,
# else docker-compose builds it), BASE_IMAGE (default debian:bookworm-slim),
# LAB_PROJECT (compose project name, default speakerd-lab), LAB_TIMEOUT
# (seconds to wait for the routes, default 90), COMPOSE (default docker-compose),
# FRR_IMAGE (a published FRR image to pull and use instead of building frr/,
# e.g. quay.io/frrouting/frr:9.1.0; it reads the same /etc/frr/daemons and frr.conf).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
COMPOSE=${COMPOSE:-docker-compose}
export COMPOSE_PROJECT_NAME=${LAB_PROJECT:-speakerd-lab}
export BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
export SPEAKERD_IMAGE=${SPEAKERD_IMAGE:-speakerd:0.1.0}
TIMEOUT=${LAB_TIMEOUT:-90}

# docker exec into a service's container (docker-compose exec costs seconds per call)
run_in() {
    local id
    id=$($COMPOSE ps -q "$1")
    [ -n "$id" ] || { echo "lab: service $1 is not running" >&2; return 1; }
    docker exec "$id" "${@:2}"
}

show() {
    echo "== frr: show bgp ipv4 unicast"
    run_in frr vtysh -c 'show bgp ipv4 unicast'
    echo "== gobgp: gobgp global rib"
    run_in gobgp gobgp global rib
    echo "== speakerd: speakerctl show bgp summary"
    run_in speakerd speakerctl show bgp summary
}

# every peer Established and sent all it should: "yes", else what is missing
sent_all() {
    docker exec "$1" speakerctl --json show bgp summary 2>/dev/null | python3 -c '
import json, sys
peers = json.load(sys.stdin)["peers"]
late = ["%(peer)s %(state)s %(prefixes_sent)d/%(prefixes_wanted)d sent" % p for p in peers
        if not (p["established"] and p["prefixes_wanted"] > 0 and p["prefixes_sent"] == p["prefixes_wanted"])]
print(", ".join(late) if late or not peers else "yes")' 2>/dev/null || echo "speakerd not answering"
}

case ${1:-} in
up)
    if [ -n "${FRR_IMAGE:-}" ]; then
        # a published FRR image (e.g. quay.io/frrouting/frr:9.1.0): pulled unless the
        # engine has it, and never built over (--no-build)
        docker image inspect "$FRR_IMAGE" >/dev/null 2>&1 || $COMPOSE pull frr
        $COMPOSE build --force-rm gobgp
        up_opts=--no-build
    else
        $COMPOSE build --force-rm frr gobgp
        up_opts=
    fi
    t0=$(date +%s%N)
    # shellcheck disable=SC2086
    $COMPOSE up -d $up_opts
    speakerd=$($COMPOSE ps -q speakerd)
    deadline=$((SECONDS + TIMEOUT))
    while :; do
        state=$(sent_all "$speakerd")
        if [ "$state" = yes ]; then
            t1=$(date +%s%N)
            echo "lab: every route sent $(( (t1 - t0) / 1000000000 )).$(( (t1 - t0) / 100000000 % 10 )) s after docker-compose up"
            break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "lab: after ${TIMEOUT}s: $state" >&2
            $COMPOSE logs --tail 20 >&2 || true
            exit 1
        fi
        sleep 0.5
    done
    show
    echo "lab: up (project $COMPOSE_PROJECT_NAME); stop it with: make lab-down"
    ;;
show)
    show
    ;;
down)
    $COMPOSE down -v --remove-orphans -t 10
    ;;
*)
    echo "usage: $0 up|show|down" >&2
    exit 2
    ;;
esac
