"""Producers of store events: files (``files``); the API reflector lives in ``speakerd.kube``."""
