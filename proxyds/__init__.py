"""proxyds: data proxies for fast neural-architecture search (Park, 2019, Algorithm 1)."""

__version__ = "0.1.0"

__all__ = ["ManifestSampler", "select_manifest"]


def __getattr__(name: str):
    """Deferred so that ``import proxyds`` (the CLI) does not load torch until the sampler is used."""
    if name in __all__:
        from . import sampler

        return getattr(sampler, name)
    raise AttributeError(f"module 'proxyds' has no attribute {name!r}")
