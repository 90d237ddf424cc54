"""``proxyds build --dry-run``: the plan, from the build's own plan and scan code, with nothing
trained and nothing written (no OUT, nothing in the work dir)."""

from __future__ import annotations

import json

import pytest

from helpers import tiny_config, tree_digest
from proxyds.cli import main
from proxyds.pipeline.dryrun import TRAINING_MACS_FACTOR, plan_build
from proxyds.spaces import get_space


def _argv(src, tmp_path, *extra):
    return ["build", f"hf:{src}", "--space", "resnet1d", "--input-column", "x", "--ratio", "0.1", "--out",
            str(tmp_path / "proxy"), "--workdir", str(tmp_path / "work"), "--probe-epochs", "3", "--device", "cpu",
            "--rows-per-shard", "20", "--dry-run", *extra]


def test_dry_run_trains_nothing_writes_nothing_and_prints_the_counts(tiny_mnist1d, tmp_path, capsys):
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(_argv(tiny_mnist1d, tmp_path)) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no OUT, no work dir, no probe checkpoint
    assert "480 examples in 3 shards" in printed and "120 examples in 1 shard" in printed
    assert "48 train examples selected" in printed
    space = get_space("resnet1d")
    lower, upper = space.probes(2, 10)
    assert f"MACs {space.macs(lower, 10):>14,}" in printed and f"MACs {space.macs(upper, 10):>14,}" in printed
    assert "label reduction (auto): keeps all 10 classes" in printed
    assert "train: 48 rows in 8 parquet shards" in printed and "test: 120 rows in 8 parquet shards" in printed


def test_the_plan_counts_compute_as_probe_macs_x_examples_x_epochs(tiny_mnist1d, tmp_path):
    p = plan_build(tiny_config(f"hf:{tiny_mnist1d}", tmp_path / "proxy", probe_epochs=3, format="wds"))
    json.dumps(p)  # a plain dict, for scripts
    macs = [probe["macs"] for probe in p["probes"]]
    assert [probe["role"] for probe in p["probes"]] == ["lower", "upper"]
    c = p["compute"]
    assert c["training_forward_macs"] == sum(macs) * 480 * 3
    assert c["training_macs"] == TRAINING_MACS_FACTOR * c["training_forward_macs"]
    assert c["scoring_macs"] == sum(macs) * (480 + 120)
    assert c["training_steps"] == 8 * 3 * 2  # ceil(480 / 64) steps per epoch, 3 epochs, 2 probes
    assert p["selected"] == 48 and p["splits"]["train"]["usable"] == 480 and p["splits"]["reference"]["usable"] == 120
    assert p["output"]["splits"]["train"] == {"rows": 48, "files": 8, "exact": True}  # wds: a multiple of 8 shards
    assert not (tmp_path / "proxy").exists() and not (tmp_path / "work").exists()


def test_label_reduction_decision_and_a_given_checkpoint(parquet_proxy, tmp_path):
    """N classes: the plan keeps N (which ones the probes decide); a --probe checkpoint is loaded
    (shape-checked), not counted as training."""
    ckpt = next((parquet_proxy.workdir / "probes").glob("resnet1d-B32-K5-M4-*.pt"))
    cfg = tiny_config(f"hf:{parquet_proxy.src}", tmp_path / "proxy", label_reduction="5",
                      probe_checkpoints=(("upper", str(ckpt)),), workdir=tmp_path / "work")
    p = plan_build(cfg)
    r = p["label_reduction"]
    assert (r["applied"], r["kept"], r["classes"]) == (True, 5, 10)
    assert r["decision"].startswith("keeps 5 of 10 classes")
    assert p["compute"]["probes_trained"] == ["lower"]
    assert p["output"]["splits"]["test"]["exact"] is False  # only the kept classes' reference examples


def test_a_checkpoint_that_does_not_fit_fails_the_dry_run(parquet_proxy, tmp_path):
    lower = next((parquet_proxy.workdir / "probes").glob("resnet1d-B8-K3-M2-*.pt"))
    cfg = tiny_config(f"hf:{parquet_proxy.src}", tmp_path / "proxy", probe_checkpoints=(("upper", str(lower)),))
    with pytest.raises(ValueError, match="does not fit the upper probe"):
        plan_build(cfg)


def test_the_plan_is_what_the_build_did_and_the_work_dir_is_not_changed(parquet_proxy, tmp_path):
    """Same config as the shared build (its cached scan reused, read-only): the planned counts,
    probes and shards are the ones that build wrote."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(parquet_proxy.workdir, work)
    before = tree_digest(work)
    p = plan_build(tiny_config(f"hf:{parquet_proxy.src}", tmp_path / "proxy", workdir=work))
    assert tree_digest(work) == before
    record = json.loads((parquet_proxy.out / "proxy.json").read_text())
    s = record["summary"]
    assert (p["selected"], p["splits"]["train"]["examples"], p["splits"]["reference"]["usable"]) == \
        (s["num_selected"], s["num_train"], s["num_reference"])
    assert {q["role"]: (q["config"], q["macs"]) for q in p["probes"]} == \
        {role: (q["config"], q["macs"]) for role, q in s["probes"].items()}
    for split, planned in p["output"]["splits"].items():
        assert (planned["rows"], planned["files"]) == (record["splits"][split]["rows"],
                                                       len(record["splits"][split]["files"])), split


def test_dry_run_refuses_an_existing_out_as_the_build_would(tiny_mnist1d, tmp_path, capsys):
    (tmp_path / "proxy").mkdir()
    assert main(_argv(tiny_mnist1d, tmp_path)) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
