"""proxyds: data proxies for fast neural-architecture search (Park, 2019, Algorithm 1)."""

__version__ = "0.1.0"
