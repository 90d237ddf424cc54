"""``proxyds info OUT``: a short summary for people, ``--json`` for scripts, one clear line when
OUT is not a proxyds output."""

from __future__ import annotations

import json
import shutil

import pytest

from proxyds.cli import main
from proxyds.info import format_info, read_info


def test_info_prints_the_counts_selector_probes_recipe_and_files(parquet_proxy, capsys):
    assert main(["info", str(parquet_proxy.out)]) == 0
    text = capsys.readouterr().out
    s = json.loads((parquet_proxy.out / "proxy.json").read_text())["summary"]
    assert f"train 480 examples (480 usable) -> selected {s['num_selected']}" in text
    assert "selector random, ratio 0.1, seed 0, space resnet1d" in text
    assert "split train: 48 rows in 8 files" in text and "split test: 120 rows in 8 files" in text
    assert "manifest: 480 rows, 48 selected, 0 skipped" in text
    assert "classes: 10 of 10 kept" in text
    for role, p in s["probes"].items():
        assert f"probe {role:6s} {p['config']:>14s}" in text and f"reference acc {p['reference_accuracy']:.4f}" in text
    assert f"recommended proxy training: {s['proxy_training']['text']}" in text
    assert "data/train-*-of-*.parquet" in text and "in 8 files" in text and "manifest.parquet" in text


def test_info_json_is_one_object_that_matches_the_output(parquet_proxy, capsys):
    assert main(["info", str(parquet_proxy.out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)  # the whole of stdout is one JSON object
    record = json.loads((parquet_proxy.out / "proxy.json").read_text())
    assert info["train"] == {"examples": 480, "usable": 480, "selected": record["summary"]["num_selected"]}
    assert (info["selector"], info["ratio"], info["seed"]) == ("random", 0.1, 0)
    assert info["classes"]["kept"] == [str(i) for i in range(10)] and info["classes"]["dropped"] == []
    on_disk = {p.relative_to(parquet_proxy.out).as_posix(): p.stat().st_size
               for p in parquet_proxy.out.rglob("*") if p.is_file()}
    assert info["files"] == on_disk and info["total_bytes"] == sum(on_disk.values())
    assert info["probes"]["upper"]["macs"] == record["summary"]["probes"]["upper"]["macs"]


def test_info_reports_dropped_classes(parquet_proxy, tmp_path):
    """An output whose record says label reduction dropped classes (edited copy: info reads, it does not verify)."""
    out = tmp_path / "proxy"
    shutil.copytree(parquet_proxy.out, out)
    record = json.loads((out / "proxy.json").read_text())
    record["summary"]["label_reduction"].update(applied=True, reason="kept 8 of 10 classes; DROPPED 2",
                                                kept_classes=[str(i) for i in range(8)], dropped_classes=["8", "9"])
    (out / "proxy.json").write_text(json.dumps(record))
    text = format_info(read_info(out))
    assert "classes: 8 of 10 kept; dropped 8, 9" in text and "label reduction: kept 8 of 10 classes" in text


@pytest.mark.parametrize("make,message", [
    (lambda d: d, "is not a proxyds output: it has no proxy.json"),
    (lambda d: d / "missing", "is not a directory"),
    (lambda d: (d / "proxy.json").write_text("{not json") and d, "is not valid JSON"),
    (lambda d: (d / "proxy.json").write_text('{"a": 1}') and d, "is not a proxyds record"),
])
def test_not_an_output_is_one_line_and_exit_1(tmp_path, capsys, make, message):
    out = make(tmp_path)
    assert main(["info", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("proxyds info: error: ") and message in err and err.count("\n") == 1
