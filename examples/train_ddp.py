"""Train on a fresh weighted proxy each epoch, across processes, with ``proxyds.ManifestSampler``.

The model reads the ORIGINAL train split; the sampler uses the proxy's ``manifest.parquet``
to pick, every epoch, a new weighted subset of it (same on every rank for a given seed and
epoch), and gives each rank a disjoint, equal-length slice. No proxy data is read at all:
only the manifest.

Build a proxy, then run on 2 CPU processes (gloo)::

    proxyds build mnist1d --out proxy/ --ratio 0.1
    torchrun --nproc-per-node 2 examples/train_ddp.py proxy/ --epochs 3

or in one process, without torchrun::

    python examples/train_ddp.py proxy/ --epochs 3

The original dataset is the ``hf:`` directory the proxy was built from, as ``proxy/proxy.json``'s
``config`` records it (``dataset``, or a preset's ``data``); override with ``--data DIR``, a
HuggingFace parquet directory with ``train`` and ``test`` splits.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import datasets
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset

from proxyds import ManifestSampler
from proxyds.spaces import get_space

HYPER = dict(
    epochs=3,           # each epoch draws a new proxy from the manifest
    batch_size=64,      # per rank
    lr=3e-3,            # AdamW
    weight_decay=5e-4,
    seed=0,             # sampler seed: every rank must use the same one
    space="resnet1d",   # train the space's cheapest config
)

log = logging.getLogger("train_ddp")


def load_split(data: str, split: str, column: str, label: str, shape) -> TensorDataset:
    """A whole split as tensors, so a sampler's indices address it directly."""
    ds = datasets.load_dataset(data, split=split).with_format("numpy")
    x = torch.as_tensor(np.asarray(ds[column], dtype=np.float32)).reshape(len(ds), *shape)
    return TensorDataset(x, torch.as_tensor(np.asarray(ds[label], dtype=np.int64)))


def original_source(config: dict) -> str:
    """The hf: directory a proxy was built from: its ``config.dataset`` as given, or where its preset's
    data live (proxy.json's summary names the source without its path)."""
    spec = config["dataset"]
    if ":" not in spec:
        from proxyds.presets import get_preset

        spec = get_preset(spec).locate(config.get("data")).spec
    if not spec.startswith("hf:"):
        raise SystemExit(f"the proxy was built from {spec!r}, not an hf: directory; pass --data DIR")
    return spec.removeprefix("hf:")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("proxy", type=Path, help="a proxyds output directory (its manifest.parquet is used)")
    p.add_argument("--data", help="the ORIGINAL dataset directory (default: the hf: source proxy.json's config names)")
    p.add_argument("--replacement", action="store_true", help="draw each epoch's proxy with replacement")
    for name, value in HYPER.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = p.parse_args(argv)

    distributed = "WORLD_SIZE" in os.environ  # set by torchrun
    if distributed:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    logging.basicConfig(level=logging.INFO, format=f"[rank {rank}] %(message)s")

    meta = json.loads((args.proxy / "proxy.json").read_text())
    data = args.data or original_source(meta["config"])
    column, label = meta["config"]["input_column"] or "x", meta["config"]["label_column"] or "label"
    space = get_space(args.space)
    train = load_split(data, "train", column, label, space.input_shape)
    test = load_split(data, "test", column, label, space.input_shape)
    num_classes = len(meta["summary"]["class_names"])

    sampler = ManifestSampler(args.proxy, replacement=args.replacement, seed=args.seed)  # world from torch.distributed
    loader = DataLoader(train, batch_size=args.batch_size, sampler=sampler)
    log.info("original train split: %d examples; proxy per epoch: %d; this rank: %d",
             len(train), sampler.num_samples, len(sampler))

    torch.manual_seed(args.seed)  # identical initial weights on every rank (DDP also broadcasts them)
    model = space.build(space.probes(num_classes=num_classes)[0], num_classes)
    if distributed:
        model = DistributedDataParallel(model)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)

    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # a fresh proxy, the same on every rank
        model.train()
        total, count = torch.zeros(2), 0
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += torch.tensor([loss.item() * len(y), len(y)])
            count += 1
        if distributed:
            dist.all_reduce(total)
        log.info("epoch %d: %d batches here, mean train loss %.4f over %d examples (all ranks)",
                 epoch, count, total[0] / total[1], int(total[1]))

    model.eval()
    with torch.no_grad():
        accuracy = (model(test.tensors[0]).argmax(1) == test.tensors[1]).float().mean().item()
    log.info("reference-split accuracy %.4f", accuracy)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
