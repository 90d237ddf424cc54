"""Bad input: a clear error naming the example or shard, or with on_error="skip" a counted skip
that the manifest and proxy.json account for."""

from __future__ import annotations

import errno
import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from proxyds.pipeline.build import build
from proxyds.pipeline.scan import BadInput

from helpers import tiny_config, write_wds_copy


def wds_config(src, out, **kw):
    return tiny_config(f"wds:{src}", out, input_column="x.npy", **kw)


def _manifest(out):
    return pq.read_table(out / "manifest.parquet").to_pandas()


def test_truncated_tar(tiny_mnist1d, tmp_path):
    src = write_wds_copy(tiny_mnist1d, tmp_path / "wds")
    shard = src / "train-000001.tar"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(BadInput, match=r"train shard train-000001.tar is damaged: (not a readable tar|corrupt or truncated)"):
        build(wds_config(src, tmp_path / "out"))
    result = build(wds_config(src, tmp_path / "skip", on_error="skip"))
    errors = result.summary["skipped"]["shards"]
    assert [e["shard"] for e in errors] == ["train-000001.tar"]
    m = _manifest(tmp_path / "skip")
    assert 320 < len(m) < 480  # the readable part of the damaged shard is kept and accounted for
    # the example cut in half by the truncation is listed, as skipped
    assert m["status"].str.startswith("skipped: no input field").sum() == 1
    record = json.loads((tmp_path / "skip" / "proxy.json").read_text())
    assert record["summary"]["skipped"]["shards"] == errors


@pytest.mark.parametrize("problem,edit,message", [
    ("missing label", lambda s, i, k, f: (k, {n: v for n, v in f.items() if n != "cls"}) if (s, i) == ("train", 5) else (k, f),
     "no label"),
    ("text label", lambda s, i, k, f: (k, {**f, "cls": b"seven"}) if (s, i) == ("train", 5) else (k, f),
     "is not an integer"),
    ("negative label", lambda s, i, k, f: (k, {**f, "cls": b"-1"}) if (s, i) == ("train", 5) else (k, f),
     "negative label -1"),
    ("garbage input", lambda s, i, k, f: (k, {**f, "x.npy": b"not an npy file"}) if (s, i) == ("train", 5) else (k, f),
     "undecodable input"),
    ("NaN input", lambda s, i, k, f: (k, {**f, "x.npy": _npy(np.full(40, np.nan, np.float32))})
     if (s, i) == ("train", 5) else (k, f), "NaN or infinite"),
    ("no input field", lambda s, i, k, f: (k, {"cls": f["cls"]}) if (s, i) == ("train", 5) else (k, f),
     "no input field 'x.npy'"),
])
def test_bad_example_is_named_or_skipped(tiny_mnist1d, tmp_path, problem, edit, message):
    src = write_wds_copy(tiny_mnist1d, tmp_path / "wds", edit=edit)
    with pytest.raises(BadInput, match=rf"train example 'train-00000005' \(shard train-000000.tar\).*{message}"):
        build(wds_config(src, tmp_path / "out"))
    result = build(wds_config(src, tmp_path / "skip", on_error="skip"))
    m = _manifest(tmp_path / "skip")
    assert len(m) == 480  # every example accounted for
    bad = m[m["key"] == "train-00000005"].iloc[0]
    assert bad["status"].startswith("skipped: ") and message in bad["status"]
    assert not bad["selected"] and bad["importance"] == 0 and bad["keep_prob"] == 0
    assert (m["status"] == "ok").sum() == 479
    assert m["selected"].sum() == 48  # round(0.1 * 479 usable)
    assert sum(result.summary["skipped"]["train"].values()) == 1


def _npy(arr):
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def test_duplicate_key_across_shards(tiny_mnist1d, tmp_path):
    src = write_wds_copy(tiny_mnist1d, tmp_path / "wds",
                         edit=lambda s, i, k, f: ("train-00000003", f) if (s, i) == ("train", 200) else (k, f))
    with pytest.raises(BadInput, match=r"'train-00000003' \(shard train-000001.tar\): duplicate key"):
        build(wds_config(src, tmp_path / "out"))
    build(wds_config(src, tmp_path / "skip", on_error="skip"))
    m = _manifest(tmp_path / "skip")
    assert len(m) == 480 and m.loc[200, "status"] == "skipped: duplicate key"


def _write_parquet(root, split, labels, names, keys=None):
    from datasets import ClassLabel, Features, List, Value

    fields = {"x": List(Value("float32"), length=40), "label": ClassLabel(names=names)}
    if keys is not None:
        fields["id"] = Value("string")
    features = Features(fields)
    rng = np.random.default_rng(len(labels))
    table = {"x": rng.normal(size=(len(labels), 40)).astype(np.float32).tolist(), "label": list(labels)}
    if keys is not None:
        table["id"] = keys
    (root / "data").mkdir(parents=True, exist_ok=True)
    # pyarrow directly: ClassLabel.encode_example would refuse the out-of-range labels under test
    pq.write_table(pa.table(table, schema=features.arrow_schema), root / "data" / f"{split}-00000-of-00001.parquet")


NAMES = [str(i) for i in range(10)]


def test_label_out_of_range(tmp_path):
    _write_parquet(tmp_path / "src", "train", [i % 10 for i in range(99)] + [12], NAMES)
    _write_parquet(tmp_path / "src", "test", [i % 10 for i in range(50)], NAMES)
    with pytest.raises(BadInput, match=r"train example 'train-00000099' .* label 12, outside the 10 classes"):
        build(tiny_config(f"hf:{tmp_path / 'src'}", tmp_path / "out"))
    r = build(tiny_config(f"hf:{tmp_path / 'src'}", tmp_path / "skip", on_error="skip"))
    assert r.summary["skipped"]["train"] == {"skipped: label 12 out of range 0..9": 1}


def test_key_with_dot(tmp_path):
    keys = [f"k{i}" for i in range(100)]
    keys[7] = "k.7"
    _write_parquet(tmp_path / "src", "train", [i % 10 for i in range(100)], NAMES, keys)
    _write_parquet(tmp_path / "src", "test", [i % 10 for i in range(50)], NAMES, [f"t{i}" for i in range(50)])
    with pytest.raises(BadInput, match=r"train example 'k\.7' .*key contains '\.'"):
        build(tiny_config(f"hf:{tmp_path / 'src'}", tmp_path / "out", key_column="id"))


def test_class_names_differ_between_splits(tmp_path):
    _write_parquet(tmp_path / "src", "train", [i % 10 for i in range(100)], NAMES)
    _write_parquet(tmp_path / "src", "test", [i % 10 for i in range(50)], NAMES[:9] + ["nine"])
    with pytest.raises(BadInput, match=r"class names differ .*first at label 9: '9' vs 'nine'"):
        build(tiny_config(f"hf:{tmp_path / 'src'}", tmp_path / "out"))


def test_class_absent_from_reference_is_skipped_with_skip(tmp_path):
    _write_parquet(tmp_path / "src", "train", [i % 10 for i in range(100)], NAMES)
    _write_parquet(tmp_path / "src", "test", [i % 9 for i in range(50)], NAMES)
    with pytest.raises(BadInput, match=r"classes \['9'\] occur in train but not in the reference split"):
        build(tiny_config(f"hf:{tmp_path / 'src'}", tmp_path / "out"))
    r = build(tiny_config(f"hf:{tmp_path / 'src'}", tmp_path / "skip", on_error="skip"))
    assert r.summary["skipped"]["train"] == {"skipped: class absent from the reference split": 10}


def test_tiny_ratio_warns_which_classes_get_nothing(tiny_mnist1d, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="proxyds.pipeline.build"):
        r = build(tiny_config(f"hf:{tiny_mnist1d}", tmp_path / "out", ratio=0.01))
    assert r.summary["num_selected"] == 5 and len(r.summary["classes_without_examples"]) >= 5
    assert "without any example" in caplog.text and r.summary["classes_without_examples"][0] in caplog.text


def test_disk_full_leaves_no_output(tiny_mnist1d, tmp_path, monkeypatch):
    from proxyds.sinks import parquet

    calls = []

    def full(original):  # rows come in one by one (write) or as Arrow tables (write_table)
        def write(self, rows):
            calls.append(1)
            if len(calls) > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            return original(self, rows)
        return write

    for method in ("write", "write_table"):
        monkeypatch.setattr(parquet.ParquetShardWriter, method, full(getattr(parquet.ParquetShardWriter, method)))
    with pytest.raises(OSError, match="No space left"):
        build(tiny_config(f"hf:{tiny_mnist1d}", tmp_path / "out"))
    assert len(calls) == 4 and not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_probe_checkpoint_that_does_not_fit(tiny_mnist1d, tmp_path):
    import torch

    from proxyds.spaces import get_space

    wrong = tmp_path / "lower.pt"
    torch.save(get_space("resnet1d").build("B8-K3-M2", 10).state_dict(), wrong)
    with pytest.raises(BadInput, match=r"checkpoint .*lower.pt does not fit the upper probe \(resnet1d B32-K5-M4"):
        build(tiny_config(f"hf:{tiny_mnist1d}", tmp_path / "out", probe_checkpoints=(f"upper={wrong}",)))
    with pytest.raises(ValueError, match=r"unknown probes \['middle'\]"):
        build(tiny_config(f"hf:{tiny_mnist1d}", tmp_path / "out", probe_checkpoints=(f"middle={wrong}",)))


def test_given_probe_checkpoints_are_used(parquet_proxy, tmp_path):
    tiny_mnist1d, first = parquet_proxy.src, parquet_proxy.result  # a default build, with its probes in workdir
    work = parquet_proxy.workdir / "probes"
    lower, upper = (next(work.glob(f"resnet1d-{c}-*.pt")) for c in ("B8-K3-M2", "B32-K5-M4"))
    second = build(tiny_config(f"hf:{tiny_mnist1d}", tmp_path / "b", workdir=tmp_path / "fresh",
                               probe_checkpoints=(f"lower={lower}", f"upper={upper}")))
    assert second.summary["probes"] == first.summary["probes"]
    assert (parquet_proxy.out / "manifest.parquet").read_bytes() == (tmp_path / "b" / "manifest.parquet").read_bytes()
    assert not (tmp_path / "fresh" / "probes").exists()  # nothing trained
