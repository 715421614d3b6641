"""BGPPeer spec.dynamicASN: the peer's AS is learned from its OPEN, of the configured kind."""
from __future__ import annotations

import pytest

from test_config_validation import errors, one_error, write
from test_fsm_harness import ID_A, ID_B, cfg
from test_fsm_open import notif, notification_after

from speakerd.config import load_config
from speakerd.fsm import Session, SessionSettings, State
from speakerd.fsm.actions import Send
from speakerd.policy.types import RouteAttrs
from speakerd.wire.capabilities import FourOctetAS
from speakerd.wire.constants import MessageType
from speakerd.wire.framing import Framer, encode
from speakerd.wire.messages import KEEPALIVE, Open, Update

LOCAL = 64512


def dyn_peer(mode="external", extra=""):
    return f"""\
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: p1, namespace: metallb-system}}
spec:
  myASN: {LOCAL}
  dynamicASN: {mode}
  peerAddress: 10.0.0.1
{extra}"""


# --- config ---------------------------------------------------------------------

@pytest.mark.parametrize("mode,ibgp", [("internal", True), ("external", False)])
def test_dynamic_asn_loads(tmp_path, mode, ibgp):
    peer = load_config([write(tmp_path, dyn_peer(mode))]).peers["p1"]
    assert peer.dynamic_asn == mode and peer.peer_asn == 0 and peer.ibgp is ibgp
    s = SessionSettings.from_peer(peer, router_id=ID_A)
    assert s.dynamic_asn == mode and s.ibgp is ibgp


def test_kubectl_zero_peer_asn_with_dynamic_asn_loads(tmp_path):
    # peerASN is omitempty upstream; 0 means unset
    peer = load_config([write(tmp_path, dyn_peer(extra="  peerASN: 0\n"))]).peers["p1"]
    assert peer.dynamic_asn == "external"


def test_dynamic_asn_and_peer_asn_are_exclusive(tmp_path):
    path, err = one_error(tmp_path, dyn_peer(extra="  peerASN: 64513\n"))
    assert err == (f"{path}: BGPPeer/p1: spec.dynamicASN: peerASN and dynamicASN are mutually "
                   "exclusive; set only one")


def test_one_of_peer_asn_and_dynamic_asn_required(tmp_path):
    doc = dyn_peer().replace("  dynamicASN: external\n", "")
    path, err = one_error(tmp_path, doc)
    assert err == f"{path}: BGPPeer/p1: spec.peerASN: required field is missing"


def test_dynamic_asn_value_is_checked(tmp_path):
    path, errs = errors(tmp_path, dyn_peer("externel"))
    assert any(e.startswith(f"{path}: BGPPeer/p1: spec.dynamicASN:") and "externel" in e for e in errs), errs


def test_ebgp_multihop_refused_for_dynamic_internal(tmp_path):
    path, err = one_error(tmp_path, dyn_peer("internal", "  ebgpMultiHop: true\n"))
    assert err.startswith(f"{path}: BGPPeer/p1: spec.ebgpMultiHop: ebgpMultiHop is for eBGP peers")
    load_config([write(tmp_path, dyn_peer("external", "  ebgpMultiHop: true\n"), name="ok.yaml")])


# --- OPEN checks -----------------------------------------------------------------

def dyn(mode, **kw):
    return cfg(local_asn=LOCAL, peer_asn=0, dynamic_asn=mode, **kw)


@pytest.mark.parametrize("mode,opn", [
    ("internal", Open.build(64513, 90, ID_B, [])),  # another AS for an internal peer
    ("external", Open.build(LOCAL, 90, ID_B, [])),  # our AS for an external peer
    ("external", Open(23456, 90, ID_B, (FourOctetAS(LOCAL),))),  # ours, in the 4-octet capability
])
def test_wrong_kind_of_asn_is_bad_peer_as(mode, opn):
    assert notification_after(encode(opn), dyn(mode)) == notif(2, 2)


def opened(settings, opn):
    s = Session(settings)
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    s.pop_actions()
    s.data_received(encode(opn), 1.0)
    return s


@pytest.mark.parametrize("mode,asn", [("internal", LOCAL), ("external", 64513),
                                      ("external", 4200000000)])
def test_right_kind_of_asn_is_accepted_and_learned(mode, asn):
    opn = Open(asn if asn <= 0xFFFF else 23456, 90, ID_B, (FourOctetAS(asn),))
    s = opened(dyn(mode), opn)
    assert s.state == State.OPENCONFIRM and s.negotiated.peer_asn == asn


def established(mode, asn):
    s = opened(dyn(mode), Open.build(asn, 90, ID_B, []))
    s.data_received(encode(KEEPALIVE), 1.0)
    assert s.state == State.ESTABLISHED
    s.pop_actions()
    s.set_routes(2.0, {(1, (0xC6336401 << 8) | 32): RouteAttrs()})
    ups = [a.data for a in s.pop_actions() if isinstance(a, Send) and a.mtype == MessageType.UPDATE]
    assert len(ups) == 1
    (mtype, body), = Framer().feed(ups[0])
    return Update.decode_body(body, s.negotiated).attrs


def test_internal_peer_gets_ibgp_attributes():
    attrs = established("internal", LOCAL)
    assert attrs.as_path == () and attrs.local_pref == 100


def test_external_peer_gets_ebgp_attributes():
    attrs = established("external", 65010)
    assert attrs.local_pref is None and [list(a) for _, a in attrs.as_path] == [[LOCAL]]
