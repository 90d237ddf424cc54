#!/usr/bin/env bash
# GPU benchmark (issue 16), at most 5 minutes on one CUDA device: scoring throughput fp32 vs bf16
# (the upper probe of a CIFAR-like and an ImageNet-like space, and build's whole scoring pass) and
# exact vs hnsw neighbour search, printed as one table under the device's name (tools/bench_gpu.py).
#
#   tools/bench_gpu.sh                                   # real run on cuda (DEVICE=cuda:1 for another GPU)
#   tools/bench_gpu.sh --doc docs/benchmarks-images.md   # also append the table there
#   DRY_RUN=1 tools/bench_gpu.sh  (or --dry-run)         # CPU, tiny sizes, seconds: checks that every part runs
#
# PYTHON picks the interpreter (default: python); other options go to tools/bench_gpu.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
args=("$@")
if [[ "${DRY_RUN:-0}" == 1 ]]; then
  args=(--dry-run "${args[@]}")
fi
if [[ " ${args[*]} " != *" --dry-run "* ]]; then
  args=(--device "${DEVICE:-cuda}" "${args[@]}")
fi
# The whole run stops at 5 minutes (exit 124) rather than overrun the device time it was given.
exec timeout -k 10 300 "$PYTHON" tools/bench_gpu.py "${args[@]}"
