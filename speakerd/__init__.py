"""speakerd: a BGP speaker for LoadBalancer service IPs."""
__version__ = "0.1.0"
