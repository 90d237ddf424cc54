"""BuildConfig: every setting of a build, validated once, here, at the boundary."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from proxyds.selection.importance import DEFAULT_WEIGHTS, validate_weights
from proxyds.pipeline.probes import PROBE_HPARAMS
from proxyds.pipeline.scan import ON_ERROR

__all__ = ["BuildConfig", "FORMATS", "NEIGHBORS"]

FORMATS = ("parquet", "wds")
NEIGHBORS = ("hnsw", "exact")

#: Label reduction ``auto`` never keeps fewer classes, and leaves datasets with this many or fewer whole
#: (proxyds.selection.labels explains why).
MIN_CLASSES = 20


@dataclass(frozen=True)
class BuildConfig:
    """What ``proxyds build`` does.

    ``dataset`` is a preset name (``mnist1d``) or a source spec (``hf:PATH``, ``wds:PATTERN``).
    Fields left as None take the preset's value (or, for a plain source, a documented default).
    """

    dataset: str
    out: Path
    ratio: float
    seed: int = 0
    format: str | None = None             # parquet | wds; None: parquet for hf input, wds for wds input
    data: str | None = None               # a preset's data location (--data PATH)
    reference: str | None = None          # source spec of the reference split if it lives elsewhere
    train_split: str | None = None
    reference_split: str | None = None
    label_column: str | None = None
    input_column: str | None = None
    key_column: str | None = None
    space: str | None = None
    selector: str = "entropy"             # a registered selector (proxyds.selection.selectors) or module:attr
    weights: tuple[float, float, float, float] = DEFAULT_WEIGHTS
    probes: int = 2                       # k probes spread over the space by MACs (2: cheapest + most expensive)
    label_reduction: str = "auto"         # auto | off | N >= 2 (keep the N highest-scoring classes)
    label_intermediate: float | None = None  # auto: kept classes hold at least this fraction of train; None: 2 * ratio
    min_per_class: int = 100              # auto: reduce labels when the proxy would average fewer per class
    min_classes: int = MIN_CLASSES        # auto: never keep fewer classes; datasets with this many or fewer stay whole
    allow_weak_probes: bool = False       # go on (with a loud warning) when a probe is not above chance
    probe_epochs: int = PROBE_HPARAMS["epochs"]
    probe_seed: int = 0
    batch_size: int = PROBE_HPARAMS["batch_size"]
    lr: float = PROBE_HPARAMS["lr"]
    pca_components: int = 64
    neighbors: str = "hnsw"
    rows_per_shard: int = 10_000
    workdir: Path | None = None
    overwrite: bool = False
    device: str = "auto"
    on_error: str = "raise"               # raise: stop at the first bad example; skip: count it and go on
    workers: int | None = None            # decoding processes; None: 0 for 1-D inputs, else min(8, cores - 1)
    probe_checkpoints: tuple[tuple[str, str], ...] = ()  # (role, path): trained probes to load instead of training
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset must be a preset name or hf:/wds: source (got {self.dataset!r})")
        ratio = float(self.ratio) if isinstance(self.ratio, (int, float)) else math.nan
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"ratio must be in the open interval (0, 1), e.g. 0.1 for 10% (got {self.ratio!r})")
        object.__setattr__(self, "ratio", ratio)
        object.__setattr__(self, "out", Path(self.out))
        if self.workdir is not None:
            object.__setattr__(self, "workdir", Path(self.workdir))
        object.__setattr__(self, "weights", validate_weights(self.weights))
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)} (got {self.format!r})")
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
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)} (got {self.on_error!r})")
        if self.neighbors not in NEIGHBORS:
            raise ValueError(f"neighbors must be one of {', '.join(NEIGHBORS)} (got {self.neighbors!r})")
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
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number (got {self.lr!r})")

    def to_dict(self) -> dict:
        """JSON-ready view (paths as strings), as recorded in proxy.json."""
        d = asdict(self)
        d["out"] = str(self.out)
        d["workdir"] = None if self.workdir is None else str(self.workdir)
        d["weights"] = list(self.weights)
        d["probe_checkpoints"] = [list(p) for p in self.probe_checkpoints]
        return d
