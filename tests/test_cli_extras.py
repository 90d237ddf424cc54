"""The CLI as scripts use it: --version, -v/-q after the subcommand, a closed pipe is not an error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from proxyds import __version__
from proxyds.cli import _parser


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        _parser().parse_args(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"proxyds {__version__}"


@pytest.mark.parametrize("argv", [["-v", "spaces"], ["spaces", "-v"], ["spaces", "--verbose"]])
def test_verbose_before_or_after_the_command(argv):
    assert _parser().parse_args(argv).verbose is True


@pytest.mark.parametrize("argv", [["-q", "datasets"], ["datasets", "-q"]])
def test_quiet_before_or_after_the_command(argv):
    args = _parser().parse_args(argv)
    assert args.quiet is True and args.verbose is False


def test_a_closed_pipe_is_not_an_error(monkeypatch, capsys):
    """The reader of stdout went away (`proxyds spaces | head -1`): exit 0, no traceback."""
    from proxyds.cli import main

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["datasets"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_a_reader_that_stops_early_is_not_an_error():
    """`proxyds spaces | head -1`: no BrokenPipeError traceback, exit 0."""
    proc = subprocess.Popen([sys.executable, "-m", "proxyds", "spaces"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away with most of the listing unread
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "BrokenPipe" not in err and "Traceback" not in err
