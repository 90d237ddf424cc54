"""BuildConfig.to_dict/from_dict, ``proxyds build --config FILE`` (YAML, JSON, an output's
proxy.json; the command line overrides the file), and a rebuild from an output's own record
that gives the same bytes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from proxyds.cli import _parser, main
from proxyds.cli_build import MissingSetting, build_config
from proxyds.config import BuildConfig, read_config_file


def _full(tmp_path: Path) -> BuildConfig:
    return BuildConfig(dataset="hf:data", out=tmp_path / "proxy", ratio=0.25, seed=3, format="wds", reference="hf:ref",
                       weights=(1.0, 0.5, 4.0, 0.0), label_reduction="7", label_intermediate=0.5, workdir=tmp_path / "w",
                       probe_checkpoints=(("upper", "u.pt"), ("lower", "l.pt")), lr=1e-5, extra={"note": "hi"})


def test_from_dict_inverts_to_dict_through_json_and_yaml(tmp_path):
    import yaml

    cfg = _full(tmp_path)
    for text in (json.dumps(cfg.to_dict()), yaml.safe_dump(cfg.to_dict())):
        path = tmp_path / "c.yaml"
        path.write_text(text)
        back = BuildConfig.from_file(path)
        assert back == cfg and back.extra == cfg.extra
        assert isinstance(back.out, Path) and isinstance(back.weights, tuple) and back.probe_checkpoints == (
            ("upper", "u.pt"), ("lower", "l.pt"))


def test_from_dict_takes_hand_written_forms():
    cfg = BuildConfig.from_dict({"dataset": "mnist1d", "out": "o", "ratio": "5e-2", "lr": "1e-3",
                                 "weights": [1, 1, 4, 1], "probe_checkpoints": {"upper": "u.pt"}})
    assert (cfg.ratio, cfg.lr, cfg.weights) == (0.05, 0.001, (1.0, 1.0, 4.0, 1.0))
    assert cfg.probe_checkpoints == (("upper", "u.pt"),)
    assert BuildConfig.from_dict({"dataset": "m", "out": "o", "ratio": 0.1,
                                  "probe_checkpoints": ["upper=u.pt"]}).probe_checkpoints == (("upper", "u.pt"),)


@pytest.mark.parametrize("d,message", [
    ({"dataset": "m", "out": "o", "ratio": 0.1, "ratoi": 0.2, "seeds": 1},
     "unknown build settings ratoi, seeds; valid settings: dataset, out, ratio, seed,"),
    ({"dataset": "m", "ratio": 0.1}, "a build config needs out"),
    ({"dataset": "m", "out": "o", "ratio": "ten percent"}, "ratio must be a number (got 'ten percent')"),
    ({"dataset": "m", "out": "o", "ratio": 0.1, "seed": -1}, "seed must be a non-negative integer"),
    ([("dataset", "m")], "a build config must be a mapping"),
])
def test_from_dict_rejects_with_a_message_naming_the_problem(d, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BuildConfig.from_dict(d)


@pytest.mark.parametrize("text,message", [("ratio: [unclosed", "is not valid YAML or JSON"),
                                          ("- a\n- b\n", "must hold a mapping of build settings")])
def test_bad_config_files(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_config_file(path)


def _settings(argv: list[str]) -> BuildConfig:
    full = ["build", *argv]
    args = _parser().parse_args(full)
    return build_config(args, set(vars(_parser(suppress_defaults=True).parse_args(full))))


def test_the_command_line_overrides_the_file_and_defaults_do_not(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dataset: mnist1d\nratio: 0.2\nseed: 3\nbatch_size: 32\nout: from-file\n")
    cfg = _settings(["--config", str(path), "--seed", "5", "--out", str(tmp_path / "o")])
    assert (cfg.dataset, cfg.ratio, cfg.seed, cfg.batch_size, cfg.out) == ("mnist1d", 0.2, 5, 32, tmp_path / "o")
    assert _settings(["--config", str(path), "cifar10"]).dataset == "cifar10"  # the positional overrides too
    assert _settings(["mnist1d", "--ratio", "0.3", "--out", "o"]).batch_size == 128  # no file: every default


def test_a_setting_missing_from_file_and_command_line_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps({"format_version": 1, "config": {"dataset": "mnist1d", "ratio": 0.1}}))
    with pytest.raises(MissingSetting, match="--out"):
        _settings(["--config", str(path)])
    assert main(["build", "--config", str(path)]) == 2
    assert "required: --out" in capsys.readouterr().err
    assert main(["build", "--ratio", "0.1"]) == 2
    assert "required: DATASET, --out" in capsys.readouterr().err


def test_unknown_key_in_a_config_file_is_exit_1(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("dataset: mnist1d\nratio: 0.1\nout: o\nepochs: 3\n")
    assert main(["build", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "unknown build setting epochs; valid settings: dataset," in err and "probe_epochs" in err


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _rebuild(parquet_proxy, tmp_path, capsys, work: Path) -> Path:
    out = tmp_path / "again"
    argv = ["build", "--config", str(parquet_proxy.out / "proxy.json"), "--out", str(out), "--workdir", str(work)]
    assert main(argv) == 0, capsys.readouterr().err
    assert "proxy written to" in capsys.readouterr().out
    return out


def test_a_rebuild_from_proxy_json_is_byte_identical(parquet_proxy, tmp_path, capsys):
    """The record and the trained probes (copied; no stage cache): every stage after training
    runs again from the record's settings and writes the same bytes."""
    import shutil

    shutil.copytree(parquet_proxy.workdir / "probes", tmp_path / "work" / "probes")
    out = _rebuild(parquet_proxy, tmp_path, capsys, tmp_path / "work")
    assert _digests(out) == _digests(parquet_proxy.out)
    original = BuildConfig.from_file(parquet_proxy.out / "proxy.json", out=out)
    assert BuildConfig.from_file(out / "proxy.json", out=out) == original


@pytest.mark.slow
def test_a_rebuild_from_proxy_json_alone_is_byte_identical(parquet_proxy, tmp_path, capsys):
    """Nothing shared but the record: a fresh work dir, so the probes are trained again too."""
    out = _rebuild(parquet_proxy, tmp_path, capsys, tmp_path / "fresh-work")
    assert _digests(out) == _digests(parquet_proxy.out)


def test_the_package_ships_py_typed():
    """Type checkers read proxyds' annotations (PEP 561): the marker exists and is package data."""
    root = Path(__file__).resolve().parents[1]
    assert (root / "proxyds" / "py.typed").is_file()
    pyproject = (root / "pyproject.toml").read_text()
    assert '[tool.setuptools.package-data]\nproxyds = ["py.typed"]' in pyproject
