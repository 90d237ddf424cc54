"""tools/bench_gpu.sh and its driver tools/bench_gpu.py: the dry run (CPU, tiny sizes) runs every
part and prints the table; without CUDA the real run refuses, naming the dry run."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

_ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_gpu", _ROOT / "tools" / "bench_gpu.py")
bench_gpu = importlib.util.module_from_spec(_spec)
sys.modules["bench_gpu"] = bench_gpu
_spec.loader.exec_module(bench_gpu)


def test_the_script_parses_and_its_options_are_known():
    assert subprocess.run(["bash", "-n", str(_ROOT / "tools" / "bench_gpu.sh")]).returncode == 0
    with pytest.raises(SystemExit) as exit_:
        bench_gpu.main(["--help"])
    assert exit_.value.code == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA this would run the real benchmark")
def test_without_cuda_the_real_run_refuses_and_names_the_dry_run():
    with pytest.raises(SystemExit, match=r"--device cuda: this benchmark needs a CUDA device .*use --dry-run"):
        bench_gpu.main(["--device", "cuda"])


def test_the_table_shows_skipped_rows_without_numbers():
    clock = bench_gpu._Clock(torch.device("cpu"))
    clock.wall, clock.cpu = 2.0, 1.5
    rows = [bench_gpu._row("forward", "x", "cpu", "fp32", 100, "img", clock),
            bench_gpu._skipped("forward", "x", "cpu", "bf16", "needs CUDA")]
    lines = bench_gpu.format_table(rows)
    assert lines[2] == "| forward | x | cpu | fp32 | 100 | 2.00 | 1.50 | 50 img/s |  |"
    assert lines[3] == "| forward | x | cpu | bf16 | 0 | - | - | - | needs CUDA |"


@pytest.mark.slow  # decodes JPEGs, builds an hnsw index: seconds on an idle runner, far more on a busy one
def test_the_dry_run_runs_every_part_on_the_cpu(tmp_path):
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(_ROOT / "tools" / "bench_gpu.sh"), "--data-root", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "device cpu (DRY RUN" in out
    rows = [ln for ln in out.splitlines() if ln.startswith("| ") and not ln.startswith("| part")]
    parts = [r.split(" | ")[0][2:] for r in rows]
    assert parts.count("forward") == 4 and parts.count("score_split") == 2 and parts.count("neighbours") == 2
    skipped = [r for r in rows if "| bf16 |" in r]
    assert len(skipped) == 3 and all("is not a CUDA device" in r for r in skipped)
    assert all(" img/s " in r or " query/s " in r for r in rows if r not in skipped)
