"""A whole small cluster in network namespaces: N nodes, two FRR ToRs, a client, an API server.

Topology (everything inside namespaces of one :class:`tests.interop.netlab.Lab`)::

    client ──198.18.1/24── tor1 ═ fabric 198.19.1.0/24 (bridge in tor1) ═╗
       └────198.18.2/24── tor2 ═ fabric 198.19.2.0/24 (bridge in tor2) ═╣ node n1..nN
                           api ═ mgmt   198.19.0.0/24 (bridge in api)  ═╝

Node ``k`` (1-based) is ``198.19.1.(10+k)`` towards tor1, ``198.19.2.(10+k)``
towards tor2 and ``198.19.0.(10+k)`` on the management network, where the
API emulator listens at ``198.19.0.1``.  Every node runs one speakerd peering
eBGP with both ToRs (one BGPPeer per ToR, as on a shared rack subnet), BFD
100 ms x 3, graceful restart on.  The client (``198.18.255.1`` on its lo) has
an ECMP default route through both ToRs, each ToR a route back to it, and the
nodes an ECMP default route through both ToRs: a ping from the client to a
Service address on the nodes' lo goes through a ToR's FIB and comes back.

Speakers run in one of two modes:

- ``kube``: ``speakerd run --kubernetes --kubeconfig F --node NAME`` against
  the API emulator, plus ``speakerd controller`` x2 for the addresses;
- ``file``: ``speakerd run -c COMMON -c NODEDIR --node NAME`` where COMMON is
  the cluster's objects (written by :meth:`Cluster.apply_files`, then SIGHUP
  to every speakerd, as a config-management tool would) and NODEDIR holds the
  node's own Node object.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import yaml

from tests.cluster import objects
from tests.cluster.kubeapi import KubeApi
from tests.cluster.tor import PathTable, Tor, TorNeighbor
from tests.interop.netlab import Lab, LabError, Netns, Proc, holds_for, sh, wait_for

ROOT = Path(__file__).resolve().parents[2]
API_ADDR = "198.19.0.1"
API_PORT = 6443
CLIENT_ADDR = "198.18.255.1"  # the client's own address (on lo), reachable through either ToR
API_NICE = -10  # the emulator's scheduling priority (see Cluster.start_api)
TORS = (("tor1", 1, 65101), ("tor2", 2, 65102))  # name, fabric index, ASN


def _help(*args: str) -> tuple[int, str]:
    p = subprocess.run([sys.executable, "-m", "speakerd.cli", *args, "--help"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=30, cwd=ROOT)
    return p.returncode, p.stdout + p.stderr


def kube_mode_missing() -> str | None:
    """Why the speakers cannot run against the API server yet (None = they can)."""
    rc, text = _help("run")
    if rc != 0 or "--kubernetes" not in text:
        return "speakerd run --kubernetes not available"
    rc, text = _help("controller")
    if rc != 0:
        return "speakerd controller not available"
    if emulator_missing():
        return emulator_missing()
    return None


def emulator_missing() -> str | None:
    if not (ROOT / "tests" / "kubeemu").is_dir():
        return "the API emulator (tests/kubeemu) not available"
    p = subprocess.run([sys.executable, "-m", "tests.kubeemu", "--help"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=30, cwd=ROOT)
    if p.returncode != 0 or "--listen" not in p.stdout + p.stderr:
        return "the API emulator has no `python -m tests.kubeemu --listen` command"
    return None


def file_mode_local_policy_missing() -> str | None:
    """Whether file mode applies ``externalTrafficPolicy: Local`` (asks ``speakerd plan``).

    Two probes, so that a plan with no routes for another reason does not pass for the
    capability: the Local Service is planned from node ``a`` when its endpoint is on
    ``a``, and not when it is on ``b`` -- with the reason ``noLocalEndpoints``."""
    import json

    def probe(endpoint_node: str) -> tuple[list[str], dict] | str:
        with tempfile.TemporaryDirectory(prefix="sd-probe-") as d:
            docs = [objects.node_object("a"), *objects.metallb_config([("tor1", "198.19.1.1", 65101)]),
                    objects.service("probe", objects.local_ip(0), policy="Local"),
                    objects.endpoint_slice("probe", [endpoint_node])]
            Path(d, "all.yaml").write_text(yaml.safe_dump_all(docs))
            p = subprocess.run([sys.executable, "-m", "speakerd.cli", "plan", "-c", d, "--node", "a", "--json"],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, cwd=ROOT)
            if p.returncode != 0:
                return f"speakerd plan failed on a Local-policy probe: {p.stderr.strip()[-200:]}"
            out = json.loads(p.stdout)
            return ([r["prefix"] for peer in out["peers"].values() for r in peer["routes"]],
                    out.get("not_announced", {}))

    here, elsewhere = probe("a"), probe("b")
    for got in (here, elsewhere):
        if isinstance(got, str):
            return got
    if not here[0]:
        return "speakerd plan announces nothing for a Local-policy probe with its endpoint on the node"
    if elsewhere[0]:
        return ("file mode does not apply externalTrafficPolicy: Local yet (speakerd plan announces a "
                "Service whose only endpoint is on another node)")
    reason = elsewhere[1].get(f"{objects.NAMESPACE}/probe", {}).get("reason")
    if reason != "noLocalEndpoints":
        return f"speakerd plan withholds the Local-policy probe for another reason ({reason!r})"
    return None


@dataclass(frozen=True)
class Svc:
    """One Service of the workload: its policy and the nodes its endpoints run on."""
    name: str
    index: int
    policy: str = "Cluster"
    nodes: tuple[str, ...] = ("n1",)

    @property
    def ip(self) -> str:
        """The address file mode gives it (kube mode: the controller's)."""
        return objects.local_ip(self.index) if self.policy == "Local" else objects.cluster_ip(self.index)

    def service(self, ip: str | None) -> dict:
        return objects.service(self.name, ip, policy=self.policy, index=self.index)

    def slice(self) -> dict:
        return objects.endpoint_slice(self.name, self.nodes, index=self.index)

    def moved(self, nodes: Iterable[str]) -> "Svc":
        return Svc(self.name, self.index, self.policy, tuple(nodes))


@dataclass
class Node:
    index: int  # 1-based
    name: str
    ns: Netns
    fabric: dict[str, str]  # ToR name -> this node's address on that ToR's fabric
    mgmt: str
    dir: Path
    proc: Proc | None = None
    extra_procs: list[Proc] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.dir / "speakerd.sock"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive


@dataclass
class Cut:
    """A started ``nft -f -`` holding a cut until :meth:`fire` (see :meth:`Cluster.prepare_cut`)."""
    proc: subprocess.Popen
    ruleset: bytes
    sent: float = 0.0  # time.monotonic() when the ruleset was handed to nft
    done: float = 0.0  # ... when nft had exited (the rules are in force)

    def fire(self) -> None:
        assert self.proc.stdin is not None
        self.sent = time.monotonic()
        self.proc.stdin.write(self.ruleset)
        self.proc.stdin.close()
        rc = self.proc.wait(30)
        self.done = time.monotonic()
        if rc != 0:
            out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
            raise LabError(f"nft -f (cut) -> {rc}: {out.strip()}")

    def cancel(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc/PID/stat, in seconds."""
    user, system = cpu_split(pid)
    return user + system


def cpu_split(pid: int) -> tuple[float, float]:
    """(utime, stime) of ``pid`` from /proc/PID/stat, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck


class Cluster:
    """Build with ``with Cluster(n, mode) as c:``; everything is removed on exit, errors included."""

    def __init__(self, n: int, mode: str = "file", name: str = "cluster", log_level: str = "info",
                 keep_dir: bool = False) -> None:
        if mode not in ("file", "kube"):
            raise ValueError(mode)
        self.n, self.mode, self.log_level = n, mode, log_level
        self.lab = Lab(name, keep_dir=keep_dir)
        self.nodes: list[Node] = []
        self.tors: list[Tor] = []
        self.client: Netns | None = None
        self.api_ns: Netns | None = None
        self.api_proc: Proc | None = None
        # 16 requests in flight: the churn's ~65 requests/s took ~75 ms each at N=20 (load ~11), and
        # 4 in flight bounded it to 40 changes/s with the emulator at 18 % of a core
        self.api = KubeApi(f"http://{API_ADDR}:{API_PORT}", netns=None, workers=16)  # netns set in build()
        self.controllers: list[Proc] = []
        self.common_dir = Path()
        self.published: dict[str, Svc] = {}
        self.last_write = 0.0  # time.monotonic() when the last change of publish() was made
        self._veth = 0

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> "Cluster":
        self.lab.__enter__()
        try:
            self.build()
        except BaseException:
            self.lab.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.close()
        self.lab.close()

    def build(self) -> None:
        lab = self.lab
        self.api_ns = lab.ns("api")
        self.api.netns = self.api_ns.name
        self._bridge(self.api_ns, "mgmt", f"{API_ADDR}/24")
        self.client = lab.ns("client")
        self.client.exec("ip", "addr", "add", f"{CLIENT_ADDR}/32", "dev", "lo")
        tor_ns = {}
        for tname, idx, _ in TORS:
            ns = lab.router(tname)
            self._bridge(ns, "fabric", f"198.19.{idx}.1/24")
            tor_ns[tname] = ns
            link = lab.link(ns, self.client)
            self.client.exec("ip", "route", "add", f"198.19.{idx}.0/24", "via", link.v4_a)
            ns.exec("ip", "route", "add", f"{CLIENT_ADDR}/32", "via", link.v4_b)
        self.client.exec("ip", "route", "add", "default", "nexthop", "via", lab.links[0].v4_a,
                         "nexthop", "via", lab.links[1].v4_a)
        for k in range(1, self.n + 1):
            name = f"n{k}"
            ns = lab.ns(name)
            fabric = {}
            for tname, idx, _ in TORS:
                fabric[tname] = f"198.19.{idx}.{10 + k}"
                self._port(ns, f"f{idx}", tor_ns[tname], fabric[tname] + "/24")
            mgmt = f"198.19.0.{10 + k}"
            self._port(ns, "mgmt", self.api_ns, mgmt + "/24")
            # replies to the client go back through either ToR
            ns.exec("ip", "route", "add", "default", "nexthop", "via", "198.19.1.1", "nexthop", "via", "198.19.2.1")
            self.nodes.append(Node(k, name, ns, fabric, mgmt, lab.subdir(f"node-{name}")))
        for tname, idx, asn in TORS:
            tor = Tor(tor_ns[tname], lab.subdir(tname), asn, f"198.19.{idx}.1",
                      [TorNeighbor(nd.fabric[tname], objects.NODE_ASN) for nd in self.nodes])
            tor.start()
            self.tors.append(tor)
        self.common_dir = lab.subdir("common")

    def _bridge(self, ns: Netns, dev: str, addr: str) -> None:
        ns.exec("ip", "link", "add", dev, "type", "bridge")
        ns.exec("ip", "addr", "add", addr, "dev", dev)
        ns.exec("ip", "link", "set", dev, "up")

    def _port(self, ns: Netns, dev: str, bridge_ns: Netns, addr: str) -> None:
        """A veth from ``ns`` (device ``dev``, address ``addr``) into the bridge of ``bridge_ns``."""
        self._veth += 1
        peer = f"p{self._veth}-{ns.short}"[:15]
        sh(["ip", "link", "add", dev, "netns", ns.name, "type", "veth", "peer", "name", peer,
            "netns", bridge_ns.name])
        bridge = "mgmt" if bridge_ns is self.api_ns else "fabric"
        bridge_ns.exec("ip", "link", "set", peer, "master", bridge, "up")
        ns.exec("ip", "addr", "add", addr, "dev", dev)
        ns.exec("ip", "link", "set", dev, "up")

    # ------------------------------------------------------------ config (file mode)
    def base_objects(self) -> list[dict]:
        return objects.metallb_config((t.name, f"198.19.{i}.1", asn) for (t, (_, i, asn)) in zip(self.tors, TORS))

    def apply_files(self, services: Iterable[dict], reload: bool = True) -> None:
        """Write the cluster's objects into the common directory (atomically), then SIGHUP every speakerd."""
        docs = [*self.base_objects(), *services]
        tmp = self.common_dir / ".cluster.yaml.tmp"
        tmp.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        os.replace(tmp, self.common_dir / "cluster.yaml")
        if reload:
            for nd in self.nodes:
                if nd.alive:
                    nd.proc.signal(signal.SIGHUP)

    def _node_files(self, nd: Node) -> Path:
        d = nd.dir / "config"
        d.mkdir(exist_ok=True)
        (d / "node.yaml").write_text(yaml.safe_dump(objects.node_object(nd.name), sort_keys=False))
        return d

    # ------------------------------------------------------------ speakers
    def speaker_argv(self, nd: Node) -> list[str]:
        base = [sys.executable, "-m", "speakerd.cli", "run", "--node", nd.name, "--socket", str(nd.socket),
                "--state", str(nd.dir / "state.json"), "--log-level", self.log_level]
        if self.mode == "file":
            return [*base, "-c", str(self.common_dir), "-c", str(self._node_files(nd)), "--watch", "0"]
        return [*base, "--kubernetes", "--kubeconfig", str(self.kubeconfig(nd.name)), "--namespace", objects.METALLB_NS]

    def start_speaker(self, nd: Node, timeout: float = 30) -> None:
        nd.socket.unlink(missing_ok=True)
        env = {"PYTHONUNBUFFERED": "1", "POD_NAME": f"speaker-{nd.name}", "POD_NAMESPACE": objects.METALLB_NS}
        nd.proc = nd.ns.spawn(f"speakerd-{nd.name}", self.speaker_argv(nd), env=env)
        wait_for(lambda: nd.socket.exists() or not nd.proc.alive, timeout, f"speakerd {nd.name} control socket")
        if not nd.proc.alive:
            raise LabError(f"speakerd {nd.name} exited {nd.proc.popen.returncode}:\n{nd.proc.log_text()[-3000:]}")

    def start_speakers(self) -> None:
        for nd in self.nodes:
            self.start_speaker(nd)

    def wait_sessions(self, nodes: Iterable[Node] | None = None, timeout: float = 60) -> None:
        """Until both ToRs have an Established session with every node in ``nodes`` (default all)."""
        want = [nd for nd in (self.nodes if nodes is None else nodes)]
        for tor in self.tors:
            addrs = {nd.fabric[tor.name] for nd in want}
            wait_for(lambda: addrs <= tor.established(), timeout, f"{tor.name} sessions with {sorted(addrs)}")

    def wait_bfd(self, timeout: float = 30) -> None:
        for tor in self.tors:
            addrs = {nd.fabric[tor.name] for nd in self.nodes}
            wait_for(lambda: all(tor.bfd_peers().get(a) == "up" for a in addrs), timeout, f"{tor.name} BFD up")

    # ------------------------------------------------------------ API server and controllers (kube mode)
    def kubeconfig(self, user: str) -> Path:
        path = self.lab.dir / f"kubeconfig-{user}"
        if not path.exists():
            cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "lab",
                   "clusters": [{"name": "lab", "cluster": {"server": self.api.base}}],
                   "users": [{"name": user, "user": {"token": f"token-{user}"}}],
                   "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": user}}]}
            path.write_text(yaml.safe_dump(cfg))
        return path

    @property
    def api_state(self) -> Path:
        return self.lab.dir / "kubeemu-state.json"

    def start_api(self, timeout: float = 30, empty: bool = False, rv_start: int = 0) -> None:
        """The emulator with its objects kept in a state file across stops (``empty``: forget them)."""
        if empty:
            self.api_state.unlink(missing_ok=True)
        self.api_proc = self.api_ns.spawn("kubeemu", [
            sys.executable, "-m", "tests.kubeemu", "--listen", f"{API_ADDR}:{API_PORT}",
            "--state", str(self.api_state), "--rv-start", str(rv_start)], env={"PYTHONUNBUFFERED": "1"})
        # The API server of a real cluster runs on its own machines; here it shares two cores with N
        # speakers, two controllers and two FRRs, and a starved emulator throttles what the scenarios
        # feed the speakers (the churn got 11.8 of 50 changes/s at N=20). A higher priority keeps it
        # delivering; the speakers' CPU is measured all the same.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, self.api_proc.pid, API_NICE)
        wait_for(lambda: self.api_alive() and self.api.ready(), timeout, "API emulator answering")

    def api_alive(self) -> bool:
        if self.api_proc is None or not self.api_proc.alive:
            raise LabError(f"API emulator not running:\n{self.api_proc.log_text()[-2000:] if self.api_proc else ''}")
        return True

    def block_api(self) -> None:
        """Refuse connections to the API server from the management network (nodes, controllers);
        the harness's own requests come from inside the API server's namespace and still get through."""
        ruleset = ("table inet sdapi {\n chain input { type filter hook input priority -10 ; "
                   f'iifname "mgmt" tcp dport {API_PORT} reject with tcp reset ; }}\n}}\n')
        sh(["ip", "netns", "exec", self.api_ns.name, "nft", "-f", "-"], input=ruleset)

    def unblock_api(self) -> None:
        self.api_ns.exec("nft", "delete", "table", "inet", "sdapi", check=False)

    def stop_api(self) -> None:
        if self.api_proc is not None:
            self.api_proc.stop()

    def start_controllers(self, count: int = 2) -> None:
        """``speakerd controller`` replicas, in the first node namespaces (as a Deployment's pods)."""
        self.controllers = [self._spawn_controller(i) for i in range(count)]

    def _spawn_controller(self, i: int) -> Proc:
        nd = self.nodes[i % len(self.nodes)]
        return nd.ns.spawn(f"controller-{i}", [
            sys.executable, "-m", "speakerd.cli", "controller", "--kubeconfig",
            str(self.kubeconfig(f"controller-{i}")), "--identity", f"controller-{i}",
            "--namespace", objects.METALLB_NS, "--log-level", self.log_level],
            env={"PYTHONUNBUFFERED": "1", "POD_NAME": f"controller-{i}"})

    # ------------------------------------------------------------ the whole cluster
    def setup(self) -> None:
        """Start the API server and controllers (kube mode) and every speakerd; wait for sessions and BFD."""
        if self.mode == "kube":
            self.start_api()
            for obj in [*self.base_objects(), *(objects.node_object(nd.name) for nd in self.nodes)]:
                self.api.apply(obj)
            self.start_controllers()
        else:
            self.apply_files([], reload=False)
        self.start_speakers()
        self.wait_sessions()
        self.wait_bfd()

    def heal(self) -> None:
        """Undo every fault: API server and controllers running, no cut, every speakerd up, BFD up."""
        if self.mode == "kube":
            self.unblock_api()
            if self.api_proc is None or not self.api_proc.alive:
                self.start_api()
            for i, p in enumerate(self.controllers):
                if not p.alive:
                    self.controllers[i] = self._spawn_controller(i)
        for nd in self.nodes:
            self.restore(nd)
            if not nd.alive:
                self.start_speaker(nd)
        self.wait_sessions()
        self.wait_bfd()

    def publish(self, services: Iterable["Svc"]) -> dict[str, str]:
        """Make ``services`` the cluster's Services and EndpointSlices; returns name -> address.

        File mode writes them (with the addresses the plan gives them) and
        reloads every speakerd; kube mode creates, replaces and deletes
        objects in the API server and waits for the controller's addresses.
        """
        services = list(services)
        if self.mode == "file":
            docs = []
            for s in services:
                docs += [s.service(s.ip), s.slice()]
            self.apply_files(docs)
            self.last_write = time.monotonic()
            self.published = {s.name: s for s in services}
            return {s.name: s.ip for s in services}
        new = {s.name: s for s in services}
        writes = []  # several requests in flight (the client's worker threads), as a batch apply
        for name in set(self.published) - set(new):
            writes += [self.api.delete_async("Service", objects.NAMESPACE, name),
                       self.api.delete_async("EndpointSlice", objects.NAMESPACE, f"{name}-ep")]
        for s in services:
            old = self.published.get(s.name)
            if old is None:
                writes += [self.api.create_async(s.service(None)), self.api.create_async(s.slice())]
            elif old.nodes != s.nodes:
                self.api.replace(s.slice())
        for w in writes:
            err = w.exception()
            if err is not None and getattr(err, "status", None) != 404:  # deleting what is gone is fine
                raise err
        self.last_write = time.monotonic()
        self.published = new
        return self.addresses(services)

    def addresses(self, services: Iterable["Svc"], timeout: float = 60) -> dict[str, str]:
        """name -> the address in the Service's status (kube mode: written by the controller)."""
        services = list(services)
        if self.mode == "file":
            return {s.name: s.ip for s in services}
        out: dict[str, str] = {}

        def all_assigned() -> bool:
            for item in self.api.list("Service", objects.NAMESPACE):
                ing = ((item.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
                if ing and "ip" in ing[0]:
                    out[item["metadata"]["name"]] = ing[0]["ip"]
            return all(s.name in out for s in services)
        wait_for(all_assigned, timeout, "addresses in every Service's status", interval=0.2)
        return {s.name: out[s.name] for s in services}

    def plan(self, services: Iterable["Svc"], addresses: dict[str, str],
             up: Iterable[Node] | None = None) -> dict[str, PathTable]:
        """What both ToRs must hold: each address from every up node (Cluster) or its endpoints' nodes (Local)."""
        services = list(services)
        nodes_of = {f"{addresses[s.name]}/32": s.nodes for s in services if s.policy == "Local"}
        return self.expected([f"{addresses[s.name]}/32" for s in services], nodes_of, up)

    # ------------------------------------------------------------ faults
    def cut_ruleset(self) -> str:
        addrs = ", ".join(tor.router_id for tor in self.tors)
        return ("table inet sdcut {\n"
                f" chain input {{ type filter hook input priority -10 ; ip saddr {{ {addrs} }} drop ; }}\n"
                f" chain output {{ type filter hook output priority -10 ; ip daddr {{ {addrs} }} drop ; }}\n"
                "}\n")

    def cut(self, nd: Node) -> None:
        """Drop everything between ``nd`` and both ToRs: one ``nft -f`` in the node's namespace, so
        both directions to both ToRs are cut at one instant (the same table netlab's restore removes)."""
        sh(["ip", "netns", "exec", nd.ns.name, "nft", "-f", "-"], input=self.cut_ruleset())

    def prepare_cut(self, nd: Node) -> "Cut":
        """A cut of ``nd`` ready to go: ``nft`` already started in the node's namespace, waiting for
        its ruleset on stdin. :meth:`Cut.fire` hands it over and returns when nft has exited, so the
        instant the rules come into force lies between the two times it records (a few ms apart,
        where starting ``ip netns exec nft`` itself took 10-50 ms on a loaded machine)."""
        return Cut(subprocess.Popen(["ip", "netns", "exec", nd.ns.name, "nft", "-f", "-"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT),
                   self.cut_ruleset().encode())

    def restore(self, nd: Node) -> None:
        nd.ns.restore()

    # ------------------------------------------------------------ data plane
    def bind_addresses(self, addresses: Iterable[str]) -> None:
        """Put the Service addresses on every node's ``lo`` (as kube-proxy's IPVS mode puts them on its
        kube-ipvs0 dummy device; this kernel has no dummy module), so a node the ToRs forward to answers."""
        addresses = list(addresses)
        for nd in self.nodes:
            batch = "".join(f"address add {a}/32 dev lo\n" for a in addresses)
            sh(["ip", "netns", "exec", nd.ns.name, "ip", "-force", "-batch", "-"], input=batch, check=False)

    def client_reaches(self, address: str) -> bool:
        """One ping from the client namespace to ``address`` through the ToRs' FIB is answered."""
        out = sh(["ip", "netns", "exec", self.client.name, "ping", "-n", "-c", "1", "-W", "2", "-I", CLIENT_ADDR,
                  address], check=False)
        return " 0% packet loss" in out

    # ------------------------------------------------------------ expectations
    def expected(self, prefixes: Iterable[str], nodes_of: dict[str, Iterable[str]] | None = None,
                 up: Iterable[Node] | None = None) -> dict[str, PathTable]:
        """ToR -> prefix -> next hops: every prefix on every up node, or on ``nodes_of[prefix]``."""
        up_names = {nd.name for nd in (self.nodes if up is None else up)}
        by_name = {nd.name: nd for nd in self.nodes}
        out = {}
        for tor in self.tors:
            table = {}
            for pfx in prefixes:
                names = up_names if nodes_of is None or pfx not in nodes_of else set(nodes_of[pfx]) & up_names
                if names:
                    table[pfx] = frozenset(by_name[n].fabric[tor.name] for n in names)
            out[tor.name] = table
        return out

    def tables(self, prefixes: Iterable[str] | None = None) -> dict[str, PathTable]:
        pf = None if prefixes is None else list(prefixes)
        return {tor.name: tor.bgp_paths(pf) for tor in self.tors}

    def wait_tables(self, want: dict[str, PathTable], timeout: float = 60, what: str = "") -> float:
        """Until both ToRs' BGP tables equal ``want``; returns time.monotonic() when they did."""
        last: list = [None]

        def same() -> bool:
            last[0] = self.tables()
            return last[0] == want
        try:
            wait_for(same, timeout, what or "ToR tables to equal the plan", interval=0.05)
        except TimeoutError as e:
            raise AssertionError(f"{what}: {diff_tables(want, last[0])}") from e
        return time.monotonic()

    def wait_fib(self, want: dict[str, PathTable], timeout: float = 30) -> None:
        for tor in self.tors:
            wait_for(lambda: tor.fib() == want[tor.name], timeout, f"{tor.name} FIB equal to its BGP table",
                     interval=0.1)

    def stays(self, want: dict[str, PathTable], seconds: float) -> bool:
        return holds_for(lambda: self.tables() == want, seconds)

    def session_counters(self) -> dict[str, dict[str, tuple[int, int]]]:
        return {tor.name: tor.connections() for tor in self.tors}

    def logs(self) -> str:
        return self.lab.logs()


def diff_tables(want: dict[str, PathTable], have: dict[str, PathTable] | None) -> str:
    """A short description of how ``have`` differs from ``want``."""
    if have is None:
        return "no table read"
    out = []
    for tor in sorted(set(want) | set(have)):
        w, h = want.get(tor, {}), have.get(tor, {})
        missing = sorted(set(w) - set(h))
        extra = sorted(set(h) - set(w))
        wrong = sorted(p for p in set(w) & set(h) if w[p] != h[p])
        if missing or extra or wrong:
            out.append(f"{tor}: {len(missing)} missing {missing[:3]}, {len(extra)} extra {extra[:3]}, "
                       f"{len(wrong)} with other next hops "
                       + ", ".join(f"{p}: want {sorted(w[p])} have {sorted(h[p])}" for p in wrong[:3]))
    return "; ".join(out) or "equal"
