"""The cluster's address assignment: MetalLB's controller rules (``allocator``), Kubernetes
objects as the allocator reads them (``objects``), and the leader-elected loop that
publishes the assignments (``loop``)."""
