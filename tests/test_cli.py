"""Every CLI command runs in-process; errors come back as exit code 2 with a message."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from proxyds.cli import main


def test_build_smoke(tiny_mnist1d, tmp_path, capsys):
    out = tmp_path / "proxy"
    code = main(["build", f"hf:{tiny_mnist1d}", "--space", "resnet1d", "--input-column", "x", "--ratio", "0.25",
                 "--out", str(out), "--probe-epochs", "1", "--pca-components", "8", "--workdir", str(tmp_path / "w"),
                 "--weights", "1,1,4,1", "--device", "cpu"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "selected 120" in printed and "probe lower" in printed and "seconds per stage" in printed
    assert pq.read_table(out / "manifest.parquet")["selected"].to_numpy().sum() == 120


@pytest.mark.parametrize("argv,message", [
    (["--ratio", "1.5"], "ratio must be in the open interval (0, 1)"),
    (["--ratio", "0"], "ratio must be in the open interval (0, 1)"),
    (["--ratio", "0.1", "--weights", "1,2,3"], "weights must be 4 numbers"),
])
def test_build_bad_arguments_exit_2(tiny_mnist1d, tmp_path, capsys, argv, message):
    code = main(["build", f"hf:{tiny_mnist1d}", "--space", "resnet1d", "--input-column", "x",
                 "--out", str(tmp_path / "o"), *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_unknown_preset_and_space_are_listed(tmp_path, capsys):
    assert main(["build", "nope", "--ratio", "0.1", "--out", str(tmp_path / "o")]) == 2
    assert "known presets: cifar10, cifar100, imagenet, mnist1d" in capsys.readouterr().err


def test_spaces_and_datasets_list(capsys):
    assert main(["spaces"]) == 0
    out = capsys.readouterr().out
    assert "resnet1d" in out and "resnet20" in out and "B32-K5-M4" in out
    assert main(["datasets"]) == 0
    assert "mnist1d" in capsys.readouterr().out
