"""speakerd's Kubernetes API layer, shared by ``speakerd run --kubernetes`` and ``speakerd controller``.

Modules (each one responsibility):

- :mod:`.config` — :func:`load_client`: in-cluster service account (token + CA) or a kubeconfig.
- :mod:`.client` — :class:`KubeClient`: raw-dict verbs (get/list/watch/create/replace/patch/delete)
  over kubernetes_asyncio's ApiClient, JSON decoded with orjson; :class:`ApiError`.
- :mod:`.kinds` — :class:`Kind` and the resources speakerd uses (Services, EndpointSlices, Nodes,
  Secrets, Leases, Events, metallb.io kinds).
- :mod:`.diff` — pure: re-list reconcile, watch-event application, "same object", :func:`slim`.
- :mod:`.reflector` — :class:`Reflector`: list+watch of one kind into a cache, emitting only real
  changes; resume, 410 re-list, bookmarks, backoff; keeps its cache while the API is away.
- :mod:`.metrics` — :class:`WatchMetrics`: ``speakerd_k8s_watch_up{kind}`` and friends.
- :mod:`.leader` — :class:`LeaderElector` on a coordination.k8s.io/v1 Lease (client-go semantics);
  the decision logic (:class:`LeaseDecider`) is pure.
- :mod:`.writers` — status-subresource patches with conflict retry, :class:`EventRecorder`
  (client-go-style dedup: count + lastTimestamp), create-or-patch of namespaced custom resources.
"""
from .client import ApiError, KubeClient
from .config import ConfigError, load_client
from .kinds import Kind
from .reflector import Backoff, Reflector

__all__ = ["ApiError", "Backoff", "ConfigError", "Kind", "KubeClient", "Reflector", "load_client"]
