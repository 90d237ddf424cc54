"""BuildConfig: validated once at construction; errors name the field and show the value;
to_dict is JSON-ready and round-trips."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from proxyds.config import BuildConfig
from proxyds.selection.importance import DEFAULT_WEIGHTS
from proxyds.pipeline.probes import PROBE_HPARAMS


def _config(tmp_path: Path, **overrides) -> BuildConfig:
    fields = dict(dataset="mnist1d", out=tmp_path / "proxy", ratio=0.1)
    fields.update(overrides)
    return BuildConfig(**fields)


def test_defaults(tmp_path):
    cfg = _config(tmp_path)
    assert cfg.ratio == 0.1
    assert cfg.out == tmp_path / "proxy"
    assert cfg.weights == DEFAULT_WEIGHTS
    assert cfg.probe_epochs == PROBE_HPARAMS["epochs"]
    assert cfg.batch_size == PROBE_HPARAMS["batch_size"]
    assert cfg.neighbors == "hnsw"
    assert cfg.format is None and cfg.workdir is None


def test_normalises_types(tmp_path):
    cfg = _config(tmp_path, out=str(tmp_path / "o"), workdir=str(tmp_path / "w"), weights=[1, 2, 3, 4], ratio=0.5)
    assert isinstance(cfg.out, Path) and cfg.out == tmp_path / "o"
    assert isinstance(cfg.workdir, Path) and cfg.workdir == tmp_path / "w"
    assert cfg.weights == (1.0, 2.0, 3.0, 4.0)
    assert all(isinstance(w, float) for w in cfg.weights)
    assert isinstance(cfg.ratio, float)


def test_frozen(tmp_path):
    cfg = _config(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.ratio = 0.2


@pytest.mark.parametrize("ratio", [0, 1, -0.1, 1.5, math.nan, math.inf, "abc", "0.1", None, True])
def test_bad_ratio(tmp_path, ratio):
    with pytest.raises(ValueError, match=r"^ratio must be in the open interval") as excinfo:
        _config(tmp_path, ratio=ratio)
    assert f"(got {ratio!r})" in str(excinfo.value)


@pytest.mark.parametrize(
    "field,value",
    [
        ("dataset", ""),
        ("dataset", None),
        ("format", "csv"),
        ("format", "PARQUET"),
        ("neighbors", "annoy"),
        ("neighbors", None),
        ("weights", (1.0, 2.0, 3.0)),
        ("weights", (2.0, -1.0, 6.0, 1.0)),
        ("weights", (2.0, math.nan, 6.0, 1.0)),
        ("weights", (0.0, 0.0, 0.0, 0.0)),
        ("probe_epochs", 0),
        ("probe_epochs", -1),
        ("probe_epochs", 1.5),
        ("probe_epochs", True),
        ("batch_size", 0),
        ("pca_components", 0),
        ("rows_per_shard", 0),
        ("seed", -1),
        ("seed", 1.0),
        ("seed", False),
        ("probe_seed", -1),
        ("lr", 0),
        ("lr", -1e-3),
        ("lr", math.nan),
        ("lr", math.inf),
        ("lr", "fast"),
    ],
)
def test_bad_field_names_field_and_value(tmp_path, field, value):
    with pytest.raises(ValueError, match=rf"^{field} ") as excinfo:
        _config(tmp_path, **{field: value})
    assert repr(value) in str(excinfo.value)


@pytest.mark.parametrize("fmt", [None, "parquet", "wds"])
@pytest.mark.parametrize("neighbors", ["hnsw", "exact"])
def test_valid_choices(tmp_path, fmt, neighbors):
    cfg = _config(tmp_path, format=fmt, neighbors=neighbors)
    assert (cfg.format, cfg.neighbors) == (fmt, neighbors)


def test_seed_zero_is_valid(tmp_path):
    assert _config(tmp_path, seed=0, probe_seed=0).seed == 0


def _full_config(tmp_path: Path) -> BuildConfig:
    return _config(tmp_path, ratio=0.25, seed=3, format="wds", data=str(tmp_path / "data"), reference="hf:ref",
                   train_split="train", reference_split="validation", label_column="label", input_column="x",
                   key_column="id", space="resnet1d", weights=(1.0, 0.5, 4.0, 0.0), probe_epochs=2, probe_seed=9,
                   batch_size=32, lr=0.01, pca_components=16, neighbors="exact", rows_per_shard=100,
                   workdir=tmp_path / "work", overwrite=True, device="cpu", extra={"note": "hi"})


@pytest.mark.parametrize("make", [_config, _full_config])
def test_to_dict_is_json_and_round_trips(tmp_path, make):
    cfg = make(tmp_path)
    d = cfg.to_dict()
    assert set(d) == {f.name for f in dataclasses.fields(BuildConfig)}
    text = json.dumps(d)  # raises if anything is not JSON-serialisable
    back = BuildConfig(**json.loads(text))
    assert back == cfg
    for f in dataclasses.fields(BuildConfig):
        assert getattr(back, f.name) == getattr(cfg, f.name), f.name
    assert back.to_dict() == d


def test_to_dict_values(tmp_path):
    d = _full_config(tmp_path).to_dict()
    assert d["out"] == str(tmp_path / "proxy")
    assert d["workdir"] == str(tmp_path / "work")
    assert d["weights"] == [1.0, 0.5, 4.0, 0.0]
    assert d["ratio"] == 0.25 and d["neighbors"] == "exact" and d["format"] == "wds"
    assert _config(tmp_path).to_dict()["workdir"] is None


def test_replace_revalidates(tmp_path):
    cfg = _config(tmp_path)
    assert dataclasses.replace(cfg, ratio=0.3).ratio == 0.3
    with pytest.raises(ValueError, match="ratio"):
        dataclasses.replace(cfg, ratio=2.0)


def test_every_build_setting_is_a_cli_option_with_the_configs_default(tmp_path):
    """The CLI is generated from BuildConfig: a new field is an option, with the same default."""
    import dataclasses

    from proxyds.cli import _parser

    args = _parser().parse_args(["build", "mnist1d", "--ratio", "0.1", "--out", str(tmp_path / "o")])
    for f in dataclasses.fields(BuildConfig):
        if f.name == "extra":
            continue
        assert hasattr(args, f.name), f"BuildConfig.{f.name} has no command-line option"
        if f.default is not dataclasses.MISSING:
            assert BuildConfig(**{"dataset": "mnist1d", "out": "o", "ratio": 0.1, f.name: getattr(args, f.name)}) \
                == BuildConfig(dataset="mnist1d", out="o", ratio=0.1), f.name
