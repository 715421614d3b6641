"""A Kubernetes API server emulator for tests, benchmarks and the cluster harness.

In a test: ``async with Emulator() as emu:`` then talk HTTP to ``emu.url``; as a process:
``python -m tests.kubeemu --listen 127.0.0.1:8080 [--state FILE]``.
"""
from .resources import DEFAULT_RESOURCES, Registry, ResourceInfo
from .server import Emulator
from .store import ApiError, Store

__all__ = ["ApiError", "DEFAULT_RESOURCES", "Emulator", "Registry", "ResourceInfo", "Store"]
