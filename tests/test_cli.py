"""Every CLI command runs in-process; a user error comes back as exit code 1 with one line, a usage
error as 2, a bug as 3 with its traceback."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from proxyds.cli import main


def test_build_smoke(tiny_mnist1d, tmp_path, capsys):
    out = tmp_path / "proxy"
    code = main(["build", f"hf:{tiny_mnist1d}", "--space", "resnet1d", "--input-column", "x", "--ratio", "0.25",
                 "--out", str(out), "--probe-epochs", "1", "--pca-components", "8", "--workdir", str(tmp_path / "w"),
                 "--weights", "1,1,4,1", "--device", "cpu", "--allow-weak-probes"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "selected 120" in printed and "probe lower" in printed and "seconds per stage" in printed
    assert pq.read_table(out / "manifest.parquet")["selected"].to_numpy().sum() == 120


@pytest.mark.parametrize("argv,message", [
    (["--ratio", "1.5"], "ratio must be in the open interval (0, 1)"),
    (["--ratio", "0"], "ratio must be in the open interval (0, 1)"),
    (["--ratio", "0.1", "--weights", "1,2,3"], "weights must be 4 numbers"),
])
def test_build_bad_arguments_exit_1(tiny_mnist1d, tmp_path, capsys, argv, message):
    code = main(["build", f"hf:{tiny_mnist1d}", "--space", "resnet1d", "--input-column", "x",
                 "--out", str(tmp_path / "o"), *argv])
    assert code == 1
    assert message in capsys.readouterr().err


def test_unknown_preset_and_space_are_listed(tmp_path, capsys):
    assert main(["build", "nope", "--ratio", "0.1", "--out", str(tmp_path / "o")]) == 1
    assert "known presets: cifar10, cifar100, digits, imagenet, mnist1d" in capsys.readouterr().err


def test_spaces_and_datasets_list(capsys):
    assert main(["spaces"]) == 0
    out = capsys.readouterr().out
    assert "resnet1d" in out and "resnet20" in out and "B32-K5-M4" in out and "timm:NAME,NAME[@SIZE]" in out
    assert main(["datasets"]) == 0
    assert "mnist1d" in capsys.readouterr().out


def test_user_error_is_one_line_and_debug_shows_its_traceback(tmp_path, capsys):
    argv = ["build", "nope", "--ratio", "0.1", "--out", str(tmp_path / "o")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("proxyds build: error: unknown") and err.count("\n") == 1 and "Traceback" not in err
    for debug_argv in (["--debug", *argv], [*argv, "--debug"]):
        assert main(debug_argv) == 1
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and err.splitlines()[-1].startswith("proxyds build: error:")


@pytest.mark.parametrize("error", [KeyError("x"), TypeError("unsupported operand"), AttributeError("y")])
def test_a_bug_is_not_a_user_error(monkeypatch, capsys, error):
    def broken(_args):
        raise error

    monkeypatch.setattr("proxyds.cli._datasets", broken)
    assert main(["datasets"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and type(error).__name__ in err
    assert "bug in proxyds; please report it" in err.splitlines()[-1]


def test_missing_file_is_a_user_error(monkeypatch, capsys):
    def missing(_args):
        raise FileNotFoundError("hf:/nowhere: no such directory")

    monkeypatch.setattr("proxyds.cli._datasets", missing)
    assert main(["datasets"]) == 1
    assert capsys.readouterr().err == "proxyds datasets: error: hf:/nowhere: no such directory\n"


def test_help_states_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "0 ok; 1 an error in the input" in text and "2 a usage error" in text and "3 an internal error" in text
    assert "--debug" in text
