"""BGP daemons for the lab: FRR, GoBGP, BIRD, ExaBGP and speakerd, plus MetalLB manifests.

Each wrapper writes its configuration into a private directory, starts its
processes inside a lab namespace in the foreground (so the lab tracks and
cleans them up by PID) and answers queries through the daemon's own CLI over
a Unix socket.  Route views are normalised to
``{prefix: {"as_path": [..], "next_hop": str, "communities": ["a:b"],
"large_communities": ["a:b:c"], "local_pref": int|None, "med": int|None}}``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

if __package__:
    from .netlab import FRR_LIB, STATES, LabError, Netns, Proc, sh, wait_for
else:  # top-level import
    from netlab import FRR_LIB, STATES, LabError, Netns, Proc, sh, wait_for  # type: ignore


class NotImplementedYet(LabError):
    """The speakerd binary does not implement what the lab asked for yet."""


@dataclass(frozen=True, slots=True)
class Neighbor:
    address: str
    asn: int
    password: str | None = None
    multihop: int | None = None  # TTL for eBGP multihop; None = directly connected
    passive: bool = False
    bfd: bool = False  # FRR: attach the lab's BFD profile
    hold: int | None = None
    keepalive: int | None = None
    connected_check: bool = True  # FRR: False dials a non-connected eBGP peer anyway (with TTL 1)

    @property
    def v6(self) -> bool:
        return ":" in self.address


@dataclass(frozen=True, slots=True)
class Network:
    prefix: str
    communities: tuple[str, ...] = ()
    large_communities: tuple[str, ...] = ()
    local_pref: int | None = None
    med: int | None = None

    @property
    def v6(self) -> bool:
        return ":" in self.prefix


def _net(n: Network | str) -> Network:
    return n if isinstance(n, Network) else Network(n)


def _state_name(s: Any) -> str:
    """Normalise FRR text / GoBGP numeric states to Idle..Established."""
    if isinstance(s, int):
        return STATES[s - 1] if 1 <= s <= 6 else str(s)
    for name in STATES:
        if str(s).lower() == name.lower():
            return name
    return str(s)


# ---------------------------------------------------------------- FRR

class Frr:
    """zebra + bgpd (+ bfdd) in a namespace with a private vty socket directory."""

    def __init__(self, ns: Netns, dir: Path, asn: int, router_id: str, neighbors: Iterable[Neighbor] = (),
                 networks: Iterable[Network | str] = (), bfd: dict[str, int] | None = None,
                 start: bool = True, zebra_config: str = "") -> None:
        self.ns, self.dir, self.asn, self.router_id = ns, Path(dir), asn, router_id
        self.zebra_config = zebra_config  # e.g. RA settings for unnumbered peering
        self.neighbors = list(neighbors)
        self.networks = [_net(n) for n in networks]
        self.bfd = bfd  # e.g. {"receive-interval": 50, "transmit-interval": 50, "detect-multiplier": 3}
        self.procs: dict[str, Proc] = {}
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o777)
        if start:
            self.start()

    # -- config
    def _route_map(self, i: int, n: Network) -> list[str]:
        sets = []
        if n.communities:
            sets.append(f" set community {' '.join(n.communities)}")
        if n.large_communities:
            sets.append(f" set large-community {' '.join(n.large_communities)}")
        if n.local_pref is not None:
            sets.append(f" set local-preference {n.local_pref}")
        if n.med is not None:
            sets.append(f" set metric {n.med}")
        return [f"route-map NET{i} permit 10", *sets, "exit"] if sets else []

    def config(self) -> str:
        lines = ["frr defaults traditional", f"hostname {self.ns.short}", "log timestamp precision 3", "!"]
        if self.bfd:
            # no "exit" lines: bgpd does not know the bfd node, and to it an "exit"
            # would leave configuration mode and drop everything after it
            lines += ["bfd", " profile lab", *(f"  {k} {v}" for k, v in self.bfd.items()), "!"]
        for i, n in enumerate(self.networks):
            lines += self._route_map(i, n)
        lines += [f"router bgp {self.asn}", f" bgp router-id {self.router_id}", " no bgp ebgp-requires-policy",
                  " no bgp network import-check", " no bgp default ipv4-unicast"]
        for nb in self.neighbors:
            a = nb.address
            # an interface name instead of an address: unnumbered peering (FRR "neighbor IF interface")
            iface = " interface" if not any(c in a for c in ".:") else ""
            lines += [f" neighbor {a}{iface} remote-as {nb.asn}", f" neighbor {a} timers connect 1"]
            if nb.password:
                lines.append(f" neighbor {a} password {nb.password}")
            if nb.multihop:
                lines.append(f" neighbor {a} ebgp-multihop {nb.multihop}")
            if nb.passive:
                lines.append(f" neighbor {a} passive")
            if not nb.connected_check:
                lines.append(f" neighbor {a} disable-connected-check")
            if nb.hold is not None:
                lines.append(f" neighbor {a} timers {nb.keepalive or max(1, nb.hold // 3)} {nb.hold}")
            if nb.bfd:
                lines.append(f" neighbor {a} bfd profile lab" if self.bfd else f" neighbor {a} bfd")
        for fam, v6 in (("ipv4", False), ("ipv6", True)):
            lines.append(f" address-family {fam} unicast")
            for i, n in enumerate(self.networks):
                if n.v6 == v6:
                    rm = f" route-map NET{i}" if self._route_map(i, n) else ""
                    lines.append(f"  network {n.prefix}{rm}")
            lines += [f"  neighbor {nb.address} activate" for nb in self.neighbors
                      if nb.v6 == v6 or not any(c in nb.address for c in ".:")]
            lines.append(" exit-address-family")
        lines += ["exit", "!"]
        return "\n".join(lines) + "\n"

    # -- lifecycle
    def _common(self, name: str) -> list[str]:
        d = self.dir
        return ["-P", "0", "--vty_socket", str(d), "-z", str(d / "zserv.api"),
                "-i", str(d / f"{name}.pid"), "--log", f"file:{d / name}.log"]

    def start(self) -> None:
        d = self.dir
        (d / "frr.conf").write_text(self.config())
        (d / "zebra.conf").write_text(f"hostname {self.ns.short}\n{self.zebra_config}")
        for f in ("frr.conf", "zebra.conf"):
            (d / f).chmod(0o666)
        tag = f"frr-{self.ns.short}"
        self.procs["zebra"] = self.ns.spawn(f"{tag}-zebra", [str(FRR_LIB / "zebra"), "-u", "frr", "-g", "frr",
                                                             "-f", str(d / "zebra.conf"), *self._common("zebra")])
        wait_for(lambda: (d / "zserv.api").exists() or self._dead("zebra"), 10, f"{tag} zebra socket")
        self._dead("zebra", raise_=True)
        self.procs["bgpd"] = self.ns.spawn(f"{tag}-bgpd", [str(FRR_LIB / "bgpd"), "-S", "-n", "--limit-fds", "1024",
                                                           "-f", str(d / "frr.conf"), *self._common("bgpd")])
        if self.bfd is not None or any(nb.bfd for nb in self.neighbors):
            self.procs["bfdd"] = self.ns.spawn(f"{tag}-bfdd", [str(FRR_LIB / "bfdd"), "-u", "frr", "-g", "frr",
                                                               "-f", str(d / "frr.conf"), *self._common("bfdd")])
        wait_for(lambda: self._dead("bgpd", raise_=True) or self.vtysh("show bgp summary json"), 10, f"{tag} bgpd")

    def _dead(self, name: str, raise_: bool = False) -> bool:
        p = self.procs.get(name)
        dead = p is not None and not p.alive
        if dead and raise_:
            raise LabError(f"FRR {name} in {self.ns} exited:\n{p.log_text()[-2000:]}")
        return dead

    def stop(self) -> None:
        for name in ("bfdd", "bgpd", "zebra"):
            if name in self.procs:
                self.procs[name].stop()

    def pause(self) -> None:
        """SIGSTOP bgpd: sessions stay open but go silent (the other end's hold timer must notice)."""
        self.procs["bgpd"].pause()

    def kill(self, daemon: str = "bgpd") -> None:
        """SIGKILL a daemon (default bgpd: the BGP sessions die with it)."""
        self.procs[daemon].kill()

    def restart(self) -> None:
        self.stop()
        for f in ("zserv.api",):
            (self.dir / f).unlink(missing_ok=True)
        self.start()

    # -- queries
    def vtysh(self, *cmds: str, json_: bool = True) -> Any:
        argv = ["vtysh", "--vty_socket", str(self.dir)]
        for c in cmds:
            argv += ["-c", c]
        out = sh(argv, timeout=20)
        if not json_:
            return out
        try:
            return json.loads(out)
        except json.JSONDecodeError as e:
            raise LabError(f"vtysh {cmds}: not JSON: {out[:300]!r}") from e

    def configure(self, *lines: str) -> str:
        return self.vtysh("configure terminal", *lines, json_=False)

    def summary(self, afi: int = 4) -> dict:
        return self.vtysh(f"show bgp {'ipv6' if afi == 6 else 'ipv4'} unicast summary json")

    def peer_state(self, ip: str) -> str:
        peers = self.summary(6 if ":" in ip else 4).get("peers", {})
        return _state_name(peers.get(ip, {}).get("state", "Absent"))

    def established(self, ip: str) -> bool:
        return self.peer_state(ip) == "Established"

    def wait_established(self, ip: str, timeout: float = 20) -> None:
        wait_for(lambda: self.established(ip), timeout, f"FRR {self.ns.short} session with {ip} Established")

    def neighbor(self, ip: str) -> dict:
        return self.vtysh(f"show bgp neighbors {ip} json").get(ip, {})

    def updates_received(self, ip: str) -> int:
        return int(self.neighbor(ip).get("messageStats", {}).get("updatesRecv", 0))

    def soft_in(self, ip: str) -> None:
        """Ask the peer to re-send everything (ROUTE-REFRESH)."""
        fam = "ipv6" if ":" in ip else "ipv4"
        self.vtysh(f"clear bgp {fam} unicast {ip} soft in", json_=False)

    def routes(self, afi: int = 4) -> dict[str, dict]:
        fam = "ipv6" if afi == 6 else "ipv4"
        table = self.vtysh(f"show bgp {fam} unicast json detail").get("routes", {})
        out = {}
        for prefix, paths in table.items():
            if isinstance(paths, dict):
                paths = paths.get("paths", [])
            # the 'detail' form starts with a header entry (prefix, advertisedTo): keep only paths
            paths = [p for p in paths if "nexthops" in p or "aspath" in p]
            best = next((p for p in paths if p.get("bestpath", {}).get("overall") or p.get("bestpath") is True
                         or p.get("best")), paths[0] if paths else None)
            if best is None:
                continue
            out[prefix] = _frr_path(best)
        return out

    def add_network(self, n: Network | str) -> None:
        n = _net(n)
        self.networks.append(n)
        i = len(self.networks) - 1
        rm = self._route_map(i, n)
        self.configure(*rm, f"router bgp {self.asn}", f"address-family {'ipv6' if n.v6 else 'ipv4'} unicast",
                       f"network {n.prefix}" + (f" route-map NET{i}" if rm else ""))


def _frr_path(p: dict) -> dict:
    aspath = p.get("aspath", {})
    asns = [int(x) for x in str(aspath.get("string", "")).split() if x.isdigit()]
    hops = p.get("nexthops", [])
    comm = p.get("community", {}).get("string", "")
    large = p.get("largeCommunity", {}).get("string", "")
    return {
        "as_path": asns,
        "next_hop": hops[0].get("ip") if hops else None,
        "next_hops": [h.get("ip") for h in hops],
        "communities": comm.split() if comm else [],
        "large_communities": large.split() if large else [],
        "local_pref": p.get("localpref", p.get("locPrf")),
        "med": p.get("med", p.get("metric")),
    }


# ---------------------------------------------------------------- GoBGP

class GoBgp:
    """gobgpd in the foreground with a Unix API socket; queried with the gobgp CLI."""

    def __init__(self, ns: Netns, dir: Path, asn: int, router_id: str, neighbors: Iterable[Neighbor] = (),
                 start: bool = True) -> None:
        self.ns, self.dir, self.asn, self.router_id = ns, Path(dir), asn, router_id
        self.neighbors = list(neighbors)
        self.sock = self.dir / "gobgp.sock"
        self.proc: Proc | None = None
        self.dir.mkdir(parents=True, exist_ok=True)
        if start:
            self.start()

    def config(self) -> str:
        lines = ["[global.config]", f"  as = {self.asn}", f'  router-id = "{self.router_id}"', ""]
        for nb in self.neighbors:
            lines += ["[[neighbors]]", "  [neighbors.config]", f'    neighbor-address = "{nb.address}"',
                      f"    peer-as = {nb.asn}"]
            if nb.password:
                lines.append(f'    auth-password = "{nb.password}"')
            lines += ["  [neighbors.timers.config]", "    connect-retry = 1"]
            if nb.hold is not None:
                lines += [f"    hold-time = {nb.hold}", f"    keepalive-interval = {nb.keepalive or max(1, nb.hold // 3)}"]
            if nb.multihop:
                lines += ["  [neighbors.ebgp-multihop.config]", "    enabled = true", f"    multihop-ttl = {nb.multihop}"]
            if nb.passive:
                lines += ["  [neighbors.transport.config]", "    passive-mode = true"]
            fam = "ipv6-unicast" if nb.v6 else "ipv4-unicast"
            lines += ["  [[neighbors.afi-safis]]", "    [neighbors.afi-safis.config]", f'      afi-safi-name = "{fam}"', ""]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        (self.dir / "gobgpd.toml").write_text(self.config())
        self.sock.unlink(missing_ok=True)
        self.proc = self.ns.spawn(f"gobgp-{self.ns.short}", [
            "gobgpd", "-f", str(self.dir / "gobgpd.toml"), "-p", "-l", "info", "--pprof-disable",
            "--api-hosts", f"unix://{self.sock}"])
        wait_for(lambda: self._dead(raise_=True) or self.gobgp("global", json_=False), 10, "gobgpd API")

    def _dead(self, raise_: bool = False) -> bool:
        dead = self.proc is not None and not self.proc.alive
        if dead and raise_:
            raise LabError(f"gobgpd in {self.ns} exited:\n{self.proc.log_text()[-2000:]}")
        return dead

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    def kill(self) -> None:
        if self.proc:
            self.proc.kill()

    def pause(self) -> None:
        """SIGSTOP gobgpd: sessions stay open but go silent."""
        if self.proc:
            self.proc.pause()

    def restart(self) -> None:
        self.stop()
        self.start()

    def gobgp(self, *args: str, json_: bool = True) -> Any:
        out = sh(["gobgp", "--target", f"unix://{self.sock}", *args, *(["-j"] if json_ else [])], timeout=20)
        if not json_:
            return out
        try:
            return json.loads(out) if out.strip() else {}
        except json.JSONDecodeError as e:
            raise LabError(f"gobgp {args}: not JSON: {out[:300]!r}") from e

    def neighbor(self, ip: str) -> dict:
        return self.gobgp("neighbor", ip)

    def peer_state(self, ip: str) -> str:
        return _state_name(self.neighbor(ip).get("state", {}).get("session_state", 0))

    def established(self, ip: str) -> bool:
        return self.peer_state(ip) == "Established"

    def wait_established(self, ip: str, timeout: float = 20) -> None:
        wait_for(lambda: self.established(ip), timeout, f"GoBGP {self.ns.short} session with {ip} Established")

    def updates_received(self, ip: str) -> int:
        msgs = self.neighbor(ip).get("state", {}).get("messages", {}).get("received", {})
        return int(msgs.get("update", 0))

    def soft_in(self, ip: str) -> None:
        self.gobgp("neighbor", ip, "softresetin", "-a", "ipv6" if ":" in ip else "ipv4", json_=False)

    def routes(self, afi: int = 4) -> dict[str, dict]:
        table = self.gobgp("global", "rib", "-a", "ipv6" if afi == 6 else "ipv4")
        out = {}
        for prefix, paths in (table or {}).items():
            best = next((p for p in paths if p.get("best")), paths[0] if paths else None)
            if best is not None:
                out[prefix] = _gobgp_path(best)
        return out

    def add_route(self, n: Network | str, next_hop: str | None = None) -> None:
        n = _net(n)
        args = ["global", "rib", "add", "-a", "ipv6" if n.v6 else "ipv4", n.prefix]
        if n.communities:
            args += ["community", ",".join(n.communities)]
        if n.large_communities:
            args += ["large-community", ",".join(n.large_communities)]
        if n.local_pref is not None:
            args += ["local-pref", str(n.local_pref)]
        if n.med is not None:
            args += ["med", str(n.med)]
        if next_hop:
            args += ["nexthop", next_hop]
        self.gobgp(*args, json_=False)


def _gobgp_path(p: dict) -> dict:
    r: dict[str, Any] = {"as_path": [], "next_hop": None, "communities": [], "large_communities": [],
                         "local_pref": None, "med": None}
    for a in p.get("attrs", []):
        t = a.get("type")
        if t == 2:
            r["as_path"] = [asn for seg in a.get("as_paths", []) for asn in seg.get("asns", [])]
        elif t == 3 or (t == 14 and a.get("nexthop")):
            r["next_hop"] = a.get("nexthop")
        elif t == 4:
            r["med"] = a.get("metric")
        elif t == 5:
            r["local_pref"] = a.get("value")
        elif t == 8:
            r["communities"] = [f"{c >> 16}:{c & 0xFFFF}" for c in a.get("communities", [])]
        elif t == 32:
            r["large_communities"] = [
                f"{c.get('ASN', c.get('asn'))}:{c.get('LocalData1', c.get('local_data1'))}:"
                f"{c.get('LocalData2', c.get('local_data2'))}" for c in a.get("value", [])]
    return r


# ---------------------------------------------------------------- BIRD and ExaBGP (for benchmarks)

class Bird:
    """bird2 in the foreground; config text is the caller's (``protocol bgp`` blocks)."""

    def __init__(self, ns: Netns, dir: Path, router_id: str, protocols: str, start: bool = True) -> None:
        self.ns, self.dir, self.router_id, self.protocols = ns, Path(dir), router_id, protocols
        self.sock = self.dir / "bird.ctl"
        self.proc: Proc | None = None
        self.dir.mkdir(parents=True, exist_ok=True)
        if start:
            self.start()

    def start(self) -> None:
        conf = self.dir / "bird.conf"
        conf.write_text(f"router id {self.router_id};\nprotocol device {{ }}\n{self.protocols}\n")
        self.proc = self.ns.spawn(f"bird-{self.ns.short}", ["bird", "-f", "-c", str(conf), "-s", str(self.sock),
                                                           "-P", str(self.dir / "bird.pid")])
        wait_for(lambda: self.sock.exists(), 10, "bird control socket")

    def birdc(self, cmd: str) -> str:
        return sh(["birdc", "-s", str(self.sock), cmd])

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


class ExaBgp:
    """ExaBGP from the venv, foreground, config text is the caller's."""

    def __init__(self, ns: Netns, dir: Path, config: str, start: bool = True) -> None:
        self.ns, self.dir, self.config = ns, Path(dir), config
        self.proc: Proc | None = None
        self.dir.mkdir(parents=True, exist_ok=True)
        if start:
            self.start()

    def start(self) -> None:
        conf = self.dir / "exabgp.conf"
        conf.write_text(self.config)
        exe = Path(sys.executable).with_name("exabgp")
        env = {"exabgp_daemon_daemonize": "false", "exabgp_daemon_user": "root", "exabgp_daemon_drop": "false",
               "exabgp_log_destination": str(self.dir / "exabgp.log"), "exabgp_api_cli": "false"}
        self.proc = self.ns.spawn(f"exabgp-{self.ns.short}", [str(exe), str(conf)], env=env)

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


# ---------------------------------------------------------------- speakerd

def speakerd_run_missing() -> str | None:
    """Why ``speakerd run -c DIR --node NODE --socket SOCK`` cannot work yet (None = it should)."""
    p = subprocess.run([sys.executable, "-m", "speakerd.cli", "run", "--help"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    text = p.stdout + p.stderr
    if p.returncode != 0 or "not implemented" in text.lower():
        return f"speakerd run not implemented: {text.strip()[-200:]}"
    missing = [o for o in ("--node", "--socket") if o not in text]
    if missing or not ("-c" in text or "--config" in text):
        return f"speakerd run not implemented (no {' '.join(missing) or '-c'} option yet)"
    return None


class Speakerd:
    """``speakerd run -c DIR --node NODE --socket SOCK`` inside a namespace; queried with speakerctl."""

    def __init__(self, ns: Netns, config_dir: Path, node: str, socket: Path | None = None,
                 extra_args: Iterable[str] = ("--log-level", "debug"), start: bool = True) -> None:
        self.ns, self.config_dir, self.node = ns, Path(config_dir), node
        self.socket = Path(socket) if socket else self.config_dir.parent / f"speakerd-{node}.sock"
        self.state = self.config_dir.parent / f"speakerd-{node}-state.json"  # never the system path
        self.extra_args = list(extra_args)
        self.proc: Proc | None = None
        if start:
            self.start()

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-m", "speakerd.cli", "run", "-c", str(self.config_dir), "--node", self.node,
                "--socket", str(self.socket), "--state", str(self.state), *self.extra_args]

    def start(self, timeout: float = 15) -> None:
        self.socket.unlink(missing_ok=True)
        self.proc = self.ns.spawn(f"speakerd-{self.node}", self.argv, env={"PYTHONUNBUFFERED": "1"})
        wait_for(lambda: self.socket.exists() or not self.proc.alive, timeout, "speakerd control socket")
        if not self.proc.alive:
            log = self.log
            if "not implemented" in log.lower() or "unrecognized arguments" in log:
                raise NotImplementedYet(f"speakerd run: {log.strip()[-300:]}")
            raise LabError(f"speakerd exited with {self.proc.popen.returncode}:\n{log[-3000:]}")

    @property
    def log(self) -> str:
        return self.proc.log_text() if self.proc else ""

    def stop(self) -> int | None:
        return self.proc.stop(timeout=5) if self.proc else None

    def kill(self) -> None:
        if self.proc:
            self.proc.kill()

    def ctl(self, *args: str, json_: bool = True) -> Any:
        argv = [sys.executable, "-m", "speakerd.ctl", "--socket", str(self.socket), *args]
        out = sh(argv + (["--json"] if json_ else []), timeout=20)
        return json.loads(out) if json_ else out

    def summary(self) -> list[dict]:
        data = self.ctl("show", "bgp", "summary")
        return data.get("peers", []) if isinstance(data, dict) else data

    def peer(self, ip: str) -> dict | None:
        """The summary entry whose ``address`` (or ``peer``) is ``ip``."""
        def addr(p: dict) -> str:
            return str(p.get("address") or p.get("peer") or "").split("%")[0]
        return next((p for p in self.summary() if addr(p) == ip), None)

    def peer_state(self, ip: str) -> str:
        p = self.peer(ip)
        return _state_name(p.get("state", "Absent")) if p else "Absent"

    def established(self, ip: str) -> bool:
        return self.peer_state(ip) == "Established"

    def wait_established(self, ip: str, timeout: float = 20) -> None:
        wait_for(lambda: self.established(ip), timeout, f"speakerd session with {ip} Established")


# ---------------------------------------------------------------- MetalLB manifests

def bgp_peer(name: str, my_asn: int, peer_asn: int, peer_address: str, **spec: Any) -> dict:
    """A metallb.io/v1beta2 BGPPeer; extra spec keys in MetalLB spelling (holdTime, password, vrf, ...)."""
    return {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
            "metadata": {"name": name, "namespace": "metallb-system"},
            "spec": {"myASN": my_asn, "peerASN": peer_asn, "peerAddress": peer_address, **spec}}


def pool(name: str, addresses: list[str], **spec: Any) -> dict:
    return {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": name, "namespace": "metallb-system"}, "spec": {"addresses": addresses, **spec}}


def advertisement(name: str, **spec: Any) -> dict:
    return {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
            "metadata": {"name": name, "namespace": "metallb-system"}, "spec": spec}


def service(name: str, ips: list[str], namespace: str = "default", pool_name: str | None = None) -> dict:
    """A LoadBalancer Service that has been given ``ips`` (annotation and status agree)."""
    ann = {"metallb.universe.tf/loadBalancerIPs": ",".join(ips)}
    if pool_name:
        ann["metallb.universe.tf/address-pool"] = pool_name
    fams = sorted({"IPv6" if ":" in ip else "IPv4" for ip in ips})
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "annotations": ann},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}], "ipFamilies": fams,
                     "ipFamilyPolicy": "RequireDualStack" if len(fams) > 1 else "SingleStack"},
            "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}}}


def node(name: str, labels: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}}}


def manifests(dir: Path, objects: Iterable[dict]) -> Path:
    """Write each object to ``dir/<nn>-<kind>-<name>.yaml``; returns ``dir``."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    for old in dir.glob("*.yaml"):
        old.unlink()
    for i, obj in enumerate(objects):
        fname = f"{i:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        (dir / fname).write_text(yaml.safe_dump(obj, sort_keys=False))
    return dir


__all__ = ["Frr", "GoBgp", "Bird", "ExaBgp", "Speakerd", "Neighbor", "Network", "NotImplementedYet",
           "speakerd_run_missing", "bgp_peer", "pool", "advertisement", "service", "node", "manifests"]
