"""A small synchronous client for the API emulator: create, replace, patch, delete, list over HTTP.

The harness changes the cluster the way kubectl and the Kubernetes controllers
would (Services, their ``/status``, EndpointSlices, Nodes, MetalLB objects);
speakerd reads them with its own client.  Standard library only: what is
measured is speakerd, not this client.
"""
from __future__ import annotations

import ctypes
import http.client
import json
import os
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

CLONE_NEWNET = 0x40000000

# kind -> (API group path, plural, namespaced)
RESOURCES: dict[str, tuple[str, str, bool]] = {
    "Service": ("api/v1", "services", True),
    "Node": ("api/v1", "nodes", False),
    "Secret": ("api/v1", "secrets", True),
    "EndpointSlice": ("apis/discovery.k8s.io/v1", "endpointslices", True),
    "Lease": ("apis/coordination.k8s.io/v1", "leases", True),
    "BGPPeer": ("apis/metallb.io/v1beta2", "bgppeers", True),
    "IPAddressPool": ("apis/metallb.io/v1beta1", "ipaddresspools", True),
    "BGPAdvertisement": ("apis/metallb.io/v1beta1", "bgpadvertisements", True),
    "BFDProfile": ("apis/metallb.io/v1beta1", "bfdprofiles", True),
    "Community": ("apis/metallb.io/v1beta1", "communities", True),
}


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


def _enter_netns(name: str) -> None:
    """Move the calling thread (only it) into network namespace ``name``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
    finally:
        os.close(fd)


class KubeApi:
    """Requests go out from threads inside ``netns`` (the API server's namespace), so the
    harness reaches it without any address in the root namespace. Each thread keeps one HTTP/1.1
    connection open (as kubectl and client-go do), so a request costs the API server no new
    connection."""

    def __init__(self, base: str, netns: str | None = None, timeout: float = 10, workers: int = 4) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.netns = netns
        self._pool: ThreadPoolExecutor | None = None
        self._workers = workers
        self._local = threading.local()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            init = (lambda: _enter_netns(self.netns)) if self.netns else None
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="kubeapi", initializer=init)
        return self._pool

    def path(self, kind: str, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        group, plural, namespaced = RESOURCES[kind]
        p = f"/{group}/"
        if namespaced and namespace:
            p += f"namespaces/{namespace}/"
        p += plural
        if name:
            p += f"/{name}"
        if sub:
            p += f"/{sub}"
        return p

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        return self.submit(method, path, body, content_type).result()

    def submit(self, method: str, path: str, body: Any = None, content_type: str = "application/json"):
        """The request as a future (the churn scenario keeps several in flight)."""
        return self._executor().submit(self._request, method, path, body, content_type)

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and (fresh or getattr(self._local, "base", None) != self.base):
            conn.close()
            conn = None
        if conn is None:
            u = urllib.parse.urlsplit(self.base)
            conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=self.timeout)
            self._local.conn, self._local.base = conn, self.base
        return conn

    def _request(self, method: str, path: str, body: Any, content_type: str) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt > 0)
            try:
                conn.request(method, path, body=data, headers=headers)
                r = conn.getresponse()
                text = r.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # the kept connection was closed by the server (restarted, idle timeout): once more
                # on a new one; a server that is down fails the new one too
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                raise
        if r.status >= 400:
            raise ApiError(r.status, text.decode(errors="replace"))
        return json.loads(text) if text else None

    def ready(self) -> bool:
        try:
            self.request("GET", self.path("Node"))
        except (OSError, http.client.HTTPException, ApiError):
            return False
        return True

    # -- objects
    @staticmethod
    def _where(obj: dict) -> tuple[str, str | None, str]:
        md = obj["metadata"]
        return obj["kind"], md.get("namespace"), md["name"]

    def create(self, obj: dict) -> dict:
        return self.create_async(obj).result()

    def create_async(self, obj: dict):
        """POST ``obj`` as kubectl would (no server-set metadata, no status); a future."""
        kind, ns, _ = self._where(obj)
        body = {**obj, "metadata": {k: v for k, v in obj["metadata"].items()
                                    if k not in ("resourceVersion", "uid", "creationTimestamp", "generation")}}
        body.pop("status", None)  # status is written by its owner, through /status
        return self.submit("POST", self.path(kind, ns), body)

    def delete_async(self, kind: str, namespace: str | None, name: str):
        return self.submit("DELETE", self.path(kind, namespace, name))

    def get(self, kind: str, namespace: str | None, name: str) -> dict:
        return self.request("GET", self.path(kind, namespace, name))

    def list(self, kind: str, namespace: str | None = None) -> list[dict]:
        return self.request("GET", self.path(kind, namespace)).get("items", [])

    def replace(self, obj: dict) -> dict:
        """PUT with the stored resourceVersion (read first): a last-writer update like ``kubectl replace``."""
        kind, ns, name = self._where(obj)
        current = self.get(kind, ns, name)
        md = {**obj["metadata"], "resourceVersion": current["metadata"]["resourceVersion"],
              "uid": current["metadata"].get("uid")}
        return self.request("PUT", self.path(kind, ns, name), {**obj, "metadata": md})

    def patch(self, kind: str, namespace: str | None, name: str, patch: dict, sub: str | None = None) -> dict:
        return self.request("PATCH", self.path(kind, namespace, name, sub), patch,
                            content_type="application/merge-patch+json")

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        try:
            self.request("DELETE", self.path(kind, namespace, name))
        except ApiError as e:
            if e.status != 404:
                raise

    def apply(self, obj: dict) -> dict:
        """Create, or replace when it exists."""
        try:
            return self.create(obj)
        except ApiError as e:
            if e.status != 409:
                raise
        return self.replace(obj)

    def set_status(self, obj: dict) -> dict:
        kind, ns, name = self._where(obj)
        return self.patch(kind, ns, name, {"status": obj.get("status", {})}, sub="status")

    def ingress(self, namespace: str, name: str) -> list[str]:
        st = self.get("Service", namespace, name).get("status", {})
        return [i["ip"] for i in (st.get("loadBalancer") or {}).get("ingress") or [] if "ip" in i]
