"""proxyds: data proxies for fast neural-architecture search (Park, 2019, Algorithm 1).

What users call, loaded lazily so that ``import proxyds`` (and ``proxyds --help``) stays cheap:
``build`` + ``BuildConfig`` (make a proxy), ``verify`` (check one), ``evaluate`` +
``EvaluateConfig`` (measure whether proxies keep a search space's ranking),
``ManifestSampler`` and ``select_manifest`` (train on the original data through a manifest).
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "build": "proxyds.pipeline.build",
    "BuildResult": "proxyds.pipeline.build",
    "BuildConfig": "proxyds.config",
    "verify": "proxyds.verifier",
    "VerifyReport": "proxyds.verifier",
    "evaluate": "proxyds.harness.evaluate",
    "EvaluateConfig": "proxyds.harness.evaluate",
    "ManifestSampler": "proxyds.sampler",
    "select_manifest": "proxyds.sampler",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'proxyds' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
