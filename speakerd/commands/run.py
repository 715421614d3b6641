"""`speakerd run`: the daemon.

Starts every session selected for this node, serves the control socket (and
metrics when asked), reloads on SIGHUP or when a config file changes, and on
SIGTERM/SIGINT sends Cease/Administrative Shutdown to every peer and exits 0
(with ``--drain-on-stop``, after a drain: see :meth:`speakerd.speaker.Speaker.drain`).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

from .. import logs, sdnotify
from ..config import ConfigError

log = logging.getLogger("speakerd")

DEFAULT_SOCKET = "/run/speakerd/speakerd.sock"


def default_state_path() -> str:
    base = os.environ.get("STATE_DIRECTORY", "").split(":")[0] or "/var/lib/speakerd"
    return os.path.join(base, "state.json")


def register(sub):
    p = sub.add_parser("run", help="run the daemon",
                       description="Run speakerd: BGP sessions for every peer selected for this node.")
    p.add_argument("-c", "--config", action="append", metavar="PATH",
                   help="config file or directory (repeatable); or --kubernetes")
    k = p.add_argument_group("Kubernetes mode (objects from the API server instead of files)")
    k.add_argument("--kubernetes", action="store_true",
                   help="list+watch the cluster: in-cluster service account, or --kubeconfig")
    k.add_argument("--kubeconfig", default=None, metavar="FILE", help="kubeconfig to use (default: in-cluster, "
                   "else $KUBECONFIG or ~/.kube/config)")
    k.add_argument("--namespace", default=None,
                   help="where the MetalLB objects are and status objects go (default: $POD_NAMESPACE, the "
                        "service account's namespace, else metallb-system)")
    k.add_argument("--lb-class", default=None, metavar="CLASS",
                   help="handle only Services of this spec.loadBalancerClass (default: only those without one)")
    k.add_argument("--ignore-exclude-lb", action="store_true",
                   help="announce from this node even with node.kubernetes.io/exclude-from-external-load-balancers")
    p.add_argument("--node", default=os.environ.get("NODE_NAME") or socket.gethostname(),
                   help="this node's name (default: $NODE_NAME or the host name)")
    p.add_argument("--socket", default=DEFAULT_SOCKET, help=f"control socket (default {DEFAULT_SOCKET})")
    p.add_argument("--state", default=None, metavar="FILE",
                   help="allocation state file (default: $STATE_DIRECTORY/state.json or "
                        "/var/lib/speakerd/state.json)")
    p.add_argument("--metrics", default=None, metavar="ADDR:PORT",
                   help="serve Prometheus metrics there (e.g. :7473)")
    p.add_argument("--watch", type=float, default=2.0, metavar="SECONDS",
                   help="reload when config files change (inotify; polling this often where inotify "
                        "is unavailable); 0 disables (default 2)")
    p.add_argument("--drain-on-stop", type=float, nargs="?", const=10.0, default=None, metavar="SECONDS",
                   help="on SIGTERM, drain first (as `speakerctl drain --wait SECONDS`, default 10): routes "
                        "marked GRACEFUL_SHUTDOWN for that long, then withdrawn, then Cease")
    logs.add_arguments(p)
    return p


def main(args) -> int:
    logs.setup_from_args(args)
    if args.kubernetes == bool(args.config):
        log.error("speakerd run: give either -c PATH... (files) or --kubernetes (the API server)")
        return 2
    if args.kubernetes:
        from ..kube import ConfigError as KubeConfigError
        from ..kubespeaker import serve
        try:
            return asyncio.run(serve(args))
        except KubeConfigError as e:
            log.error("Kubernetes: %s", e)
            return 2
    try:
        return asyncio.run(_run(args))
    except ConfigError as e:
        for issue in e.issues:
            log.error("config: %s", issue)
        log.error("not started: %d configuration error(s)", len(e.issues))
        return 2


def update_prefix_gauges(speaker, metrics) -> None:
    """Set the per-peer prefix gauges from the sessions' RIBs (called at scrape time).

    announced: prefixes on the wire now; pending: prefixes the plan wants
    advertised to the peer (MetalLB's meaning); received: Adj-RIB-In size per family.
    """
    from ..metrics import peer_label
    for rt in speaker.peers.values():
        p = rt.peer
        rin = p.adj_rib_in
        received = {("ipv4" if a == 1 else "ipv6"): n for a, n in rin.counts().items()} if rin is not None else {}
        metrics.prefixes(peer_label(rt.config.peer_address, rt.config.peer_port), announced=len(p.advertised_routes),
                         pending=len(p.wanted_routes), received=received)


async def _run(args) -> int:
    from ..control.server import ControlServer
    from ..metrics import Metrics, parse_listen
    from ..speaker import Speaker
    from .watch import ConfigWatcher

    speaker = None

    class DaemonMetrics(Metrics):
        def render(self) -> bytes:
            if speaker is not None:  # prefix gauges are read from the RIBs at scrape time
                update_prefix_gauges(speaker, self)
            return super().render()

    metrics = DaemonMetrics()
    tracer = logs.Tracer(args.trace)
    speaker = Speaker(args.config, args.node, state_path=args.state or default_state_path(),
                      metrics=metrics, tracer=tracer, redactor=logs.redact)
    loop = asyncio.get_running_loop()
    from ..looplag import LoopLagProbe
    lag_probe = LoopLagProbe(registry=metrics.registry)
    lag_probe.start(loop)
    reloads: set[asyncio.Task] = set()  # strong references until each reload finishes
    # a large config file is compared from a map of it under a read lease (sources.files):
    # a writer opening it meanwhile sends the lease-break signal, which must not kill us
    signal.signal(signal.SIGIO, signal.SIG_IGN)

    def schedule_reload(reason: str) -> None:
        task = loop.create_task(do_reload(reason))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    # the first snapshot is taken before the config is read, so an edit made while
    # the daemon starts is noticed by the first poll
    watcher = ConfigWatcher(args.config, lambda: schedule_reload("config file changed"))
    await speaker.start()
    control = ControlServer(speaker, args.socket)
    await control.start()
    metrics_server = None
    if args.metrics:
        host, port = parse_listen(args.metrics)
        metrics_server = await metrics.serve(host, port)
        log.info("metrics on %s:%d", host or "*", port)
    log.info("speakerd running: node %s, router id %s (%s), %d peer(s), control socket %s",
             args.node, socket.inet_ntoa(speaker.router_id.to_bytes(4, "big")), speaker.router_id_source,
             len(speaker.peers), args.socket)

    stop = asyncio.Event()

    async def do_reload(reason: str) -> None:
        sdnotify.reloading()
        try:
            await speaker.reload(reason)
        finally:
            sdnotify.ready()

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: schedule_reload("SIGHUP"))
    tasks = []
    if args.watch > 0:
        tasks.append(loop.create_task(watcher.run(args.watch)))
    interval = sdnotify.watchdog_interval()
    if interval:
        tasks.append(loop.create_task(sdnotify.watchdog_loop(interval)))
    sdnotify.ready()
    sdnotify.status(f"{len(speaker.peers)} peer(s)")
    await stop.wait()
    sdnotify.stopping()
    log.info("stopping: closing every session (Cease/Administrative Shutdown; graceful-restart peers without a NOTIFICATION)")
    for t in tasks:
        t.cancel()
    await speaker.stop("speakerd is shutting down", drain=args.drain_on_stop)
    lag_probe.stop()
    await control.close()
    if metrics_server is not None:
        metrics_server.close()
        await metrics_server.wait_closed()
    return 0
