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


class CountingExecutor(__import__("concurrent.futures").futures.ThreadPoolExecutor):
    submitted = 0

    def submit(self, *a, **kw):
        CountingExecutor.submitted += 1
        return super().submit(*a, **kw)


async def test_requests_do_not_hop_to_a_thread_for_proxy_or_netrc_lookups(tmp_path, emu, monkeypatch):
    import asyncio

    from speakerd.kube.kinds import NODES
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    client = await load_client(write_kubeconfig(tmp_path / "kc", emu.url), sa_dir=tmp_path / "none", environ={})
    ex = CountingExecutor(max_workers=1)
    asyncio.get_running_loop().set_default_executor(ex)
    try:
        for _ in range(5):
            await client.list(NODES)
        assert CountingExecutor.submitted == 0  # trust_env would submit two lookups per request
    finally:
        await client.close()
        ex.shutdown()


async def test_proxy_from_the_environment_is_read_once_at_load(tmp_path, emu, monkeypatch):
    for var in ("HTTPS_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://user:pw@127.0.0.1:9")
    kc = write_kubeconfig(tmp_path / "kc", emu.url)  # http://127.0.0.1:port
    client = await load_client(kc, sa_dir=tmp_path / "none", environ={})
    try:
        assert client.api.configuration.proxy == "http://127.0.0.1:9"
        assert client.api.rest_client.proxy_headers["Proxy-Authorization"].startswith("Basic ")
    finally:
        await client.close()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = await load_client(kc, sa_dir=tmp_path / "none", environ={})
    try:
        assert not client.api.configuration.proxy
    finally:
        await client.close()
