"""Signal checks on hand-built arrays: probes at chance fail, probes above it pass, flat weights."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from proxyds.config import BuildConfig
from proxyds.selection.signal import SignalError, check_probe_signal, flat_weights, require_probe_signal


def _correct(labels, hits_per_probe, seed=0):
    """(n, k) booleans: probe j right on exactly hits_per_probe[j] examples, at seeded positions."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(labels), len(hits_per_probe)), dtype=bool)
    for j, hits in enumerate(hits_per_probe):
        out[rng.permutation(len(labels))[:hits], j] = True
    return out


def test_a_probe_at_exactly_chance_fails_and_a_better_one_passes():
    labels = np.arange(1000) % 10  # balanced: chance 10%
    lower, upper = check_probe_signal(_correct(labels, [100, 360]), labels, ["lower", "upper"])
    assert lower.chance == upper.chance == 0.1
    assert not lower.ok and lower.accuracy == 0.1 and "not above chance" in lower.why and lower.p_value > 0.4
    assert upper.ok and upper.why == "" and upper.p_value < 1e-50
    msg = lower.message()
    assert "probe 'lower' scored 10.00%" in msg and "chance (majority class) is 10.00%" in msg
    assert "--probe-epochs" in msg and "--probe lower=PATH --probe upper=PATH" in msg and "--allow-weak-probes" in msg


def test_chance_is_the_majority_class_rate():
    labels = np.r_[np.zeros(700, dtype=int), np.arange(300) % 9 + 1]  # 70% class 0
    (probe,) = check_probe_signal(_correct(labels, [600]), labels, ["upper"])  # 60%: far above 1/10, below 70%
    assert probe.chance == 0.7 and not probe.ok


def test_the_margin_rejects_a_significant_but_negligible_gain():
    labels = np.arange(100_000) % 10
    (probe,) = check_probe_signal(_correct(labels, [10_500]), labels, ["lower"])  # 10.5%: p ~ 1e-7
    assert probe.p_value < 1e-3 and not probe.ok and "under the required margin" in probe.why
    (probe,) = check_probe_signal(_correct(labels, [10_500]), labels, ["lower"], margin=0.0)
    assert probe.ok


def test_tiny_reference_sets():
    labels = np.array([0, 1])  # 2 examples, chance 50%: even a perfect probe cannot reach p <= 1e-3
    (probe,) = check_probe_signal(np.ones((2, 1), dtype=bool), labels, ["upper"])
    assert not probe.ok and "too few for even a perfect probe" in probe.why and "needs >= 10" in probe.why
    labels = np.arange(5)  # 5 distinct classes, chance 20%: 0.2 ** 5 = 3.2e-4, a perfect probe passes
    assert check_probe_signal(np.ones((5, 1), dtype=bool), labels, ["upper"])[0].ok
    labels = np.zeros(50, dtype=int)  # a single class: chance is 100%
    (probe,) = check_probe_signal(np.ones((50, 1), dtype=bool), labels, ["upper"])
    assert not probe.ok and "single class" in probe.why
    with pytest.raises(ValueError, match="empty"):
        check_probe_signal(np.zeros((0, 2), dtype=bool), np.zeros(0, dtype=int), ["lower", "upper"])


def test_bad_input_is_named():
    labels = np.arange(10) % 2
    with pytest.raises(ValueError, match="2-D boolean"):
        check_probe_signal(np.ones((10, 2)), labels, ["a", "b"])
    with pytest.raises(ValueError, match="labels must be 10 non-negative"):
        check_probe_signal(np.ones((10, 2), dtype=bool), labels[:9], ["a", "b"])
    with pytest.raises(ValueError, match="name the 2 probes"):
        check_probe_signal(np.ones((10, 2), dtype=bool), labels, ["a"])
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\) \(got 0\)"):
        check_probe_signal(np.ones((10, 2), dtype=bool), labels, ["a", "b"], alpha=0)


def test_require_probe_signal_stops_or_warns(caplog):
    labels = np.arange(1000) % 10
    checks = check_probe_signal(_correct(labels, [100, 360]), labels, ["lower", "upper"])
    with pytest.raises(SignalError, match=r"probe 'lower' scored 10\.00%.*chance \(majority class\) is 10\.00%") as e:
        require_probe_signal(checks)
    assert isinstance(e.value, ValueError) and "'upper'" not in str(e.value)
    with caplog.at_level(logging.WARNING, logger="proxyds.selection.signal"):
        failed = require_probe_signal(checks, allow_weak=True)
    assert [c.probe for c in failed] == ["lower"] and "WEAK PROBE" in caplog.text
    assert require_probe_signal(checks[1:]) == []


def test_flat_weights():
    assert flat_weights(np.ones(100)) and flat_weights(np.zeros(5)) and flat_weights(np.array([3.0]))
    assert flat_weights(np.full(1000, 0.1) * (1 + 1e-15 * (np.arange(1000) % 2)))  # rounding noise only
    assert not flat_weights(np.array([1.0, 1.001]))
    assert not flat_weights(np.random.default_rng(0).exponential(size=100))
    with pytest.raises(ValueError, match="finite"):
        flat_weights(np.array([1.0, np.nan]))


def test_allow_weak_probes_is_a_validated_config_field():
    assert BuildConfig(dataset="x", out=Path("o"), ratio=0.1).allow_weak_probes is False
    assert BuildConfig(dataset="x", out=Path("o"), ratio=0.1, allow_weak_probes=True).allow_weak_probes
    with pytest.raises(ValueError, match=r"allow_weak_probes must be True or False \(got 'yes'\)"):
        BuildConfig(dataset="x", out=Path("o"), ratio=0.1, allow_weak_probes="yes")


def test_a_build_whose_probes_are_at_chance_stops_and_says_what_to_do(parquet_proxy, tmp_path):
    """One probe epoch on 480 examples: both probes sit at chance on the reference split.
    ``parquet_proxy`` is such a build, allowed to go on; its probes are reused here."""
    import shutil

    from helpers import tiny_config

    from proxyds.pipeline.build import build

    shutil.copytree(parquet_proxy.workdir, tmp_path / "work")
    with pytest.raises(SignalError) as err:
        build(tiny_config(f"hf:{parquet_proxy.src}", tmp_path / "out", allow_weak_probes=False))
    text = str(err.value)
    assert "probe (B8-K3-M2)" in text and "chance (majority class) is" in text and "%" in text
    assert "--probe-epochs" in text and "--allow-weak-probes" in text and not (tmp_path / "out").exists()
    weak = parquet_proxy.result.summary["weak_probes"]  # allowed (tiny_config): it went on, and says so
    assert weak and "not above chance" in weak[0]
