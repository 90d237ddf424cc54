"""``proxyds verify``: an untouched proxy passes; every kind of damage is named, never raised."""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest

from proxyds.pipeline.build import build
from proxyds.cli import main
from proxyds.sinks import sha256_file
from proxyds.verifier.check import verify

from helpers import rehash, rewrite_manifest, tiny_config

FORMATS = ("parquet", "wds")


@pytest.fixture(scope="module")
def built(parquet_proxy, tmp_path_factory):
    """One tiny proxy per format: the session's parquet proxy, and a wds one built on a copy of its
    work dir, so it reuses the probes."""
    root = tmp_path_factory.mktemp("verify")
    # Parquet without label reduction, wds with it (3 of the 10 classes kept, renumbering the labels and
    # dropping classes from the test split; auto leaves 10 classes whole): both shapes of output are verified.
    outs = {"parquet": parquet_proxy.out, "wds": root / "wds"}
    shutil.copytree(parquet_proxy.workdir, root / "work")
    build(tiny_config(f"hf:{parquet_proxy.src}", outs["wds"], format="wds", label_reduction="3"))
    return outs


@pytest.fixture(params=FORMATS)
def out(request, built, tmp_path):
    """A private copy of the built proxy, free to damage."""
    return shutil.copytree(built[request.param], tmp_path / request.param, symlinks=True)


def _record(out) -> dict:
    return json.loads((out / "proxy.json").read_text())


def _train_shards(out) -> list[str]:
    return [f"data/{name}" for name in _record(out)["splits"]["train"]["files"]]


def _problems(out) -> str:
    report = verify(out)
    assert not report.ok
    return "\n".join(report.problems)


def test_untouched_output_verifies(out):
    report = verify(out)
    assert report.ok, report.problems
    record = _record(out)
    assert report.checked["files"] == len(record["files"])
    assert report.checked["manifest_rows"] == 480
    assert report.checked["train_rows"] == report.checked["selected"] == 48
    assert report.checked["test_rows"] == record["splits"]["test"]["rows"]
    reduced = record["summary"]["label_reduction"]["applied"]
    assert reduced == (out.name == "wds")  # both kinds of output are covered
    assert (report.checked["test_rows"] < 120) == reduced
    assert verify(str(out)).ok  # a str path works too


def test_flipped_byte_in_a_shard_is_caught(out):
    rel = _train_shards(out)[1]
    data = bytearray((out / rel).read_bytes())
    data[len(data) // 2] ^= 0x01
    (out / rel).write_bytes(bytes(data))
    problems = _problems(out)
    assert f"{rel}: sha256 mismatch" in problems


def test_deleted_shard_is_caught(out):
    rel = _train_shards(out)[0]
    split = json.loads((out / "proxy.json").read_text())["splits"]["train"]
    left = 48 - split.get("counts", [6])[0]  # parquet and wds alike: 8 shards of 6
    (out / rel).unlink()
    problems = _problems(out)
    assert f"{rel}: listed in proxy.json but missing" in problems
    assert f"reads {left} rows, expected 48" in problems or f"reads {left} train examples" in problems


def test_edited_manifest_is_caught_even_with_its_sha256_rewritten(out):
    selected = pq.read_table(out / "manifest.parquet")["selected"].to_numpy()
    flipped = selected.copy()
    flipped[np.flatnonzero(selected)[0]] = False
    rewrite_manifest(out, selected=flipped)
    problems = _problems(out)
    assert "manifest.parquet: sha256 mismatch" in problems or "manifest.parquet: size is" in problems
    assert "number of selected rows is 47" in problems

    # Hide the edit from the sha256 and keep the count: swap one selected row for an unselected
    # one of another kept class. Only the shards' contents can tell.
    m = pq.read_table(out / "manifest.parquet").to_pydict()
    label = np.asarray(m.get("proxy_label", m["label"]))
    i = int(np.flatnonzero(selected)[0])
    j = int(np.flatnonzero(~selected & (label >= 0) & (label != label[i]))[0])
    swapped = selected.copy()
    swapped[i], swapped[j] = False, True
    rewrite_manifest(out, selected=swapped)
    rehash(out, "manifest.parquet")
    problems = _problems(out)
    assert "sha256" not in problems
    assert "train shards differ from the manifest's selected examples" in problems


@pytest.mark.parametrize("mutate,message", [
    (lambda m: {"keep_prob": np.asarray(m["keep_prob"]) * 2}, "keep_prob sums to"),
    (lambda m: {"key": [m["key"][1]] + m["key"][1:]}, "occurs more than once"),
    (lambda m: {"case": [5] + m["case"][1:]}, "case values are outside 1..4"),
    (lambda m: {"index": np.asarray(m["index"]) + 1}, "index is not 0..479"),
    (lambda m: {"keep_prob": [float("nan")] + m["keep_prob"][1:]}, "keep_prob has 1 values that are negative, NaN"),
])
def test_manifest_invariants_are_checked(built, tmp_path, mutate, message):
    out = shutil.copytree(built["parquet"], tmp_path / "p")
    rewrite_manifest(out, **mutate(pq.read_table(out / "manifest.parquet").to_pydict()))
    rehash(out, "manifest.parquet")
    assert message in _problems(out)


def test_extra_files_and_symlinks_are_caught(out):
    (out / "data" / "notes.txt").write_text("hello")
    (out / ".hidden").write_text("")
    (out / "data" / "link.parquet").symlink_to(out / "manifest.parquet")
    problems = _problems(out)
    assert "data/notes.txt: not listed in proxy.json" in problems
    assert ".hidden: not listed in proxy.json" in problems
    assert "data/link.parquet: is a symlink" in problems


@pytest.mark.parametrize("edit", [
    lambda r: r["summary"].update(num_selected=r["summary"]["num_selected"] + 1),
    lambda r: r["summary"]["proxy_training"].update(text="train for 10x as long"),
    lambda r: r["config"].update(ratio=0.5),
])
def test_edited_proxy_json_is_caught(out, edit):
    record = _record(out)
    edit(record)
    (out / "proxy.json").write_text(json.dumps(record, indent=1) + "\n")
    assert "proxy.json: its content does not match its content_sha256" in _problems(out)


def test_proxy_json_digest_ignores_layout_but_must_be_there(out):
    record = _record(out)
    (out / "proxy.json").write_text(json.dumps(record, sort_keys=True, ensure_ascii=False))  # same content
    assert verify(out).ok, verify(out).problems
    del record["content_sha256"]  # as written before proxyds recorded it
    (out / "proxy.json").write_text(json.dumps(record, indent=1) + "\n")
    assert _problems(out).startswith("proxy.json has no content digest")


def test_empty_folders_are_caught(out):
    (out / "data" / "leftover").mkdir()
    (out / "extra" / "deeper").mkdir(parents=True)
    problems = _problems(out)
    assert "data/leftover/: an empty folder" in problems
    assert "extra/deeper/: an empty folder" in problems


def test_listed_path_outside_out_is_caught(built, tmp_path):
    out = shutil.copytree(built["parquet"], tmp_path / "p")
    (tmp_path / "secret").write_text("x")
    record = _record(out)
    record["files"]["../secret"] = {"sha256": sha256_file(tmp_path / "secret"), "bytes": 1}
    (out / "proxy.json").write_text(json.dumps(record))
    assert "lists '../secret': not a plain relative path inside the output directory" in _problems(out)


def test_missing_proxy_json_or_out_is_incomplete(built, tmp_path):
    out = shutil.copytree(built["parquet"], tmp_path / "p")
    (out / "proxy.json").unlink()
    report = verify(out)
    assert not report.ok and report.problems[0].startswith("incomplete output: no proxy.json")
    report = verify(tmp_path / "nowhere")
    assert not report.ok and report.problems[0].startswith("incomplete output: no proxy.json")
    (out / "proxy.json").write_text("{not json")
    assert "proxy.json is not valid JSON" in _problems(out)
    (out / "proxy.json").write_text(json.dumps({"format_version": 2}))
    assert "format_version is 2" in _problems(out)


def _add_member(path, info: tarfile.TarInfo, data: bytes = b"") -> None:
    """Rewrite the tar at ``path`` with one more member appended."""
    buf = io.BytesIO()
    with tarfile.open(path) as src, tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for m in src:
            dst.addfile(m, src.extractfile(m))
        info.size = len(data)
        dst.addfile(info, io.BytesIO(data) if info.isreg() else None)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("name,kind", [
    ("../evil.cls", tarfile.REGTYPE),
    ("/etc/evil.cls", tarfile.REGTYPE),
    ("sub/evil.cls", tarfile.REGTYPE),
    ("evil.cls", tarfile.SYMTYPE),
    ("evil", tarfile.DIRTYPE),
])
def test_unsafe_tar_members_are_reported(built, tmp_path, name, kind):
    out = shutil.copytree(built["wds"], tmp_path / "w")
    rel = _train_shards(out)[0]
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
    _add_member(out / rel, info, b"3" if kind == tarfile.REGTYPE else b"")
    rehash(out, rel)
    problems = _problems(out)
    assert f"{rel}: member {name!r} is not" in problems


def test_broken_card_is_caught_by_the_reader(built, tmp_path):
    out = shutil.copytree(built["parquet"], tmp_path / "p")
    card = out / "README.md"
    card.write_text(card.read_text().replace("data/train-*", "data/nothing-*"))
    rehash(out, "README.md")
    assert "datasets.load_dataset(" in _problems(out)


def test_cli_verify_exit_codes_and_report(built, tmp_path, capsys):
    assert main(["verify", str(built["parquet"])]) == 0
    printed = capsys.readouterr().out
    assert ": OK (checked: files " in printed and "train rows 48" in printed

    out = shutil.copytree(built["wds"], tmp_path / "w")
    (out / _train_shards(out)[2]).unlink()
    (out / "extra.txt").write_text("x")
    assert main(["verify", str(out)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "  extra.txt: not listed in proxy.json (an extra or leftover file)" in lines
    assert any(line.startswith("  data/train-000002.tar: listed in proxy.json but missing") for line in lines)
    assert "FAILED" in lines[-1] and "problems" in lines[-1]

    assert main(["verify", str(tmp_path / "nowhere")]) == 1
    assert "incomplete output: no proxy.json" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["verify"])
    assert exit_.value.code == 2


def test_unreadable_shard_is_named(out):
    rel = _train_shards(out)[0]
    (out / rel).write_bytes(b"this is not a shard" * 100)
    rehash(out, rel)
    problems = _problems(out)
    assert f"{rel}: cannot be read as {'a tar' if rel.endswith('.tar') else 'parquet'}" in problems
