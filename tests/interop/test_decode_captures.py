"""Real FRR ↔ GoBGP sessions captured with tcpdump, decoded by `speakerd decode --json`.

Two network namespaces joined by a veth pair (names prefixed ``sdc-``):
FRR (zebra + bgpd, AS 65001) in one, GoBGP (AS 65002) in the other, peered
over IPv4 and IPv6; each side originates routes with communities, GoBGP
withdraws one and then shuts its IPv4 session down with a shutdown
communication.  tcpdump captures inside the FRR namespace.

Set SPEAKERD_SAVE_CAPTURE=path to keep the capture (tests/data/ holds one).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

FRR_DIR = Path("/usr/lib/frr")
TOOLS = [FRR_DIR / "zebra", FRR_DIR / "bgpd", "gobgpd", "gobgp", "vtysh", "tcpdump", "ip"]

V4_FRR, V4_GBP = "10.255.61.1", "10.255.61.2"
V6_FRR, V6_GBP = "fd00:5dc::1", "fd00:5dc::2"
SHUTDOWN_REASON = "sdc maintenance"

FRR_CONF = f"""\
frr defaults traditional
hostname sdc-frr
!
route-map COMM permit 10
 set community 65001:100 65001:200
 set large-community 65001:1:2
!
router bgp 65001
 bgp router-id {V4_FRR}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {V4_GBP} remote-as 65002
 neighbor {V4_GBP} timers connect 1
 neighbor {V6_GBP} remote-as 65002
 neighbor {V6_GBP} timers connect 1
 address-family ipv4 unicast
  network 198.51.100.0/24 route-map COMM
  no neighbor {V6_GBP} activate
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:100::/48 route-map COMM
  neighbor {V6_GBP} activate
 exit-address-family
!
"""

GOBGP_CONF = f"""\
[global.config]
  as = 65002
  router-id = "{V4_GBP}"
  local-address-list = ["{V4_GBP}", "{V6_GBP}"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "{V4_FRR}"
    peer-as = 65001
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"

[[neighbors]]
  [neighbors.config]
    neighbor-address = "{V6_FRR}"
    peer-as = 65001
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"""


def _missing_tools() -> list[str]:
    return [str(t) for t in TOOLS if not (Path(t).exists() if isinstance(t, Path) else shutil.which(t))]


def _sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30)


def _poll(what: str, fn, timeout: float = 40.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except (subprocess.SubprocessError, ValueError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Lab:
    """Namespaces, veth and processes; everything it makes it removes, by name and PID."""

    def __init__(self, tmp: Path) -> None:
        tag = f"{os.getpid() % 100000}"
        self.ns_frr, self.ns_gbp = f"sdc-frr-{tag}", f"sdc-gbp-{tag}"
        self.veth_frr, self.veth_gbp = f"sdcf{tag}", f"sdcg{tag}"
        self.dir = tmp
        self.frr_dir, self.gbp_dir = tmp / "frr", tmp / "gobgp"
        self.procs: list[subprocess.Popen] = []
        self.namespaces: list[str] = []

    def start_netns(self) -> None:
        for ns in (self.ns_frr, self.ns_gbp):
            _sh("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "link", "add", self.veth_frr, "netns", self.ns_frr, "type", "veth",
            "peer", "name", self.veth_gbp, "netns", self.ns_gbp)
        for ns, dev, v4, v6 in ((self.ns_frr, self.veth_frr, V4_FRR, V6_FRR),
                                (self.ns_gbp, self.veth_gbp, V4_GBP, V6_GBP)):
            _sh("ip", "-n", ns, "addr", "add", f"{v4}/30", "dev", dev)
            _sh("ip", "-n", ns, "addr", "add", f"{v6}/64", "dev", dev, "nodad")
            _sh("ip", "-n", ns, "link", "set", dev, "up")

    def spawn(self, ns: str, argv: list[str], log: Path) -> subprocess.Popen:
        with open(log, "wb") as out:
            p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        self.procs.append(p)
        return p

    def start_tcpdump(self, pcap: Path) -> subprocess.Popen:
        log = self.dir / "tcpdump.log"
        p = self.spawn(self.ns_frr, ["tcpdump", "-i", self.veth_frr, "-U", "-s", "0", "-Z", "root",
                                     "-w", str(pcap), "tcp", "port", "179"], log)
        _poll("tcpdump to listen", lambda: b"listening on" in log.read_bytes(), timeout=15)
        return p

    def start_frr(self) -> None:
        d = self.frr_dir
        d.mkdir()
        d.chmod(0o777)
        (d / "frr.conf").write_text(FRR_CONF)
        (d / "zebra.conf").write_text("hostname sdc-zebra\n")
        common = ["-P", "0", "--vty_socket", str(d), "-z", str(d / "zserv.api")]
        self.spawn(self.ns_frr, [str(FRR_DIR / "zebra"), "-u", "frr", "-g", "frr", *common,
                                 "-f", str(d / "zebra.conf"), "-i", str(d / "zebra.pid")], d / "zebra.out")
        _poll("zebra socket", lambda: (d / "zserv.api").exists(), timeout=15)
        self.spawn(self.ns_frr, [str(FRR_DIR / "bgpd"), "-S", *common, "-n", "-f", str(d / "frr.conf"),
                                 "-i", str(d / "bgpd.pid"), "--limit-fds", "1024"], d / "bgpd.out")

    def start_gobgp(self) -> None:
        d = self.gbp_dir
        d.mkdir()
        (d / "gobgpd.toml").write_text(GOBGP_CONF)
        self.spawn(self.ns_gbp, ["gobgpd", "-f", str(d / "gobgpd.toml"), "-p", "-l", "info",
                                 "--pprof-disable", "--api-hosts", f"unix://{d / 'gobgp.sock'}"], d / "gobgpd.out")
        _poll("gobgp API", lambda: _sh(*self.gobgp("global"), check=False).returncode == 0, timeout=15)

    def gobgp(self, *args: str) -> list[str]:
        return ["gobgp", "--target", f"unix://{self.gbp_dir / 'gobgp.sock'}", *args]

    def vtysh_json(self, cmd: str):
        out = _sh("vtysh", "--vty_socket", str(self.frr_dir), "-c", cmd).stdout
        return json.loads(out)

    def gobgp_established(self, addr: str) -> bool:
        data = json.loads(_sh(*self.gobgp("neighbor", addr, "-j")).stdout)
        return data["state"]["session_state"] == 6

    def frr_has(self, afi: str, pfx: str) -> bool:
        routes = self.vtysh_json(f"show bgp {afi} unicast json").get("routes", {})
        return pfx in routes

    def cleanup(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in reversed(self.procs):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        for ns in self.namespaces:
            _sh("ip", "netns", "del", ns, check=False)


@pytest.fixture(scope="module")
def capture():
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    missing = _missing_tools()
    if missing:
        pytest.skip(f"missing: {', '.join(missing)}")
    # FRR's daemons drop to user frr: their directory must be reachable by it,
    # which pytest's private tmp_path is not.
    tmp = Path(tempfile.mkdtemp(prefix="sdc-"))
    tmp.chmod(0o777)
    lab = Lab(tmp)
    pcap = tmp / "frr-gobgp.pcap"
    try:
        lab.start_netns()
        tcpdump = lab.start_tcpdump(pcap)
        lab.start_gobgp()
        _sh(*lab.gobgp("global", "rib", "add", "-a", "ipv4", "203.0.113.0/24",
                       "community", "65002:300", "large-community", "65002:3:4", "med", "50"))
        _sh(*lab.gobgp("global", "rib", "add", "-a", "ipv4", "192.0.2.128/25", "community", "65002:301"))
        _sh(*lab.gobgp("global", "rib", "add", "-a", "ipv6", "2001:db8:200::/48", "community", "65002:600"))
        lab.start_frr()
        _poll("IPv4 session", lambda: lab.gobgp_established(V4_FRR))
        _poll("IPv6 session", lambda: lab.gobgp_established(V6_FRR))
        _poll("FRR to learn 203.0.113.0/24", lambda: lab.frr_has("ipv4", "203.0.113.0/24"))
        _poll("FRR to learn 2001:db8:200::/48", lambda: lab.frr_has("ipv6", "2001:db8:200::/48"))
        _poll("GoBGP to learn FRR's routes", lambda: all(
            pfx in _sh(*lab.gobgp("global", "rib", "-a", afi)).stdout
            for afi, pfx in (("ipv4", "198.51.100.0/24"), ("ipv6", "2001:db8:100::/48"))))
        _sh(*lab.gobgp("global", "rib", "del", "-a", "ipv4", "192.0.2.128/25"))
        _poll("FRR to drop 192.0.2.128/25", lambda: not lab.frr_has("ipv4", "192.0.2.128/25"))
        _sh(*lab.gobgp("neighbor", V4_FRR, "shutdown", "--reason", SHUTDOWN_REASON))
        _poll("FRR to see the shutdown", lambda: lab.vtysh_json("show bgp ipv4 unicast summary json")
              ["peers"][V4_GBP]["state"] != "Established")
        # tcpdump -U writes each packet as it reads it; stopping it early would
        # drop what is still in its kernel buffer.
        _poll("the NOTIFICATION in the capture", lambda: SHUTDOWN_REASON.encode() in pcap.read_bytes(), timeout=15)
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(timeout=10)
        keep = os.environ.get("SPEAKERD_SAVE_CAPTURE")
        if keep:
            shutil.copyfile(pcap, keep)
        yield pcap
    finally:
        lab.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def _decode_json(pcap: Path) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "speakerd.cli", "decode", "--json", str(pcap)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_capture_decodes_both_sessions(capture):
    recs = _decode_json(capture)
    assert not [r for r in recs if "error" in r], "no message of a real session is malformed"
    opens = {(r["src"], r["asn"]) for r in recs if r["type"] == "OPEN"}
    assert {(V4_FRR, 65001), (V4_GBP, 65002), (V6_FRR, 65001), (V6_GBP, 65002)} <= opens
    for src in (V4_FRR, V4_GBP, V6_FRR, V6_GBP):
        assert any(r["type"] == "KEEPALIVE" and r["src"] == src for r in recs), src
    frr_open = next(r for r in recs if r["type"] == "OPEN" and r["src"] == V4_FRR)
    cap_names = {c["name"] for c in frr_open["capabilities"]}
    assert {"multiprotocol", "four-octet-as", "route-refresh", "fqdn"} <= cap_names


def test_capture_updates_carry_prefixes_and_communities(capture):
    recs = _decode_json(capture)
    updates = [r for r in recs if r["type"] == "UPDATE"]

    def announced(src):
        out = {}
        for u in updates:
            if u["src"] != src:
                continue
            comms = (u["attrs"] or {}).get("communities", [])
            for p in u["nlri"] + ((u["mp_reach"] or {}).get("nlri", [])):
                out[p] = (comms, (u["attrs"] or {}).get("large_communities", []))
        return out

    from_gbp = {**announced(V4_GBP), **announced(V6_GBP)}
    assert from_gbp["203.0.113.0/24"] == (["65002:300"], ["65002:3:4"])
    assert from_gbp["2001:db8:200::/48"][0] == ["65002:600"]
    from_frr = {**announced(V4_FRR), **announced(V6_FRR)}
    assert from_frr["198.51.100.0/24"] == (["65001:100", "65001:200"], ["65001:1:2"])
    assert from_frr["2001:db8:100::/48"][0] == ["65001:100", "65001:200"]
    v6 = next(u for u in updates if u["src"] == V6_GBP and u["mp_reach"])
    assert v6["mp_reach"]["afi"] == "ipv6" and v6["mp_reach"]["next_hop"][0] == V6_GBP
    assert any("192.0.2.128/25" in u["withdrawn"] for u in updates if u["src"] == V4_GBP)


def test_capture_shows_the_shutdown_communication(capture):
    recs = _decode_json(capture)
    notes = [r for r in recs if r["type"] == "NOTIFICATION"]
    assert any(n["src"] == V4_GBP and n["name"] == "Cease/Administrative Shutdown"
               and n["shutdown_message"] == SHUTDOWN_REASON for n in notes), notes
