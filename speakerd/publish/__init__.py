"""What this node publishes back to the cluster: status objects and Events.

``status`` and ``events`` are pure (this node's sessions and announcements in,
object bodies and operations out); ``writer`` is the asyncio edge that applies
them through a Kubernetes client, rate-limited and coalescing.
"""
