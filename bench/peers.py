"""Daemon adapters for the benchmarks: start one BGP implementation in a namespace,
tell its PID (for CPU/RSS) and how many IPv4 prefixes it holds from a neighbor.

Built on tests/interop/netlab's wrappers; every process is started through the
lab, so the lab stops it (by PID) however the benchmark ends.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from lab_extra import netlab, write_speakerd_config

from speakerd import ctl  # noqa: E402


class Daemon:
    name = "?"
    pid: int = 0

    def count(self, neighbor: str) -> int:
        raise NotImplementedError

    def established(self, neighbor: str) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        pass


class SpeakerdD(Daemon):
    name = "speakerd"

    def __init__(self, ns, dir: Path, neighbor: str, my_asn: int, peer_asn: int, n_services: int = 0,
                 extra_peers: list[tuple[str, int, int]] | None = None, hold: int | None = None,
                 write: bool = True, start: bool = True):
        peers = [(neighbor, my_asn, peer_asn)] + list(extra_peers or [])
        self.cfg = dir / "cfg"
        if write:
            write_speakerd_config(self.cfg, n_services, peers, hold=hold)
        self.sd = netlab.Speakerd(ns, self.cfg, "bench", socket=dir / "sd.sock",
                                  extra_args=("--log-level", "warning", "--watch", "0"), start=False)
        if start:
            self.start()

    def start(self, timeout: float = 120) -> None:
        self.sd.start(timeout=timeout)
        self.pid = self.sd.proc.pid

    def summary(self) -> list[dict]:
        return ctl.call(str(self.sd.socket), "summary", timeout=30)["peers"]

    def _peer(self, neighbor: str) -> dict:
        for p in self.summary():
            if p["address"] == neighbor:
                return p
        return {}

    def count(self, neighbor: str) -> int:
        return self._peer(neighbor).get("prefixes_received", 0)

    def sent(self, neighbor: str) -> int:
        return self._peer(neighbor).get("prefixes_sent", 0)

    def established(self, neighbor: str) -> bool:
        return bool(self._peer(neighbor).get("established"))

    def stop(self) -> None:
        self.sd.stop()


class FrrD(Daemon):
    name = "FRR"

    def __init__(self, ns, dir: Path, router_id: str, asn: int, neighbors: list[tuple[str, int]],
                 networks: list[str] = (), bfd: dict[str, int] | None = None, hold: int | None = None):
        """``bfd``: bfdd runs and every neighbour gets a BFD profile with these timers; ``hold``:
        the neighbours' hold time (keepalive a third of it)."""
        keepalive = max(1, hold // 3) if hold else None
        self.f = netlab.Frr(ns, dir, asn, router_id,
                            [netlab.Neighbor(a, p, bfd=bfd is not None, hold=hold, keepalive=keepalive)
                             for a, p in neighbors], networks=networks, bfd=bfd)
        self.pid = self.f.procs["bgpd"].pid

    def _peer(self, neighbor: str) -> dict:
        return self.f.vtysh("show bgp ipv4 unicast summary json").get("peers", {}).get(neighbor, {})

    def count(self, neighbor: str) -> int:
        return int(self._peer(neighbor).get("pfxRcd", 0) or 0)

    def sent(self, neighbor: str) -> int:
        return int(self._peer(neighbor).get("pfxSnt", 0) or 0)

    def established(self, neighbor: str) -> bool:
        return self._peer(neighbor).get("state") == "Established"

    def stop(self) -> None:
        self.f.stop()


class GoBgpD(Daemon):
    name = "GoBGP"

    def __init__(self, ns, dir: Path, router_id: str, asn: int, neighbors: list[tuple[str, int]]):
        self.g = netlab.GoBgp(ns, dir, asn, router_id, [netlab.Neighbor(a, p) for a, p in neighbors])
        self.pid = self.g.proc.pid

    def count(self, neighbor: str) -> int:
        n = self.g.neighbor(neighbor)
        total = 0
        for af in n.get("afi_safis", []) or []:
            st = af.get("state", {}) or {}
            total += int(st.get("received", 0) or 0)
        return total

    def established(self, neighbor: str) -> bool:
        return self.g.established(neighbor)

    def stop(self) -> None:
        self.g.stop()


class BirdD(Daemon):
    name = "BIRD"
    _RX = re.compile(r"Routes:\s+(\d+) imported(?:, (\d+) filtered)?(?:, (\d+) exported)?")

    def __init__(self, ns, dir: Path, router_id: str, local: str, asn: int, neighbor: str, peer_asn: int,
                 statics: int = 0, static_base: int = 0):
        proto = (f"protocol bgp p {{ local {local} as {asn}; neighbor {neighbor} as {peer_asn};\n"
                 f"  connect retry time 1; ipv4 {{ import all; export all; }}; }}\n")
        if statics:
            dir.mkdir(parents=True, exist_ok=True)
            with open(dir / "static.conf", "w") as f:
                f.write("protocol static statics { ipv4;\n")
                for i in range(statics):
                    a = static_base + i
                    f.write(f"  route {a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}/32 blackhole;\n")
                f.write("}\n")
            proto = f'include "{dir / "static.conf"}";\n' + proto
        self.b = netlab.Bird(ns, dir, router_id, proto)
        self.pid = self.b.proc.pid

    def _text(self) -> str:
        return self.b.birdc("show protocols all p")

    def count(self, neighbor: str) -> int:
        m = self._RX.search(self._text())
        return int(m.group(1)) if m else 0

    def sent(self, neighbor: str) -> int:
        m = self._RX.search(self._text())
        return int(m.group(3)) if m and m.group(3) else 0

    def established(self, neighbor: str) -> bool:
        return "Established" in self._text()

    def stop(self) -> None:
        self.b.stop()


class ExaBgpD(Daemon):
    """ExaBGP as a sender only (static routes in its config)."""
    name = "ExaBGP"

    def __init__(self, ns, dir: Path, router_id: str, local: str, asn: int, neighbor: str, peer_asn: int,
                 n: int, base: int):
        dir.mkdir(parents=True, exist_ok=True)
        lines = [f"neighbor {neighbor} {{", f"  router-id {router_id};", f"  local-address {local};",
                 f"  local-as {asn};", f"  peer-as {peer_asn};", "  family { ipv4 unicast; }", "  static {"]
        for i in range(n):
            a = base + i
            lines.append(f"    route {a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}/32 next-hop self;")
        lines += ["  }", "}"]
        self.e = netlab.ExaBgp(ns, dir, "\n".join(lines) + "\n")
        self.pid = self.e.proc.pid

    def stop(self) -> None:
        self.e.stop()
