"""examples/reproduce_table1.sh in its dry mode: every command it would run parses with the
real command line, and names a known preset and search space."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from proxyds.cli import _parser
from proxyds.presets import list_presets
from proxyds.spaces import get_space

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "reproduce_table1.sh"


def test_reproduce_table1_commands_parse():
    done = subprocess.run(["bash", str(SCRIPT)], env=dict(os.environ, DRY_RUN="1", PROXYDS="proxyds"),
                          capture_output=True, text=True, check=True)
    commands = [shlex.split(line) for line in done.stdout.splitlines() if line.strip()]
    assert len(commands) == 2
    for argv in commands:
        assert argv[0] == "proxyds"
        args = _parser().parse_args(argv[1:])  # argparse exits on anything it does not take
        assert args.command == "evaluate" and args.benchmark in list_presets()
        assert get_space(args.space).name == args.space and len(get_space(args.space).configs) == 12
        assert tuple(args.ratios) == (0.05, 0.1) and "probe" in args.selectors and "random" in args.selectors
