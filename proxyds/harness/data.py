"""What the ranking harness trains on and how: the data as in-memory tensors (train,
reference split A, evaluation split B) and a short, readable trainer (airbench style: a proxy
is an index into the train tensors)."""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from proxyds.pipeline.probes import train_probe

__all__ = ["TrainRecipe", "DataSpec", "EvalData", "load_data", "train_model", "predict", "accuracy",
           "TRAINER_VERSION", "trainer_version"]

#: Part of every cached run's key (with a digest of the trainer's code, :func:`trainer_version`):
#: bump it when training changes in a way that code does not show (a library default, a changed
#: meaning of a setting), so no run trained the old way is read back as if trained the new way.
TRAINER_VERSION = 2


@dataclass(frozen=True)
class TrainRecipe:
    """How every config is trained, full data and proxy alike (the same epochs on both)."""

    epochs: int = 10           # full passes over the (sub)set
    batch_size: int = 128
    lr: float = 2e-3           # Adam peak learning rate, cosine-annealed to 0 over all steps
    weight_decay: float = 0.0  # Adam L2 weight decay

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer (got {v!r})")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number (got {self.lr!r})")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0 (got {self.weight_decay!r})")


@dataclass(frozen=True)
class DataSpec:
    """MNIST-1D generated with ``generator`` (overrides of mnist1d's arguments), split in three:
    train = the first ``train`` examples of the generator's train pool; reference split A =
    test pool rows ``reference[0]:reference[1]``; evaluation split B = rows ``evaluation``."""

    generator: dict
    train: int
    reference: tuple[int, int]
    evaluation: tuple[int, int]

    def __post_init__(self):
        if self.train < 1:
            raise ValueError(f"train must be >= 1 examples (got {self.train})")
        (a0, a1), (b0, b1) = self.reference, self.evaluation
        if not (0 <= a0 < a1 and 0 <= b0 < b1):
            raise ValueError(f"reference {self.reference} and evaluation {self.evaluation} must be non-empty ranges")
        if a0 < b1 and b0 < a1:
            raise ValueError(f"reference {self.reference} and evaluation {self.evaluation} overlap; they must be "
                             "disjoint so that the split scoring importance never measures accuracy")


@dataclass(frozen=True, eq=False)
class EvalData:
    """The three splits as tensors: x (N, 1, L) float32, y (N,) int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_ref: torch.Tensor
    y_ref: torch.Tensor
    x_eval: torch.Tensor
    y_eval: torch.Tensor
    num_classes: int
    description: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """sha256 of every tensor's bytes: the cache key of the data."""
        h = hashlib.sha256()
        for t in (self.x_train, self.y_train, self.x_ref, self.y_ref, self.x_eval, self.y_eval):
            h.update(str(tuple(t.shape)).encode())
            h.update(t.numpy().tobytes())
        return h.hexdigest()[:16]


def load_data(spec: DataSpec) -> EvalData:
    """Generate (or reuse from the cache) MNIST-1D and cut it into train, A and B."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from proxyds.presets import materialize_mnist1d

    root = materialize_mnist1d(dict(spec.generator))

    def read(split: str) -> tuple[np.ndarray, np.ndarray]:
        files = sorted((root / "data").glob(f"{split}-*.parquet"))
        table = pa.concat_tables([pq.read_table(f) for f in files])  # shard names sort in row order
        x = np.asarray(table.column("x").combine_chunks().flatten(), dtype=np.float32).reshape(len(table), -1)
        return x, np.asarray(table.column("label"), dtype=np.int64)

    xtr, ytr = read("train")
    xte, yte = read("test")
    (a0, a1), (b0, b1) = spec.reference, spec.evaluation
    if spec.train > len(xtr) or max(a1, b1) > len(xte):
        raise ValueError(f"the generator gives {len(xtr)} train and {len(xte)} test examples; asked for train "
                         f"{spec.train}, reference {spec.reference}, evaluation {spec.evaluation}")

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(x[:, None, :], dtype=np.float32))  # a writable copy

    desc = {"dataset": "mnist1d", "generator": dict(spec.generator),
            "train": f"first {spec.train} examples of the generator's train pool",
            "reference_A": f"test pool [{a0}:{a1}] ({a1 - a0} examples): scores importance, never an accuracy",
            "evaluation_B": f"test pool [{b0}:{b1}] ({b1 - b0} examples): every reported accuracy",
            "sizes": {"train": spec.train, "reference_A": a1 - a0, "evaluation_B": b1 - b0}}
    return EvalData(t(xtr[:spec.train]), torch.tensor(ytr[:spec.train]), t(xte[a0:a1]),
                    torch.tensor(yte[a0:a1]), t(xte[b0:b1]), torch.tensor(yte[b0:b1]),
                    num_classes=int(max(ytr.max(), yte.max())) + 1, description=desc)


def train_model(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: TrainRecipe, *, seed: int,
                device: torch.device = torch.device("cpu")) -> torch.nn.Module:
    """Train ``model`` in place on (x, y) with the build's trainer (:func:`train_probe`): Adam,
    cosine to 0 without warm-up, ``recipe.epochs`` epochs shuffled by ``seed``. The data are
    tensors, so a proxy is just an index into them."""
    gen = torch.Generator().manual_seed(seed)
    n, bs = len(x), recipe.batch_size

    def epoch_batches(_epoch: int):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            if len(idx) >= 2:  # BatchNorm cannot train on one example; it is dropped this epoch
                yield x[idx], y[idx]

    train_probe(model, epoch_batches, steps_per_epoch=math.ceil(n / bs), epochs=recipe.epochs, lr=recipe.lr,
                weight_decay=recipe.weight_decay, warmup_steps=0, device=device, desc="run", optimizer="adam")
    return model


def trainer_version() -> str:
    """:data:`TRAINER_VERSION` and a digest of the code every run trains through (the one trainer,
    its epoch loop, the in-memory and streamed batch feeds, the loader's example stream and the
    parquet rows it selects): editing any of them changes the run cache's keys, so cached runs are
    retrained, never mixed in."""
    return f"{TRAINER_VERSION}-{_code_digest()}"


@functools.cache
def _code_digest() -> str:
    """Computed once per process, from the source as it was first read: a file edited while a long
    evaluation runs does not change that evaluation's keys halfway."""
    import inspect

    from proxyds.harness import streamed
    from proxyds.pipeline import loader, probes
    from proxyds.sources.hf import HFSource

    parts = [probes.train_probe, probes._epochs, train_model, streamed.train_streamed, streamed.streamed_accuracy,
             loader._Examples, loader.SplitLoader, HFSource.selected_examples]
    return hashlib.sha256("\n".join(inspect.getsource(p) for p in parts).encode()).hexdigest()[:12]


@torch.inference_mode()
def predict(model: torch.nn.Module, x: torch.Tensor, *, batch_size: int = 2048,
            device: torch.device = torch.device("cpu")) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, C) and penultimate features (N, D) of ``model`` in eval mode."""
    model.to(device).eval()
    logits, feats = [], []
    for start in range(0, len(x), batch_size):
        f = model.forward_features(x[start:start + batch_size].to(device))
        feats.append(f.float().cpu())
        logits.append(model.forward_head(f).float().cpu())
    return torch.cat(logits).numpy(), torch.cat(feats).numpy()


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, **kw) -> float:
    logits, _ = predict(model, x, **kw)
    return float((logits.argmax(1) == y.numpy()).mean())


# --- cached runs -------------------------------------------------------------------------------
