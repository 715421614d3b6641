"""`speakerd controller [--kubeconfig FILE] [--lb-class C] [--namespace NS] [--lease-name N]`:
assign Service addresses for the whole cluster, as MetalLB's controller does.

Run as a Deployment of two or more replicas: they elect a leader on a
``coordination.k8s.io/v1`` Lease (15 s lease, 10 s renew deadline, 2 s retry);
only the leader writes.  In-cluster service-account credentials unless
``--kubeconfig`` (or ``$KUBECONFIG``) is given.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys

from ..controller.loop import Controller
from ..kube.config import ConfigError, load_client, pod_namespace


def register(sub):
    p = sub.add_parser("controller", help="assign LoadBalancer addresses for the cluster (leader-elected)")
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), metavar="FILE",
                   help="kubeconfig (default: $KUBECONFIG, else the in-cluster service account)")
    p.add_argument("--lb-class", default=None, metavar="C",
                   help="handle only Services with spec.loadBalancerClass C (default: only Services without a class)")
    p.add_argument("--namespace", default=None, metavar="NS",
                   help="namespace of the IPAddressPools and of the Lease (default: the pod's, else metallb-system)")
    p.add_argument("--lease-name", default="speakerd-controller", metavar="N", help="Lease name (default %(default)s)")
    p.add_argument("--identity", default=os.environ.get("POD_NAME") or socket.gethostname(),
                   help="this replica's name in the Lease (default: $POD_NAME, else the host name)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p


async def _run(args) -> int:
    try:
        client = await load_client(args.kubeconfig)
    except ConfigError as exc:
        print(f"speakerd controller: no API credentials: {exc}", file=sys.stderr)
        return 1
    ns = args.namespace or pod_namespace()
    ctl = Controller(client, namespace=ns, identity=args.identity, lease_name=args.lease_name, lb_class=args.lb_class)
    task = asyncio.create_task(ctl.run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    task.cancel()  # no more writes; the Lease is given up: the other replica takes over at once
    waiter.cancel()
    await asyncio.gather(task, waiter, return_exceptions=True)
    await client.close()
    return 0


def main(args) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(_run(args))
