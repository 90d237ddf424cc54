"""``proxyds verify`` on outputs built with ``on_error="skip"``: what build writes for skipped
rows passes; a skipped row that is drawn, or a selection the shards do not hold, does not."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from proxyds.pipeline.build import build
from proxyds.verifier.check import verify

from helpers import rehash, rewrite_manifest, tiny_config, trained_probes, write_wds_copy

NAMES = [str(i) for i in range(10)]


def _npy(arr) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


# train position -> how that example is damaged (every kind is skipped, none stops the build)
WDS_DAMAGE = {
    5: lambda k, f: (k, {**f, "x.npy": _npy(np.full(40, np.nan, np.float32))}),  # NaN input
    17: lambda k, f: (k, {**f, "x.npy": b"not an npy file"}),  # undecodable bytes
    30: lambda k, f: (k, {**f, "cls": b"seven"}),  # text label
    41: lambda k, f: (k, {"cls": f["cls"]}),  # no input field
    200: lambda k, f: ("train-00000003", f),  # duplicate key
}


def _wds_edit(split, i, key, fields):
    damage = WDS_DAMAGE.get(i) if split == "train" else None
    return (key, fields) if damage is None else damage(key, fields)


def _write_parquet(root, split, labels):
    """A hf parquet split whose labels may lie outside its ClassLabel names."""
    from datasets import ClassLabel, Features, List, Value

    features = Features({"x": List(Value("float32"), length=40), "label": ClassLabel(names=NAMES)})
    rng = np.random.default_rng(len(labels))
    table = {"x": rng.normal(size=(len(labels), 40)).astype(np.float32).tolist(), "label": list(labels)}
    (root / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(table, schema=features.arrow_schema), root / "data" / f"{split}-00000-of-00001.parquet")


@pytest.fixture(scope="module")
def skipped_outputs(parquet_proxy, tmp_path_factory):
    """Skip-mode outputs: damaged wds input written as wds and as parquet (probes loaded from
    parquet_proxy, trained on the same data); hf input with an out-of-range label and a class
    absent from the reference split, written as parquet."""
    tiny_mnist1d = parquet_proxy.src
    root = tmp_path_factory.mktemp("verify-skip")
    src = write_wds_copy(tiny_mnist1d, root / "wds-src", edit=_wds_edit)
    hf = root / "hf-src"
    _write_parquet(hf, "train", [i % 10 for i in range(119)] + [12])
    _write_parquet(hf, "test", [i % 9 for i in range(60)])
    outs = {name: root / name for name in ("wds", "wds-as-parquet", "hf-parquet")}
    wds = dict(input_column="x.npy", on_error="skip", probe_checkpoints=trained_probes(parquet_proxy))
    build(tiny_config(f"wds:{src}", outs["wds"], **wds))
    build(tiny_config(f"wds:{src}", outs["wds-as-parquet"], format="parquet", **wds))
    build(tiny_config(f"hf:{hf}", outs["hf-parquet"], on_error="skip", label_reduction="auto", ratio=0.2))
    return outs


@pytest.fixture(params=["wds", "wds-as-parquet", "hf-parquet"])
def out(request, skipped_outputs, tmp_path):
    return shutil.copytree(skipped_outputs[request.param], tmp_path / request.param)


def _manifest(out) -> dict:
    return pq.read_table(out / "manifest.parquet").to_pydict()


def _problems(out) -> str:
    report = verify(out)
    assert not report.ok
    return "\n".join(report.problems)


def test_skip_mode_outputs_verify(out):
    status = _manifest(out)["status"]
    skipped = [s for s in status if s != "ok"]
    assert len(skipped) == (12 if out.name == "hf-parquet" else len(WDS_DAMAGE))  # the damage is there
    assert all(s.startswith("skipped: ") for s in skipped)
    report = verify(out)
    assert report.ok, report.problems
    assert report.checked["manifest_rows"] == len(status)


@pytest.mark.parametrize("unselect_one", [True, False])
def test_skipped_row_marked_selected_is_caught(out, unselect_one):
    m = _manifest(out)
    selected = np.asarray(m["selected"])
    skipped = np.flatnonzero(np.asarray(m["status"]) != "ok")
    selected[skipped[0]] = True
    if unselect_one:  # keep the count, so only the row itself and the shards can tell
        selected[np.flatnonzero(selected & (np.asarray(m["status"]) == "ok"))[0]] = False
    rewrite_manifest(out, selected=selected)
    rehash(out, "manifest.parquet")
    problems = _problems(out)
    assert "sha256" not in problems
    assert "1 skipped rows are marked selected" in problems
    if unselect_one:
        assert "train shards differ from the manifest's selected examples" in problems
    else:
        assert "train shards hold" in problems and "but the manifest selects" in problems


def test_skipped_row_with_keep_prob_is_caught(out):
    m = _manifest(out)
    keep = np.asarray(m["keep_prob"])
    i, j = np.flatnonzero(np.asarray(m["status"]) != "ok")[0], int(np.argmax(keep))
    keep[i], keep[j] = keep[j], 0.0  # still sums to 1: the sampler would draw a skipped example
    rewrite_manifest(out, keep_prob=keep)
    rehash(out, "manifest.parquet")
    assert "1 skipped rows have importance or keep_prob other than 0" in _problems(out)
