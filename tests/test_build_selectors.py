"""Build selectors: the manifest's importance is exactly the chosen selector's weights, the
scoring pass's true-label probability and entropy are right, and the recommended proxy
training recipe is recorded in proxy.json."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from proxyds.pipeline.build import build
from proxyds.config import BuildConfig
from proxyds.selection.importance import DEFAULT_WEIGHTS
from proxyds.pipeline.probes import score_batch
from proxyds.recipe import RECOMMENDED
from proxyds.selection.selectors import DEFAULT_SELECTOR, Scores, class_uniform, entropy_bin_weights, list_selectors, select_weights

from helpers import tiny_config


@pytest.fixture(scope="module")
def builds(tiny_mnist1d, tmp_path_factory):
    """The same probes (shared workdir) with the paper's selector, entropy and the default one."""
    root = tmp_path_factory.mktemp("sel")
    out = {}
    for name in ("probe", "entropy", DEFAULT_SELECTOR):
        cfg = tiny_config(f"hf:{tiny_mnist1d}", root / name, selector=name, workdir=root / "work", probe_epochs=8, lr=1e-2)
        out[name] = (build(cfg), pq.read_table(root / name / "manifest.parquet").to_pandas())
    return out


def test_score_batch_true_prob_and_entropy_by_hand():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 3))
    model.forward_features, model.forward_head = (lambda x: x.flatten(1)), model[1]
    x, y = torch.randn(5, 1, 8), np.array([0, 2, 1, 1, 0])
    preds, feats, tp, ent = score_batch([model.eval()], x, feature_model=0, device=torch.device("cpu"), labels=y)
    p = torch.softmax(model[1](x.flatten(1)), 1).detach().numpy()
    np.testing.assert_allclose(tp[0], p[np.arange(5), y], rtol=1e-5)
    np.testing.assert_allclose(ent[0], -(p * np.log(p)).sum(1), rtol=1e-5)
    assert preds.shape == (1, 5) and feats.shape == (5, 8)


def test_default_build_is_a_random_subset_and_says_why(builds):
    result, m = builds[DEFAULT_SELECTOR]
    assert result.summary["selector"] == DEFAULT_SELECTOR == "random"
    assert m["importance"].eq(1.0).all() and m["selected"].sum() == 48
    card = (result.out / "README.md").read_text()
    assert "**Why `random`**: it is proxyds' default because in proxyds' measurements selection by importance " \
           "did not beat a random subset" in card


def test_entropy_build_importance_is_the_entropy_weights_of_the_upper_probe(builds):
    result, m = builds["entropy"]
    assert result.summary["selector"] == "entropy"
    assert m["importance"].gt(0).all() and math.isclose(m["keep_prob"].sum(), 1.0, rel_tol=1e-9)
    # entropy-bin weights: a bin of c examples has weight (max_count - c + 1) / c each, so the
    # examples sharing a weight w (one bin, or several of equal count) sum to a whole number >= 1
    for w, n in m["importance"].value_counts().items():
        assert n * w == pytest.approx(round(n * w), abs=1e-6) and round(n * w) >= 1
    assert m["importance"].nunique() > 1 and m["selected"].sum() == 48


def test_probe_selector_keeps_the_papers_case_importance(builds):
    _, m = builds["probe"]
    # two probes: an example's importance is the case weight of its nearest reference example
    np.testing.assert_allclose(m["importance"], np.asarray(DEFAULT_WEIGHTS)[m["case"] - 1])
    # both builds share probes and the nearest-reference map, so their cases agree
    assert (builds["probe"][1]["case"] == builds[DEFAULT_SELECTOR][1]["case"]).all()


def test_recommended_training_is_in_proxy_json_and_the_summary(builds):
    result, _ = builds[DEFAULT_SELECTOR]
    record = json.loads((result.out / "proxy.json").read_text())
    training = record["summary"]["proxy_training"]
    assert training["recipe"] == RECOMMENDED.to_json()
    assert training["text"] == RECOMMENDED.describe()
    assert record["config"]["selector"] == DEFAULT_SELECTOR


def test_selector_weights_by_hand():
    y = np.array([0, 0, 0, 1])
    tp = np.array([[0.5, 1.0, 0.0, 0.2], [0.5, 0.0, 1.0, 0.4]])
    ent = np.array([[0.1, 0.2, 0.3, 0.4], [1e-3, 0.5, 1.0, 2.0]])
    scores = Scores(y, tp, ent, np.array([2.0, 1.0, 6.0, 1.0]), 2)
    np.testing.assert_allclose(select_weights("random", scores), 1.0)
    np.testing.assert_allclose(select_weights("class-balanced", scores), [1 / 3, 1 / 3, 1 / 3, 1])
    np.testing.assert_allclose(select_weights("easy-soft", scores), [1 / 6, 1 / 6, 1 / 6, 0.3])
    np.testing.assert_allclose(select_weights("entropy", scores), entropy_bin_weights(ent[1]))
    np.testing.assert_allclose(select_weights("probe", scores), [2.0, 1.0, 6.0, 1.0])
    np.testing.assert_allclose(class_uniform(y, np.array([True, False, True, True])), [0.5, 0, 0.5, 1])


def test_scores_refuse_mismatched_shapes():
    y, s = np.zeros(3, int), np.ones((2, 3))
    with pytest.raises(ValueError, match="true_prob"):
        Scores(y, np.ones((2, 4)), s, np.ones(3), 2)
    with pytest.raises(ValueError, match="importance"):
        Scores(y, s, s, np.ones(4), 2)


def test_unknown_build_selector_is_refused_by_name_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"unknown selector 'nearest'; known: .*entropy"):
        build(BuildConfig(dataset="mnist1d", out=tmp_path / "o", ratio=0.1, selector="nearest",
                          workdir=tmp_path / "work"))
    assert not (tmp_path / "work").exists()
    with pytest.raises(ValueError, match="selector must be"):
        BuildConfig(dataset="mnist1d", out=tmp_path / "o", ratio=0.1, selector="two words")
    assert DEFAULT_SELECTOR in list_selectors()


def test_user_selector_module_attr_drives_the_build(tiny_mnist1d, tmp_path):
    cfg = tiny_config(f"hf:{tiny_mnist1d}", tmp_path / "out", selector="plugins.tiny_selector:favour_class_zero")
    result = build(cfg)
    m = pq.read_table(tmp_path / "out" / "manifest.parquet").to_pandas()
    ok = m["status"] == "ok"
    np.testing.assert_allclose(m.loc[ok, "importance"], np.where(m.loc[ok, "label"] == 0, 3.0, 1.0))
    assert result.summary["selector"] == "plugins.tiny_selector:favour_class_zero"
