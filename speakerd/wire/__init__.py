"""BGP wire codec (sans-IO): framing, messages, UPDATE attributes and NLRI, the UPDATE builder.

Modules: ``constants``, ``errors``, ``capabilities``, ``messages``, ``update``,
``attributes``, ``nlri``, ``builder``, ``framing``.  Import from them directly.
"""
