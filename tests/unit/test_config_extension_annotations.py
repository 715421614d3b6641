"""speakerd's extension annotations (speakerd.io/max-prefixes on a BGPPeer,
speakerd.io/link-bandwidth on a BGPAdvertisement) on an object whose metadata.annotations is
not a mapping: an error naming the field, never a crash of the whole load."""
from __future__ import annotations

import pytest

from test_config_validation import errors, write

from speakerd.config import load_config


PEER = """\
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: p1
  namespace: metallb-system{ann}
spec: {{myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1}}
"""

AD = """\
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: ad
  namespace: metallb-system{ann}
spec: {{}}
"""


@pytest.mark.parametrize("kind,doc", [("BGPPeer/p1", PEER), ("BGPAdvertisement/ad", AD)])
@pytest.mark.parametrize("value", ["speakerd.io/link-bandwidth=endpoints", "[speakerd.io/max-prefixes]", "7"])
def test_annotations_that_are_not_a_mapping_are_an_error_of_that_field(tmp_path, kind, doc, value):
    path, errs = errors(tmp_path, doc.format(ann=f"\n  annotations: {value}"))
    assert [e for e in errs if e.startswith(f"{path}: {kind}: metadata.annotations: ")], errs
    assert any("expected a mapping" in e for e in errs), errs


def test_annotations_as_a_mapping_still_work(tmp_path):
    config = load_config([write(tmp_path, PEER.format(ann="\n  annotations: {speakerd.io/max-prefixes: '10'}"),
                                AD.format(ann="\n  annotations: {speakerd.io/link-bandwidth: endpoints}"))])
    assert config.peers["p1"].max_prefixes == 10
    assert config.advertisements["ad"].weight_by_endpoints
