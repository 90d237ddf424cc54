"""Progress without a terminal: a log line every 5% or 60 s per stage (whichever first), with
rate and ETA; the rule tested on a fake clock, then a real build in a subprocess whose stderr
is a pipe, as in a batch job."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys

import pytest

from proxyds.progress import ProgressLog, progress

LINE = re.compile(r"^(?P<desc>[\w -]+): (?P<n>[\d,]+)/(?P<total>[\d,]+) (?P<unit>\w+) \(\d+%\), [\d.,]+ \w+/s, "
                  r"(ETA \d+:\d\d:\d\d|done in \d+:\d\d:\d\d)")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _bar(total, clock, **kwargs):
    logger = logging.getLogger("test.progress")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = Lines()
    logger.handlers = [handler]
    return ProgressLog(total=total, desc="score train", unit="ex", clock=clock, logger=logger, **kwargs), handler


def test_a_line_every_five_percent_when_fast():
    clock = Clock()
    bar, out = _bar(1000, clock)
    logged = []
    for i in range(1000):
        clock.now += 1 / 32  # 31.25 s in all: the 60 s rule never fires
        if bar.update(1):
            logged.append(bar.n)
    bar.close()
    assert logged == list(range(50, 1000, 50))  # 5%, 10%, ... 95%; 100% is close()'s line
    assert len(out.lines) == 20 and out.lines[-1].endswith("done in 0:00:31")
    assert out.lines[0] == "score train: 50/1,000 ex (5%), 32 ex/s, ETA 0:00:30"
    assert all(LINE.match(line) for line in out.lines), out.lines


def test_a_line_every_minute_when_slow():
    clock = Clock()
    bar, out = _bar(10_000, clock)
    logged = []
    for _ in range(10):
        clock.now += 25.0  # 1 example per 25 s: 5% would take hours
        if bar.update(1):
            logged.append(clock.now - 1000.0)
    assert logged == [75.0, 150.0, 225.0]  # the first update 60 s or more after the last line
    assert out.lines[0] == "score train: 3/10,000 ex (0%), 0.04 ex/s, ETA 69:25:25"  # 9,997 left at 25 s each


def test_big_updates_log_once_and_the_clock_resets_on_each_line():
    clock = Clock()
    bar, out = _bar(100, clock)
    clock.now += 59.0
    assert bar.update(30)  # 30% crosses six 5% steps: one line
    clock.now += 59.0
    assert not bar.update(1)  # 59 s since that line, 31% is in the same step
    clock.now += 1.0
    assert bar.update(1)  # 60 s since the last line
    assert len(out.lines) == 2


def test_unknown_total_logs_by_time_only_without_eta():
    clock = Clock()
    bar, out = _bar(None, clock)
    for _ in range(5):
        clock.now += 30.0
        bar.update(7)
    assert out.lines == ["score train: 14 ex, 0.233 ex/s", "score train: 28 ex, 0.233 ex/s"]


def test_postfix_and_close_once():
    clock = Clock()
    bar, out = _bar(4, clock)
    bar.set_postfix(epoch=1, loss="2.301")
    clock.now += 2.0
    bar.update(4)
    bar.close()
    bar.close()
    assert out.lines == ["score train: 4/4 ex (100%), 2 ex/s, done in 0:00:02 (epoch 1, loss 2.301)"]


def test_iterating_counts_and_closes():
    clock = Clock()
    bar, out = _bar(3, clock, iterable=range(3))
    assert list(bar) == [0, 1, 2]
    assert bar.n == 3 and len(out.lines) == 3 and "done in" in out.lines[-1]  # 33%, 67%, done


@pytest.mark.parametrize("kwargs,message", [
    ({"total": -1}, "total must be a number >= 0"),
    ({"total": 10, "every_fraction": 0}, "every_fraction must be in"),
    ({"total": 10, "every_seconds": 0}, "every_seconds must be > 0"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ProgressLog(**kwargs)


def test_a_terminal_gets_a_bar_anything_else_log_lines(monkeypatch):
    class Terminal:
        def isatty(self):
            return True

        def write(self, text):
            return len(text)

        def flush(self):
            pass

    assert isinstance(progress(range(3), desc="x"), ProgressLog)  # pytest captures stderr: no terminal
    monkeypatch.setattr(sys, "stderr", Terminal())
    bar = progress(total=3, desc="x")
    assert type(bar).__module__.startswith("tqdm")
    bar.close()


def test_a_build_without_a_terminal_logs_progress_before_it_ends(tiny_mnist1d, tmp_path):
    """As in a SLURM job: stderr is a pipe. Progress lines, with rate and ETA, arrive while the
    build still runs, and --log-file keeps them, with timestamps, after what the file held."""
    log_file = tmp_path / "build.log"
    log_file.write_text("an earlier run\n")
    argv = [sys.executable, "-m", "proxyds", "build", f"hf:{tiny_mnist1d}", "--space", "resnet1d", "--input-column",
            "x", "--ratio", "0.1", "--out", str(tmp_path / "proxy"), "--probe-epochs", "1", "--pca-components", "8",
            "--workdir", str(tmp_path / "w"), "--device", "cpu", "--allow-weak-probes", "--log-file", str(log_file)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    running_at_first_line, progress_lines = None, []
    for line in proc.stderr:
        if "proxyds.progress: " in line:
            progress_lines.append(line.split("proxyds.progress: ", 1)[1].rstrip("\n"))
            if running_at_first_line is None:
                running_at_first_line = proc.poll() is None
    out = proc.stdout.read()
    assert proc.wait(timeout=600) == 0, out
    assert running_at_first_line, "the first progress line came only after the build ended"
    assert {line.split(":")[0] for line in progress_lines} >= {"scan train", "train lower B8-K3-M2", "score train",
                                                               "write train"}
    assert any(LINE.match(line) and "ETA" in line for line in progress_lines), progress_lines
    assert out.startswith("proxy written to")
    logged = log_file.read_text().splitlines()
    assert logged[0] == "an earlier run"
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ proxyds.cli: proxyds \S+ build: started", logged[1])
    assert sum("proxyds.progress: " in line for line in logged) == len(progress_lines)
    assert logged[-1].endswith("proxyds build: finished, exit status 0")


def test_only_rank_0_logs_progress_under_the_cli(monkeypatch, caplog):
    from proxyds.cli import _parser, _setup_logging

    _setup_logging(_parser().parse_args(["datasets"]))
    for rank, expected in (("0", 1), ("3", 0)):
        monkeypatch.setenv("RANK", rank)
        caplog.clear()
        with caplog.at_level(logging.NOTSET):
            progress(range(2), desc="scan train").close()
        assert sum(r.name.startswith("proxyds.progress") for r in caplog.records) == expected, rank


def test_log_file_records_an_error_too(tmp_path, capsys):
    from proxyds.cli import main

    log_file = tmp_path / "run.log"
    assert main(["build", "nope", "--ratio", "0.1", "--out", str(tmp_path / "o"), "--log-file", str(log_file)]) == 1
    lines = log_file.read_text().splitlines()
    assert "build: started" in lines[0] and lines[-1].endswith("proxyds build: error: " +
                                                               capsys.readouterr().err.split(": error: ", 1)[1].strip())
    assert main(["build", "nope", "--ratio", "0.1", "--out", "o", "--log-file", str(tmp_path / "no" / "x.log")]) == 1
    assert "No such file or directory" in capsys.readouterr().err
