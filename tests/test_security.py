"""Safe decoding by default: no pickle anywhere, weights-only checkpoint loading, no remote code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "proxyds"
SOURCES = sorted(PACKAGE.rglob("*.py"))

FORBIDDEN = {
    r"allow_pickle\s*=\s*True": "numpy arrays must load with allow_pickle=False",
    r"\bpickle\.loads?\(": "no pickle decoding of input or cache data",
    r"weights_only\s*=\s*False": "checkpoints load with weights_only=True",
    r"trust_remote_code": "datasets' remote code is never enabled",
    r"WebDataset\(.*\)\s*\.decode\(": "webdataset decoders (which may unpickle .pyd/.pickle fields) are never enabled",
}


@pytest.mark.parametrize("pattern,why", FORBIDDEN.items())
def test_no_unsafe_decoding(pattern, why):
    hits = [f"{p.relative_to(PACKAGE)}:{i}" for p in SOURCES
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if re.search(pattern, line.split("#", 1)[0])]
    assert not hits, f"{why}: {hits}"


def test_every_torch_load_is_weights_only():
    for p in SOURCES:
        for i, line in enumerate(p.read_text().splitlines(), 1):
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{p.relative_to(PACKAGE)}:{i}: torch.load without weights_only=True"


def test_pickled_checkpoint_is_refused(tmp_path):
    """A checkpoint carrying an arbitrary pickled object fails to load instead of running it."""
    import pickle

    import torch

    from proxyds.pipeline.score import load_probe
    from proxyds.pipeline.scan import BadInput
    from proxyds.spaces import get_space

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"x": Evil()}, f)
    with pytest.raises(BadInput, match="does not fit"):
        load_probe(get_space("resnet1d").build("B8-K3-M2", 10), path, "lower probe")
    assert torch.load  # the module itself stays importable
