"""Where the client connects: in-cluster service account, a kubeconfig, $KUBECONFIG; and errors."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from speakerd.kube.config import ConfigError, in_cluster, load_client, pod_namespace
from tests.kube.conftest import write_kubeconfig


def sa_dir(tmp_path):
    d = tmp_path / "sa"
    d.mkdir()
    (d / "token").write_text("sa-token-123")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a CA certificate")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kube-ca",
                    "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt")], check=True, capture_output=True)
    (d / "namespace").write_text("metallb-system")
    return d


async def test_in_cluster_uses_service_host_token_and_ca(tmp_path):
    d = sa_dir(tmp_path)
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster(d, env)
    client = await load_client(sa_dir=d, environ=env)
    try:
        conf = client.api.configuration
        assert conf.host == "https://10.96.0.1:443"
        assert conf.ssl_ca_cert == str(d / "ca.crt")
        assert "sa-token-123" in str(conf.api_key.get("BearerToken") or conf.api_key.get("authorization"))
    finally:
        await client.close()
    assert pod_namespace(d) == "metallb-system"


async def test_kubeconfig_wins_over_in_cluster(tmp_path, emu):
    d = sa_dir(tmp_path)
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    kc = write_kubeconfig(tmp_path / "kc", emu.url)
    client = await load_client(kc, sa_dir=d, environ=env)
    try:
        assert client.host == emu.url
        assert (await client.list(__import__("speakerd.kube.kinds", fromlist=["x"]).NODES))["items"] == []
    finally:
        await client.close()


async def test_kubeconfig_from_environment(tmp_path, emu):
    kc = write_kubeconfig(tmp_path / "kc", emu.url)
    client = await load_client(sa_dir=tmp_path / "none", environ={"KUBECONFIG": kc})
    try:
        assert client.host == emu.url
    finally:
        await client.close()


async def test_no_configuration_is_an_error(tmp_path):
    with pytest.raises(ConfigError):
        await load_client(sa_dir=tmp_path / "none", environ={"KUBECONFIG": str(tmp_path / "missing")})
    with pytest.raises(ConfigError):
        await load_client(str(tmp_path / "missing"), sa_dir=tmp_path / "none", environ={})
