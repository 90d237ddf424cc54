"""The first pass over a split, and the rules for bad input.

``scan`` reads a split once and records what every later pass needs to account for each
example: key, label, shard, and a status. With ``on_error="raise"`` (the default) the first
bad example stops the build with a message naming it and its shard; with ``"skip"`` it is
kept in the index with status ``skipped: <reason>`` (so the manifest still lists it) and
never used. A shard that cannot be read to its end (truncated or corrupt tar) is an error,
or with ``skip`` a recorded shard error: the examples read before the damage are kept.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from proxyds.errors import ON_ERROR, BadInput, ErrorPolicy
from proxyds.manifest import OK, StatusColumn, StringColumn
from proxyds.pipeline.cache import StageCache, fingerprint
from proxyds.pipeline.tarplan import tar_plan
from proxyds.progress import progress
from proxyds.sources import remote
from proxyds.sources.base import Example
from proxyds.sources.decode import check_input
from proxyds.sources.wds import parse_label

__all__ = ["SplitIndex", "ON_ERROR", "OK", "read_examples", "read_shard", "scan", "cached_scan", "class_names",
           "BadInput"]

log = logging.getLogger(__name__)


@dataclass
class SplitIndex:
    """What one pass over a split learns, in read order: keys, labels (-1 when unusable),
    shard of each example, its status (``ok`` or ``skipped: …``) and unreadable shards.

    Keys and statuses are held compactly (:class:`~proxyds.manifest.StringColumn`,
    :class:`~proxyds.manifest.StatusColumn`; lists of strings are converted), so memory grows
    with the number of examples, never with the longest key or skip reason."""

    keys: StringColumn
    labels: np.ndarray
    shard_ids: np.ndarray
    shards: list[str]
    status: StatusColumn
    shard_errors: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys = StringColumn.from_strings(self.keys)
        self.status = StatusColumn.from_strings(self.status)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def ok(self) -> np.ndarray:
        return self.status.ok

    def skip(self, pos: int, reason: str) -> None:
        self.status.set(pos, f"skipped: {reason}")

    def skipped_counts(self) -> dict[str, int]:
        return dict(sorted(self.status.counts().items()))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {**self.keys.to_arrays("keys"), "labels": self.labels, "shard_ids": self.shard_ids,
                **StringColumn.from_strings(self.shards).to_arrays("shards"), **self.status.to_arrays("status")}

    @classmethod
    def from_arrays(cls, a: dict, shard_errors: list[dict]) -> "SplitIndex":
        return cls(StringColumn.from_arrays(a, "keys"), a["labels"], a["shard_ids"],
                   list(StringColumn.from_arrays(a, "shards")), StatusColumn.from_arrays(a, "status"), shard_errors)


def read_examples(source, what: str, on_error: str, shard_errors: list[dict] | None = None) -> Iterator[Example]:
    """Every example of ``source``, shard by shard (see :func:`read_shard`)."""
    start = 0
    for index in range(len(source.shards)):
        for ex in read_shard(source, index, start, what, on_error, shard_errors):
            start += 1
            yield ex


def read_shard(source, index: int, start: int, what: str, on_error: str,
               shard_errors: list[dict] | None = None, *, fields_only: bool = False) -> Iterator[Example]:
    """The examples of one shard. A shard that is damaged or breaks mid-way raises
    :class:`BadInput` naming it, or with ``skip`` is cut short and recorded in ``shard_errors``.
    Pass ``shard_errors`` on the first pass only: it also checks the shard's integrity where
    the source can (``source.damage``), and records each error once. ``fields_only``: a pass
    that needs keys, labels and which fields are present, not the inputs' bytes (see
    :func:`_header_examples`)."""
    name, where = source.shards[index], _shard_name(source, index)
    found = _header_examples(source, index) if fields_only else None
    damage = None
    if shard_errors is not None and hasattr(source, "damage") and not (found is not None and
                                                                       _ends_cleanly(source.files[index], found)):
        damage = source.damage(index)
    if damage is not None:
        message = f"{what} shard {where} is damaged: {damage}"
        ErrorPolicy.of(on_error)(message, "fix or remove the shard, or pass --on-error skip")
        log.warning("%s; keeping the examples that can be read", message)
        shard_errors.append({"split": what, "shard": name, "error": damage})
    n = 0
    try:
        for ex in source.shard_examples(index, start) if found is None else found:
            n += 1
            yield ex
    except Exception as err:  # noqa: BLE001 - readers raise many types for damaged data
        message = f"{what} shard {where} is unreadable after {n} examples ({type(err).__name__}: {err})"
        try:
            ErrorPolicy.of(on_error)(message, "fix or remove the shard, or pass --on-error skip")
        except BadInput as bad:
            raise bad from err
        log.warning("%s; skipping the rest of it", message)
        if shard_errors is not None:
            shard_errors.append({"split": what, "shard": name, "error": f"{type(err).__name__}: {err}"})


def _header_examples(source, index: int) -> list[Example] | None:
    """A local plain WebDataset shard's examples read from its tar headers and label fields only:
    the keys and fields :func:`~proxyds.pipeline.tarplan.tar_plan` finds by webdataset's rules, each
    payload field a :class:`~proxyds.sinks.filecopy.FileRange` (its bytes unread), the label parsed
    as ``WdsSource`` parses it. None for any other shard (it is streamed as always)."""
    files = getattr(source, "files", None)
    if source.info.format != "wds" or not files or len(files) != len(source.shards) or \
            not os.path.isfile(files[index]):
        return None
    plan = tar_plan(files[index])
    if plan is None:
        return None
    field, name, examples = source.info.label_column, source.shards[index], []
    fd = os.open(files[index], os.O_RDONLY)
    try:
        for key, fields in plan:
            at = fields.get(field)
            label = None if at is None else parse_label(os.pread(fd, at.size, at.offset))
            examples.append(Example(key=key, label=label, payload=dict(fields), shard=name))
    finally:
        os.close(fd)
    return examples


def _ends_cleanly(path: str, examples: list[Example]) -> bool:
    """What ``tar_damage`` finds of a tar whose headers ``tar_plan`` read (so every member lies within
    the file, and a zero block ends them): nothing, when the 64 KiB after the last example's data
    (padded to a block) are zeros, at least one block of them. False also for a tar whose last
    member is not an example's field (e.g. a metadata member): then ``tar_damage`` itself decides."""
    ends = [r.offset + -(-r.size // 512) * 512 for ex in examples for r in ex.payload.values()]
    end = max(ends, default=0)
    fd = os.open(path, os.O_RDONLY)
    try:
        after = os.pread(fd, 1 << 16, end)
    finally:
        os.close(fd)
    return len(after) >= 512 and not after.strip(b"\0")


def _shard_name(source, index: int) -> str:
    """A shard's name for messages: its file name, and its URL when it was read from one."""
    name, files = source.shards[index], getattr(source, "files", [])
    url = files[index] if len(files) == len(source.shards) else None
    return f"{name} ({url})" if url is not None and url != name and remote.is_remote(url) else name


def _problem(ex: Example, input_column: str, label_column: str, input_shape) -> str | None:
    if not isinstance(ex.key, str) or not ex.key:
        return "empty key"
    for bad, what in ((".", "'.'"), ("/", "'/'"), ("\\", "a backslash"), ("\x00", "a NUL byte")):
        if bad in ex.key:
            return f"key contains {what}"
    if ex.label is None:
        return f"no label ({label_column!r} missing)"
    if not isinstance(ex.label, (int, np.integer)) or isinstance(ex.label, bool):
        return f"label {ex.label!r} is not an integer"
    if ex.label < 0:
        return f"negative label {ex.label}"
    if input_column not in ex.payload or ex.payload[input_column] is None:
        return f"no input field {input_column!r}"
    if input_shape is not None:
        try:
            check_input(ex.payload[input_column], input_shape, name=input_column)
        except Exception as err:  # noqa: BLE001 - PIL, numpy and our checks raise many types
            return f"undecodable input ({type(err).__name__}: {str(err)[:200]})"
    return None


def _scan_shard(source, index: int, start: int, what: str, input_column: str, on_error: str, input_shape) -> dict:
    keys, labels, problems, errors, where = [], [], [], [], _shard_name(source, index)
    for ex in read_shard(source, index, start, what, on_error, errors, fields_only=input_shape is None):
        problem = _problem(ex, input_column, source.info.label_column, input_shape)
        if problem is not None:
            ErrorPolicy.of(on_error)(f"{what} example {ex.key!r} (shard {where}): {problem}")
        keys.append(str(ex.key))
        labels.append(int(ex.label) if problem is None else -1)
        problems.append(problem)
    return {"shard": index, "keys": keys, "labels": labels, "problems": problems, "errors": errors}


def _shard_starts(source) -> list[int] | None:
    """First position of every shard when it is known without reading them (or not needed)."""
    if getattr(source, "keys_from_position", True) is False:
        return [0] * len(source.shards)
    sizes = source.shard_sizes() if hasattr(source, "shard_sizes") else None
    return None if sizes is None else [int(x) for x in np.concatenate([[0], np.cumsum(sizes)[:-1]])]


def scan(source, what: str, *, input_column: str, on_error: str = "raise", world=None,
         input_shape=None) -> SplitIndex:
    """One pass over a split's keys, labels and fields, checking them as it goes.

    With ``input_shape`` every input is also checked the way the probes will decode it
    (:func:`~proxyds.sources.decode.check_input`), so bad input is found here, before any
    training, and every later pass sees exactly the examples the scan accepted.

    Under torchrun (``world``) each rank scans its shards and the results are gathered in
    shard order, so every rank ends with the same index; duplicate keys are found after the
    merge, the first occurrence in shard order winning.
    """
    n = len(source.shards)
    starts = _shard_starts(source)
    shards = world.shards(n) if world is not None and world.size > 1 and starts is not None else range(n)
    records, error, start = [], None, 0
    try:
        for index in progress(shards, desc=f"scan {what}", unit="shard"):
            rec = _scan_shard(source, index, starts[index] if starts else start, what, input_column, on_error,
                              input_shape)
            start += len(rec["keys"])
            records.append(rec)
    except BadInput as err:
        error = err
    if world is not None and world.size > 1:
        world.raise_together(error)
        if starts is not None:
            records = sorted((r for part in world.gather(records) for r in part), key=lambda r: r["shard"])
    elif error is not None:
        raise error
    keys, labels, shard_ids, status, errors, seen = [], [], [], [], [], set()
    for rec in records:
        errors += rec["errors"]
        for key, label, problem in zip(rec["keys"], rec["labels"], rec["problems"]):
            if problem is None and key in seen:
                ErrorPolicy.of(on_error)(f"{what} example {key!r} (shard {source.shards[rec['shard']]}): "
                                         f"duplicate key")
                problem, label = "duplicate key", -1
            seen.add(key)
            keys.append(key)
            labels.append(label)
            shard_ids.append(rec["shard"])
            status.append(OK if problem is None else f"skipped: {problem}")
    status = StatusColumn.from_strings(status)
    if not status.ok.any():
        raise BadInput(f"the {what} split of {source!r} has no usable examples "
                       f"({'it is empty' if not keys else f'all {len(keys)} were skipped'})")
    return SplitIndex(StringColumn.from_strings(keys), np.asarray(labels, np.int64), np.asarray(shard_ids, np.int32),
                      list(source.shards), status, errors)


def class_names(train_info, ref_info, train: SplitIndex, ref: SplitIndex, on_error: str) -> tuple[str, ...]:
    """Label names from the source's features, else "0".."C-1"; checks both splits against them.

    Without names, the number of classes comes from the usable examples only, after train
    labels absent from the reference split are set aside: with ``skip`` one stray label (a
    ``.cls`` of 99 in a 10-class set) is skipped and does not widen the class space."""
    names, ref_names = tuple(train_info.class_names), tuple(ref_info.class_names)
    if names and ref_names and names != ref_names:
        diff = next(i for i in range(min(len(names), len(ref_names)) + 1)
                    if i >= min(len(names), len(ref_names)) or names[i] != ref_names[i])
        raise BadInput(f"class names differ between the train and reference splits (first at label {diff}: "
                       f"{names[diff] if diff < len(names) else '<none>'!r} vs "
                       f"{ref_names[diff] if diff < len(ref_names) else '<none>'!r})")
    if names:
        for index, what in ((train, "train"), (ref, "reference")):
            _skip_labels(index, what, index.labels >= len(names), on_error, len(names))
    present = lambda ix: set(np.unique(ix.labels[ix.ok]).tolist())  # noqa: E731
    missing = sorted(present(train) - present(ref))
    if missing and not ErrorPolicy.of(on_error).skips:
        shown = [names[c] if c < len(names) else str(c) for c in missing][:10]
        raise BadInput(f"classes {shown} occur in train but not in the reference split; "
                       f"their examples could never be mapped to a reference example of their class")
    for pos in np.flatnonzero(np.isin(train.labels, missing) & train.ok):
        train.skip(pos, "class absent from the reference split")
    if names:
        return names
    num = max(int(ix.labels[ix.ok].max()) for ix in (train, ref)) + 1
    for ix in (train, ref):  # a skipped stray label (99 in a 10-class set) names no class: -1, as any unusable label
        ix.labels[ix.labels >= num] = -1
    return tuple(str(i) for i in range(num))


def _skip_labels(index: SplitIndex, what: str, bad: np.ndarray, on_error: str, num: int) -> None:
    for pos in np.flatnonzero(bad):
        ErrorPolicy.of(on_error)(f"{what} example {index.keys[pos]!r} (shard {index.shards[index.shard_ids[pos]]}) "
                                 f"has label {index.labels[pos]}, outside the {num} classes 0..{num - 1}", hint="")
        index.skip(pos, f"label {index.labels[pos]} out of range 0..{num - 1}")
        index.labels[pos] = -1


def _source_key(source, what: str, plan, check_inputs: bool = True) -> str | None:
    """Fingerprint of a split's files (path, size, mtime; a URL's size and checksum, e.g. its S3
    ETag); None when it has no files, or ``pipe:`` shards whose content nothing tells."""
    stats = remote.file_stats(getattr(source, "files", []))
    if not stats:
        return None
    unchecked = () if check_inputs else ("inputs not decoded",)
    return fingerprint("scan-v2", what, stats, source.info.label_column, plan.input_column, plan.on_error,
                       plan.config.key_column, list(plan.space.input_shape), *unchecked)


def cached_scan(plan, source, what: str, cache: StageCache, *, check_inputs: bool = True) -> tuple[SplitIndex, str]:
    """:func:`scan` of ``source``, or its cached result. ``check_inputs=False`` leaves decoding out
    of the scan (keys, labels and fields are still checked): for a build whose first pass over the
    inputs decodes every one of them anyway (every probe given), which applies the same rule."""
    key = _source_key(source, what, plan, check_inputs)
    hit = cache.load(f"scan-{what}", key) if key else None
    if hit is not None:
        return SplitIndex.from_arrays(hit[0], hit[1]["shard_errors"]), key
    index = scan(source, what, input_column=plan.input_column, on_error=plan.on_error, world=plan.world,
                 input_shape=plan.space.input_shape if check_inputs else None)
    key = key or fingerprint("scan", what, list(index.keys), index.labels.tobytes())  # as before: probe names use it
    if plan.world.main:
        cache.save(f"scan-{what}", key, index.to_arrays(), {"shard_errors": index.shard_errors})
    return index, key
