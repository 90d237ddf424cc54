"""The dataset card: deterministic README.md whose configs load the output's splits."""

from __future__ import annotations

import pytest
import yaml

from proxyds.sinks import write_card


def test_card_is_deterministic_and_validated(tmp_path):
    kw = dict(data_files={"train": ["data/train-*"], "test": ["data/test-*", "extra/test-*"]}, summary_md="# Proxy\n\n10%")
    p = write_card(tmp_path / "a", **kw)
    q = write_card(tmp_path / "b", **kw)
    assert p.name == "README.md" and p.read_bytes() == q.read_bytes()
    text = p.read_text()
    assert text.startswith("---\n") and text.endswith("# Proxy\n\n10%\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["configs"] == [
        {
            "config_name": "default",
            "data_files": [
                {"split": "train", "path": "data/train-*"},
                {"split": "test", "path": ["data/test-*", "extra/test-*"]},
            ],
        }
    ]
    assert meta["pretty_name"] == "proxyds proxy" and meta["tags"] == ["proxyds", "data-proxy"]
    for bad in ("../data/*", "/abs/*", "https://x/*"):
        with pytest.raises(ValueError, match="pattern"):
            write_card(tmp_path, data_files={"train": [bad]}, summary_md="")
    with pytest.raises(ValueError, match="list of patterns"):
        write_card(tmp_path, data_files={"train": "data/train-*"}, summary_md="")
