"""``proxyds verify``: check an output's files, manifest, shards and readers against each other."""

from proxyds.verifier.check import verify
from proxyds.verifier.report import VerifyReport

__all__ = ["verify", "VerifyReport"]
