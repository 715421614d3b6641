"""deploy/: least-privilege RBAC derived from the code's declared access, and the speaker DaemonSet.

The RBAC rules must equal ``speakerd.rbac.rules`` of every module's ACCESS
declaration (each module's own tests check its declaration against the calls
it makes), so a verb the code stops using, or starts using, fails here.
"""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from speakerd import rbac
from speakerd.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def docs() -> dict[tuple[str, str], dict]:
    out = {}
    for f in ("rbac.yaml", "daemonset.yaml"):
        for d in yaml.safe_load_all((ROOT / "deploy" / f).read_text()):
            if d:
                out[(d["kind"], d["metadata"]["name"])] = d
    return out


def _one(docs, kind):
    [d] = [v for (k, _), v in docs.items() if k == kind]
    return d


def _norm(rules):
    out = set()
    for r in rules:
        for g in r["apiGroups"]:
            for res in r["resources"]:
                for v in r["verbs"]:
                    out.add((g, res, v))
    return out


def test_rbac_is_exactly_the_declared_access(docs):
    declared = rbac.declared()
    assert {a.scope for a in declared} <= {"namespace", "cluster"}
    cluster = _one(docs, "ClusterRole")
    role = _one(docs, "Role")
    assert _norm(cluster["rules"]) == _norm(rbac.rules(declared, "cluster"))
    assert _norm(role["rules"]) == _norm(rbac.rules(declared, "namespace"))
    # no wildcards, no resourceNames tricks, nothing the code does not do
    for r in cluster["rules"] + role["rules"]:
        assert "*" not in r["verbs"] + r["resources"] + r["apiGroups"]
        assert not {"update", "get", "deletecollection", "escalate", "bind", "impersonate"} & set(r["verbs"])


def test_rbac_bindings_and_namespace(docs):
    ds = _one(docs, "DaemonSet")
    ns = ds["metadata"]["namespace"]
    sa = _one(docs, "ServiceAccount")
    assert sa["metadata"]["namespace"] == ns
    assert _one(docs, "Role")["metadata"]["namespace"] == ns
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        b = _one(docs, kind)
        assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                                "name": _one(docs, role_kind)["metadata"]["name"]}
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": ns}]
    assert ds["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    assert _one(docs, "Namespace")["metadata"]["name"] == ns


def _container(docs):
    [c] = _one(docs, "DaemonSet")["spec"]["template"]["spec"]["containers"]
    return c


def test_daemonset_runs_speakerd_against_the_api(docs):
    pod = _one(docs, "DaemonSet")["spec"]["template"]["spec"]
    c = _container(docs)
    assert pod["hostNetwork"] is True and pod.get("automountServiceAccountToken", True) is True
    assert not any("configMap" in v for v in pod.get("volumes", ()))
    assert c["command"][-2:] == ["-m", "speakerd.cli"]
    args = c["args"]
    # the arguments are ones `speakerd` accepts
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"]}
    assert env == {"NODE_NAME": "spec.nodeName", "POD_NAME": "metadata.name",
                   "POD_NAMESPACE": "metadata.namespace", "POD_UID": "metadata.uid"}
    parsed = build_parser().parse_args([a.replace("$(NODE_NAME)", "node-a") for a in args])
    assert parsed.command == "run" and parsed.kubernetes is True and parsed.node == "node-a"
    assert not getattr(parsed, "config", None)


def test_probes_and_prestop_talk_to_the_daemon_socket(docs):
    c = _container(docs)
    sock = c["args"][c["args"].index("--socket") + 1]
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["exec"]["command"] == ["speakerctl", "--socket", sock, "health"]
    cmd = c["lifecycle"]["preStop"]["exec"]["command"]
    assert cmd[:2] == ["/bin/sh", "-c"]
    words = shlex.split(cmd[2])
    assert words[0] == "speakerctl" and words[words.index("--socket") + 1] == sock
    assert c["terminationMessagePath"] in cmd[2]
    grace = _one(docs, "DaemonSet")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert int(words[words.index("--timeout") + 1]) < grace
