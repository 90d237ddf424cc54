#!/usr/bin/env bash
# Reproduce the paper's CIFAR experiments (Park 2019, Tables 1 and 3, Figure 2) with proxyds:
# every config of the search space is trained on all of CIFAR-10 and on proxies at the paper's
# ratios, drawn by the paper's probe importance (`probe`), the default selector and random;
# report.md lays the accuracies out like Table 1 with Pearson/Spearman/Kendall beside
# rank-by-MACs/params, SynFlow and NASWOT, and pairwise_*.png are Figure 2's heatmaps.
#
# Needs CIFAR-10 on disk (the HF layout written by datasets' to_parquet, or WebDataset shards;
# see README "Inputs and presets"), a CUDA GPU, and `pip install -e .` of this repo. Nothing is
# downloaded. Runs are cached under $PROXYDS_CACHE/evaluate: a killed run resumes where it stopped.
#
#   CIFAR10=./cifar10 OUT=./table1 examples/reproduce_table1.sh          # both experiments
#   DRY_RUN=1 examples/reproduce_table1.sh                               # print the commands only
#
# Expected time (an estimate from the paper's 25 s per full-data epoch on a GTX 1080, not
# measured here): ResNet20 grid, 12 configs x (3 full seeds + 3 selectors x 2 ratios x 3 proxy
# seeds at ~0.1 of a full run's examples) x 30 epochs ~ 12 x (3 + 18 x 0.1) x 30 x 25 s ~ 12 h on a
# GTX 1080, ~4 h on a current GPU; the EfficientNet-B0 space about 3x that. Start with
# `--configs` (a subset) or fewer `--full-seeds/--proxy-seeds` to see the pipeline work first.
set -euo pipefail

CIFAR10=${CIFAR10:-./cifar10}
OUT=${OUT:-./table1}
PROXYDS=${PROXYDS:-proxyds}
DEVICE=${DEVICE:-cuda}
DRY_RUN=${DRY_RUN:-0}

run() {  # print the command; run it unless DRY_RUN=1
  printf '%q ' "$@"; printf '\n'
  if [ "$DRY_RUN" != 1 ]; then "$@"; fi
}

# The paper's training: Adam, and the proxies trained with the full run's batch size, epochs and
# lr (--proxy-batch-power 0; drop it for proxyds' recommended recipe, batch x ratio).
common=(--data "$CIFAR10" --selectors probe,entropy,random --ratios 0.05,0.1
        --full-seeds 3 --proxy-seeds 3 --epochs 30 --batch-size 128 --lr 1e-3 --proxy-batch-power 0
        --device "$DEVICE")

# Table 1 and Figure 2: ResNet20 with base filters B, kernel K and multiplier M (12 configs).
run $PROXYDS evaluate cifar10 --space resnet20 "${common[@]}" --out "$OUT/cifar10-resnet20"

# Table 3: EfficientNet-B0 repeats r1/r2 x kernels k1/k2 x filters f1/f2/f3 (12 configs).
run $PROXYDS evaluate cifar10 --space efficientnet_b0_cifar "${common[@]}" --out "$OUT/cifar10-efficientnet"
