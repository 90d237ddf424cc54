"""BuildConfig: every setting of a build, validated once, here, at the boundary."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from proxyds.errors import ON_ERROR

__all__ = ["BuildConfig", "FORMATS", "NEIGHBORS", "PRECISIONS", "PROBE_HPARAMS", "DEFAULT_WEIGHTS",
           "DEFAULT_SELECTOR", "DEFAULT_SELECTOR_EVIDENCE",
           "validate_weights", "validate_license", "read_config_file"]

#: The probe trainer's settings (proxyds.pipeline.probes); build options override the first three.
PROBE_HPARAMS = {
    "epochs": 4,            # full passes over the train split
    "batch_size": 128,
    "lr": 3e-3,             # Adam peak learning rate, cosine-annealed to 0 over all steps
    "weight_decay": 5e-4,   # decoupled (AdamW)
    "warmup_steps": 50,     # linear warm-up before the cosine
    "shuffle_buffer": 10_000,  # examples held for streaming shuffle
}


#: The paper's case weights c1..c4 (proxyds.selection.importance): higher = more likely kept.
DEFAULT_WEIGHTS = (2.0, 1.0, 6.0, 1.0)


def validate_weights(weights: Sequence[float]) -> tuple[float, float, float, float]:
    """Check c1..c4: four finite, non-negative numbers, not all zero."""
    w = tuple(float(x) for x in weights)
    if len(w) != 4:
        raise ValueError(f"weights must be 4 numbers c1,c2,c3,c4 (got {len(w)}: {weights!r})")
    if any(not math.isfinite(x) or x < 0 for x in w) or sum(w) == 0:
        raise ValueError(f"weights must be finite, >= 0 and not all zero (got {weights!r})")
    return w


def validate_license(license: str) -> str:
    """A Hub license identifier as the dataset card's ``license`` takes it: lowercase letters,
    digits, '.' and '-' (``apache-2.0``, ``mit``, ``cc-by-4.0``, ``other``, ``unknown``)."""
    if not isinstance(license, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", license):
        raise ValueError(f"license must be a Hub license identifier in lowercase letters, digits, '.' and '-', e.g. "
                         f"apache-2.0, mit, cc-by-4.0, other or unknown (got {license!r})")
    return license


def _opt(default=MISSING, help: str = "", **cli):
    """A config field with its command-line form: ``help`` and argparse details in the field's
    metadata, so ``proxyds build``'s options are generated from this class (cli.py)."""
    return field(default=default, metadata={"help": help, **cli})


FORMATS = ("parquet", "wds")
NEIGHBORS = ("hnsw", "exact")
#: Arithmetic of the probes' forward passes (proxyds.pipeline.probes.resolve_precision): auto = bf16
#: autocast on a CUDA device with native bfloat16, else fp32; fp32 everywhere; bf16 (CUDA only).
PRECISIONS = ("auto", "fp32", "bf16")
#: What ``proxyds build`` weighs examples by unless told otherwise: a plain random subset. Chosen
#: on the tuning half of ``proxyds evaluate --suite selectors`` (docs/benchmarks-selectors.md):
#: no selector that weighs examples by the probes beat random there by the margin asked.
DEFAULT_SELECTOR = "random"

#: Why the default is ``random``, in one sentence with the numbers (the build and the card say it).
DEFAULT_SELECTOR_EVIDENCE = ("in proxyds' measurements selection by importance did not beat a random subset: on the "
                             "selector suite's held-out half (MNIST-1D draws and search spaces nothing was tuned on, "
                             "and real digit images) a random 5% proxy kept the full-data ranking with Spearman 0.743 and a "
                             "10% proxy 0.789, against 0.646 and 0.737 for entropy (version 0.1's default) and 0.695 "
                             "and 0.759 for the paper's probe importance; class-balanced tied with random (0.756 and "
                             "0.794); see docs/benchmarks-selectors.md")

#: Label reduction ``auto`` never keeps fewer classes, and leaves datasets with this many or fewer whole
#: (proxyds.selection.labels explains why).
MIN_CLASSES = 20


@dataclass(frozen=True)
class BuildConfig:
    """What ``proxyds build`` does.

    ``dataset`` is a preset name (``mnist1d``) or a source spec (``hf:PATH``, ``wds:PATTERN``).
    Fields left as None take the preset's value (or, for a plain source, a documented default).
    """

    dataset: str = _opt(help="a preset (see `proxyds datasets`) or a source: hf:DIR, hf:PATTERN-with-{split}, "
                             "wds:BRACE-PATTERN or wds:DIR", positional=True)
    out: Path = _opt(help="output directory (written atomically; never inside an input)", required=True)
    ratio: float = _opt(help="fraction of the train split to keep, in (0, 1)", required=True)
    seed: int = _opt(0, "seed of the weighted draw")
    format: str | None = _opt(None, "output format (default: parquet for hf input, wds for wds input)",
                              choices=FORMATS)
    data: str | None = _opt(None, "where a preset's data lives, if not generated or cached")
    reference: str | None = _opt(None, "source spec of the reference split, if not beside the train split")
    train_split: str | None = _opt(None, "train split name (default: preset's, else 'train')")
    reference_split: str | None = _opt(None, "reference split that scores importance (default: preset's, else "
                                             "'test')")
    label_column: str | None = _opt(None, "label column / tar field (default: label for hf, cls for wds)")
    input_column: str | None = _opt(None, "column / tar field the probes read (preset's by default)")
    key_column: str | None = _opt(None, "hf column holding a unique key (default: the row index)")
    space: str | None = _opt(None, "search space (see `proxyds spaces`; preset's by default) or module:attr")
    selector: str = _opt(DEFAULT_SELECTOR,
                         "how train examples are weighted before the draw: a registered selector or module:attr, a "
                         "function of proxyds.selection.selectors.Scores: random (the default: no importance selector "
                         "beat a random subset in our measurements, docs/benchmarks-selectors.md); class-balanced; "
                         "entropy = Na et al.'s entropy-bin weights from the upper probe; probe = the paper's case "
                         "importance mapped from the reference split; easy-soft = class-balanced x the probes' mean "
                         "true-label probability; entropy-committee")
    weights: tuple[float, float, float, float] = _opt(
        DEFAULT_WEIGHTS, "case weights c1,c2,c3,c4: both correct, both wrong, only the better probe correct, only the "
        "worse probe correct; higher = more likely kept; the default is the paper's", parse="weights")
    probes: int = _opt(2, "number of probes, spread over the space by MACs (2: cheapest and most expensive); with "
                          "k > 2 an example's importance is its mean case weight over all probe pairs")
    label_reduction: str = _opt("auto", "auto: on datasets of more than --min-classes classes, keep as many classes as "
                                        "--min-per-class examples each allows, never fewer than --min-classes; "
                                        "off; or N >= 2: keep the N highest-scoring classes")
    label_intermediate: float | None = _opt(None, "auto: the kept classes hold at least this fraction of the train "
                                                  "split (default 2 x ratio)")
    min_per_class: int = _opt(100, "auto label reduction: examples per kept class the proxy should average")
    min_classes: int = _opt(MIN_CLASSES, "auto label reduction never keeps fewer classes, and leaves datasets with "
                                         "this many or fewer whole")
    allow_weak_probes: bool = _opt(False, "go on, with a loud warning, when a probe is not above chance on the "
                                          "reference split (default: stop and say what to do)")
    probe_epochs: int = _opt(PROBE_HPARAMS["epochs"], "epochs of probe training")
    probe_seed: int = _opt(0, "seed of probe training")
    batch_size: int = _opt(PROBE_HPARAMS["batch_size"], "probe training and scoring batch size")
    lr: float = _opt(PROBE_HPARAMS["lr"], "probe peak learning rate (AdamW, warm-up then cosine)")
    pca_components: int = _opt(64, "PCA dimensions of the upper probe's features")
    neighbors: str = _opt("hnsw", "nearest-neighbour search", choices=NEIGHBORS)
    rows_per_shard: int = _opt(10_000, "examples per output shard")
    workdir: Path | None = _opt(None, "work dir caching every stage (scan, probe checkpoints, scoring passes) so a "
                                      "killed build resumes (default $PROXYDS_CACHE/work)")
    overwrite: bool = _opt(False, "replace --out if it holds a previous proxyds output (never anything else)")
    device: str = _opt("auto", "auto, cpu, cuda or cuda:N")
    precision: str = _opt("auto", "probe training and scoring arithmetic: auto = bf16 autocast on a CUDA device "
                                  "with native bfloat16 (compute capability 8.0+), else fp32 (always fp32 on the "
                                  "CPU); fp32; bf16 (needs such a CUDA device)", choices=PRECISIONS)
    on_error: str = _opt("raise", "raise: stop at the first bad example, naming it; skip: leave it out, count it in "
                                  "proxy.json and mark it in the manifest's status column", choices=ON_ERROR)
    workers: int | None = _opt(None, "decoding worker processes (default: 0 for 1-D inputs, else min(8, cores - 1))")
    probe_checkpoints: tuple[tuple[str, str], ...] = _opt(
        (), "load a trained probe instead of training it, e.g. --probe lower=r18.pt --probe upper=r50.pt (a "
            "state_dict saved with torch.save, weights_only, or .safetensors; torchvision and timm files load, "
            "wrapped or DDP-prefixed; checked strictly, see README 'Pretrained probes')",
        flag="--probe", parse="append", metavar="ROLE=PATH")
    license: str | None = _opt(None, "license written into the dataset card, a Hub identifier (e.g. apache-2.0, "
                                     "cc-by-4.0, other); default: the input dataset card's license, else unknown")
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset must be a preset name or hf:/wds: source (got {self.dataset!r})")
        ratio = float(self.ratio) if isinstance(self.ratio, (int, float)) else math.nan
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"ratio must be in the open interval (0, 1), e.g. 0.1 for 10% (got {self.ratio!r})")
        object.__setattr__(self, "ratio", ratio)
        for name in ("out", "workdir"):
            value = str(getattr(self, name))
            if "://" in value or value.startswith("pipe:"):
                raise ValueError(f"{name} must be a local or shared filesystem path, not a URL (got {value!r}); "
                                 f"build there, then copy the output (e.g. aws s3 sync OUT s3://bucket/proxy)")
        object.__setattr__(self, "out", Path(self.out))
        if self.workdir is not None:
            object.__setattr__(self, "workdir", Path(self.workdir))
        object.__setattr__(self, "weights", validate_weights(self.weights))
        pairs = []
        for item in self.probe_checkpoints:
            role, path = item.split("=", 1) if isinstance(item, str) and "=" in item else item
            if not role or not path:
                raise ValueError(f"probe checkpoints must be ROLE=PATH, e.g. upper=ckpt.pt (got {item!r})")
            pairs.append((str(role), str(path)))
        object.__setattr__(self, "probe_checkpoints", tuple(pairs))
        if not isinstance(self.selector, str) or not self.selector or any(c.isspace() for c in self.selector):
            raise ValueError(f"selector must be a registered selector name (see proxyds.selection.selectors) or "
                             f"module:attr (got {self.selector!r})")
        for name, allowed in (("format", FORMATS), ("on_error", ON_ERROR), ("precision", PRECISIONS),
                              ("neighbors", NEIGHBORS)):
            value = getattr(self, name)
            if value not in allowed and not (name == "format" and value is None):
                raise ValueError(f"{name} must be one of {', '.join(allowed)} (got {value!r})")
        lr_mode = str(self.label_reduction)
        if lr_mode not in ("auto", "off") and not (lr_mode.isdigit() and int(lr_mode) >= 2):
            raise ValueError(f"label_reduction must be auto, off or a number of classes >= 2 (got {self.label_reduction!r})")
        object.__setattr__(self, "label_reduction", lr_mode)
        if self.label_intermediate is not None and not ratio < float(self.label_intermediate) <= 1.0:
            raise ValueError(f"label_intermediate must be in (ratio, 1] = ({ratio}, 1] (got {self.label_intermediate!r})")
        if not isinstance(self.probes, int) or isinstance(self.probes, bool) or self.probes < 2:
            raise ValueError(f"probes must be an integer >= 2 (got {self.probes!r})")
        for name in ("probe_epochs", "batch_size", "pca_components", "rows_per_shard", "min_per_class"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer (got {value!r})")
        if not isinstance(self.min_classes, int) or isinstance(self.min_classes, bool) or self.min_classes < 2:
            raise ValueError(f"min_classes must be an integer >= 2 (got {self.min_classes!r})")
        if not isinstance(self.allow_weak_probes, bool):
            raise ValueError(f"allow_weak_probes must be True or False (got {self.allow_weak_probes!r})")
        if self.workers is not None and (not isinstance(self.workers, int) or isinstance(self.workers, bool)
                                         or self.workers < 0):
            raise ValueError(f"workers must be an integer >= 0 (got {self.workers!r})")
        for name in ("seed", "probe_seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer (got {value!r})")
        if self.license is not None:
            validate_license(self.license)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number (got {self.lr!r})")

    def to_dict(self) -> dict:
        """JSON-ready view (paths as strings, tuples as lists), as recorded in proxy.json;
        :meth:`from_dict` turns it back into an equal config."""
        d = asdict(self)
        d["out"] = str(self.out)
        d["workdir"] = None if self.workdir is None else str(self.workdir)
        d["weights"] = list(self.weights)
        d["probe_checkpoints"] = [list(p) for p in self.probe_checkpoints]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BuildConfig:
        """A config from :meth:`to_dict`'s form, or a hand-written YAML/JSON mapping: lists for
        tuples, strings for paths, ``probe_checkpoints`` also as ``{role: path}`` or
        ``["role=path", ...]``. An unknown key is an error that lists the valid ones."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a build config must be a mapping of setting -> value (got {type(d).__name__})")
        names = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in d if k not in names)
        if unknown:
            raise ValueError(f"unknown build setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                             f"valid settings: {', '.join(names)}")
        values = dict(d)
        if isinstance(values.get("weights"), list):
            values["weights"] = tuple(values["weights"])
        probes = values.get("probe_checkpoints")
        if isinstance(probes, Mapping):
            values["probe_checkpoints"] = tuple((str(k), str(v)) for k, v in probes.items())
        elif isinstance(probes, list):
            values["probe_checkpoints"] = tuple(tuple(p) if isinstance(p, list) else p for p in probes)
        for name in ("ratio", "lr", "label_intermediate"):  # YAML reads 1e-3 (no dot) as a string
            if isinstance(values.get(name), str):
                values[name] = _number(name, values[name])
        if values.get("extra") is None:
            values.pop("extra", None)
        missing = [n for n in ("dataset", "out", "ratio") if values.get(n) is None]
        if missing:
            raise ValueError(f"a build config needs {', '.join(missing)} (missing from the given settings)")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path, **overrides) -> BuildConfig:
        """A config from a YAML or JSON file (see :func:`read_config_file`; an output's proxy.json
        works too), with ``overrides`` (e.g. ``out=...``) taking precedence over the file."""
        return cls.from_dict({**read_config_file(path), **overrides})


def _number(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number (got {text!r})") from None


def read_config_file(path: str | Path) -> dict:
    """The settings held in a YAML or JSON file: a mapping of BuildConfig fields, or a proxyds
    output's ``proxy.json`` (its ``config`` entry: everything but where it was written, so the
    caller adds ``out``). Relative paths in it are taken as given, i.e. from the working
    directory, as on the command line."""
    import json

    import yaml

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"config file {path} is a directory; for an output pass its proxy.json ({path / 'proxy.json'})")
    text = path.read_text()
    try:  # JSON first: YAML 1.1 would read a JSON number such as 1e-05 as a string
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"config file {path} is not valid YAML or JSON: {' '.join(str(err).split())}") from None
    if isinstance(data, dict) and "format_version" in data and isinstance(data.get("config"), dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of build settings, e.g. 'ratio: 0.1' "
                         f"(got {type(data).__name__})")
    return data
