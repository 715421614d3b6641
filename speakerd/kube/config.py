"""Where the API server is and how to authenticate: in-cluster service account or a kubeconfig.

:func:`load_client` picks, as client-go's ``rest.InClusterConfig`` / ``clientcmd`` do:

- ``kubeconfig`` given → that file (its current context, or ``context``);
- else inside a pod (``KUBERNETES_SERVICE_HOST`` set and the service-account token present) →
  ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`` with the token (re-read as
  kubelet rotates it) and ``ca.crt`` from ``/var/run/secrets/kubernetes.io/serviceaccount``;
- else ``$KUBECONFIG`` or ``~/.kube/config``.
"""
from __future__ import annotations

import os
from pathlib import Path

from .client import KubeClient

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConfigError(Exception):
    pass


def in_cluster(sa_dir: Path = SERVICE_ACCOUNT_DIR, environ=os.environ) -> bool:
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and (sa_dir / "token").exists()


def pod_namespace(sa_dir: Path = SERVICE_ACCOUNT_DIR, default: str = "metallb-system") -> str:
    """The namespace this pod runs in (``POD_NAMESPACE``, else the service account's), for Leases."""
    ns = os.environ.get("POD_NAMESPACE")
    if ns:
        return ns
    try:
        return (sa_dir / "namespace").read_text().strip() or default
    except OSError:
        return default


async def load_client(kubeconfig: str | os.PathLike | None = None, context: str | None = None, *,
                      sa_dir: Path = SERVICE_ACCOUNT_DIR, environ=os.environ) -> KubeClient:
    from kubernetes_asyncio import client, config
    from kubernetes_asyncio.config.config_exception import ConfigException

    conf = client.Configuration()
    try:
        if kubeconfig is None and in_cluster(sa_dir, environ):
            loader = config.incluster_config.InClusterConfigLoader(
                token_filename=str(sa_dir / "token"), cert_filename=str(sa_dir / "ca.crt"), environ=environ)
            loader.load_and_set(conf)
        else:
            path = kubeconfig or environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"
            path = os.path.expanduser(str(path))
            if not os.path.exists(path):
                raise ConfigError(f"no kubeconfig at {path} and not running in a cluster")
            await config.load_kube_config(config_file=path, context=context, client_configuration=conf)
    except ConfigException as exc:
        raise ConfigError(str(exc)) from exc
    return KubeClient(without_per_request_env_lookups(client.ApiClient(configuration=conf)))


def without_per_request_env_lookups(api):
    """The proxy environment read once, not on every request.

    kubernetes_asyncio's aiohttp session has ``trust_env=True``: each request then looks up
    ``HTTPS_PROXY``/``NO_PROXY`` and parses ``~/.netrc`` in a worker thread (two thread hops per
    request: in churn most of the CPU a status write cost). client-go reads the proxy variables
    and never a netrc; so do we: the proxy the environment gives for the API server (if any) is
    set once on the configuration and the session stops consulting the environment."""
    from aiohttp.helpers import get_env_proxy_for_url
    from yarl import URL

    conf = api.configuration
    if not conf.proxy:
        try:
            proxy, auth = get_env_proxy_for_url(URL(conf.host))
        except LookupError:
            proxy, auth = None, None
        if proxy is not None:
            conf.proxy = str(proxy)
            api.rest_client.proxy = conf.proxy
            if auth is not None:
                headers = {**(conf.proxy_headers or {}), "Proxy-Authorization": auth.encode()}
                conf.proxy_headers = api.rest_client.proxy_headers = headers
    # no public setter; the attribute is what ClientSession.trust_env reads
    api.rest_client.pool_manager._trust_env = False
    return api
