"""A build's plan: its config resolved against the preset (sources opened, space and format
chosen), and the input paths OUT must stay clear of. Nothing is read yet."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from proxyds.config import BuildConfig
from proxyds.pipeline.distributed import World
from proxyds.presets import get_preset
from proxyds.sources import open_source
from proxyds.sources.remote import is_remote
from proxyds.spaces import resolve_space

__all__ = ["Plan", "resolve", "input_paths"]


@dataclass
class Plan:
    """A build's inputs, resolved from its config (preset defaults filled in)."""

    config: BuildConfig
    spec: str
    train: object
    reference: object
    input_column: str
    space: object
    format: str
    world: World = field(default_factory=World)

    @property
    def on_error(self) -> str:
        return self.config.on_error


def resolve(config: BuildConfig) -> Plan:
    """Open both splits and fill the preset's defaults into what the config left open."""
    located = None
    if ":" in config.dataset:
        if config.data is not None:
            raise ValueError("--data is for presets; with a hf:/wds: source, put the path in the source itself")
        spec = config.dataset
    else:
        preset = get_preset(config.dataset)
        located = preset.locate(config.data)
        spec = located.spec

    def pick(name: str, fallback):
        value = getattr(config, name)
        if value is not None:
            return value
        if name == "space" and located is not None:
            return preset.space
        return getattr(located, name, None) or fallback

    label_column = pick("label_column", None)
    train = open_source(spec, pick("train_split", "train"), label_column=label_column, key_column=config.key_column)
    reference = open_source(config.reference or spec, pick("reference_split", "test"), label_column=label_column,
                            key_column=config.key_column)
    input_column = pick("input_column", None)
    if input_column is None:
        raise ValueError("--input-column is required for a hf:/wds: source (the field the probes read)")
    space_name = pick("space", None)
    if space_name is None:
        raise ValueError("--space is required for a hf:/wds: source; see `proxyds spaces`")
    fmt = config.format or ("wds" if spec.startswith("wds:") else "parquet")
    return Plan(config, spec, train, reference, input_column, resolve_space(space_name), fmt)


def input_paths(plan: Plan) -> list[str]:
    """The local input directories (``hf:DIR``, ``wds:DIR``, a preset's data) and files the build
    reads: OUT must not be, contain or (for a directory) lie inside any of them. URLs and ``pipe:``
    commands are left out: OUT is always a local or shared filesystem path."""
    paths = []
    for source in (plan.train, plan.reference):
        location = os.path.expanduser(getattr(source, "location", ""))
        if location and not is_remote(location) and os.path.isdir(location):
            paths.append(location)
        paths += [f for f in getattr(source, "files", []) if not is_remote(f)]
    return sorted(set(paths))
