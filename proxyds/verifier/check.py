"""``proxyds verify OUT``: prove that a proxy directory is whole, consistent and readable.

A proxy is trusted downstream for hours of search; this re-derives everything proxy.json
claims from the bytes on disk. Checks, each mismatch a problem (never an exception):

1. **files**: proxy.json parses, has ``format_version`` 1 and its own ``content_sha256`` (a
   digest of its canonical content, :func:`proxyds.pipeline.write.record_digest`: the other
   digests live inside it, so this is what catches an edited summary or recipe; an output
   written before proxyds recorded it is a problem too: rebuild); every listed file exists
   as a regular file inside OUT with the recorded size and sha256; nothing else is in OUT,
   not even an empty folder; no symlinks anywhere.
2. **manifest**: the expected schema, no nulls; ``index`` is 0..N-1; usable keys unique;
   labels, cases and neighbours in range; ``keep_prob`` a distribution; its counts equal
   proxy.json's. Rows ``--on-error skip`` set aside (status ``skipped: <reason>``) are
   accepted as build writes them (case 0, neighbour -1, importance and keep_prob 0, no
   proxy label) and must not be selected.
3. **shards**: the train shards hold exactly the selected examples in manifest order (tar
   keys and labels; parquet labels), the reference split's (``test``, ``validation``, … as
   ``output.reference_split`` names it) ``num_reference`` examples; every tar
   member is a regular file with a plain relative name, so no extraction can leave OUT.
4. **readers**: ``datasets.load_dataset(OUT)`` (streamed, images left undecoded) and
   ``webdataset.WebDataset`` (no decoders, so nothing is unpickled) read every split.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

from proxyds.pipeline.write import CONTENT_DIGEST_FIELD, FORMAT_VERSION, record_digest
from proxyds.sinks.atomic import sha256_file
from proxyds.verifier.manifest import check_manifest, kept_classes
from proxyds.verifier.report import VerifyReport
from proxyds.verifier.shards import read_parquet, read_tars

__all__ = ["verify"]

log = logging.getLogger(__name__)



def split_names(record: dict) -> tuple[str, str]:
    """The output's splits: ``train`` (the proxy) and the reference split, under the input's name
    as proxy.json's ``output.reference_split`` records it (``test`` in outputs that predate it)."""
    output = record.get("output")
    return "train", output.get("reference_split", "test") if isinstance(output, dict) else "test"


def verify(out: str | Path) -> VerifyReport:
    """Check the proxy directory ``out`` against its proxy.json; see the module doc for the checks."""
    report = VerifyReport(Path(out))
    record = _read_record(report)
    if record is None:
        return report
    out = report.out
    log.info("verify %s: sha256 of %d files", out, len(record["files"]))
    with report.guard("files"):
        _check_files(out, record["files"], report)
    manifest = None
    with report.guard("manifest.parquet"):
        manifest = check_manifest(out, record, report)
    log.info("verify %s: manifest against the shards", out)
    with report.guard("shards"):
        _check_shards(out, record, manifest, report)
    log.info("verify %s: datasets and webdataset readers", out)
    with report.guard("readers"):
        _check_readers(out, record, report)
    return report


# -- 1. proxy.json and the files it lists ------------------------------------------------------


def _read_record(report: VerifyReport) -> dict | None:
    out, path = report.out, report.out / "proxy.json"
    if not out.is_dir():
        report.add(f"incomplete output: no proxy.json ({out} is not a directory)")
        return None
    if path.is_symlink() or not path.is_file():
        report.add(f"incomplete output: no proxy.json in {out} (a build writes it last; rebuild, or wait "
                   "for a running build to finish)")
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        report.add(f"proxy.json is not valid JSON: {err}")
        return None
    shape = _record_shape_problems(record)
    for problem in shape:
        report.add(f"proxy.json: {problem}")
    if not shape:
        _check_record_digest(record, report)
    return None if shape else record


def _check_record_digest(record: dict, report: VerifyReport) -> None:
    """proxy.json's own content (summary, recipe, config, file list) is what build wrote."""
    recorded = record.get(CONTENT_DIGEST_FIELD)
    if recorded is None:
        report.add(f"proxy.json has no content digest ({CONTENT_DIGEST_FIELD!r}; written by an older proxyds), "
                   "so edits to it cannot be detected; rebuild")
    elif recorded != record_digest(record):
        report.add(f"proxy.json: its content does not match its {CONTENT_DIGEST_FIELD} (recorded "
                   f"{str(recorded)[:16]}…): its summary, config or file list was edited or damaged")


def _record_shape_problems(record) -> list[str]:
    if not isinstance(record, dict):
        return [f"expected a JSON object, got {type(record).__name__}"]
    version = record.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        return [f"format_version is {version!r}; this proxyds reads version {FORMAT_VERSION}"]
    problems = []
    files = record.get("files")
    if not isinstance(files, dict):
        problems.append("'files' is missing or not an object")
    else:
        for rel, entry in files.items():
            if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and len(entry["sha256"]) == 64
                    and _is_count(entry.get("bytes"))):
                problems.append(f"files[{rel!r}] is not {{sha256: 64 hex digits, bytes: int >= 0}}: {entry!r}")
    splits = record.get("splits")
    names = split_names(record)
    if not isinstance(names[1], str) or names[1] == "train":
        problems.append(f"output.reference_split is {names[1]!r}; expected the reference split's name, not 'train'")
        names = names[:1]
    for split in names:
        s = splits.get(split) if isinstance(splits, dict) else None
        if not (isinstance(s, dict) and isinstance(s.get("files"), list) and _is_count(s.get("rows"))
                and all(isinstance(f, str) for f in s["files"])):
            problems.append(f"splits.{split} is missing or not {{files: [names], rows: int}}")
    summary = record.get("summary")
    if not isinstance(summary, dict):
        problems.append("'summary' is missing or not an object")
    else:
        for key in ("num_train", "num_selected", "num_reference"):
            if not _is_count(summary.get(key)):
                problems.append(f"summary.{key} is missing or not an int >= 0: {summary.get(key)!r}")
        if summary.get("format") not in ("parquet", "wds"):
            problems.append(f"summary.format is {summary.get('format')!r}, not 'parquet' or 'wds'")
        if not isinstance(summary.get("class_names"), list) or not summary["class_names"]:
            problems.append("summary.class_names is missing or empty")
    if not isinstance(record.get("config"), dict):
        problems.append("'config' is missing or not an object")
    return problems


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _plain_relpath(rel) -> bool:
    """A relative POSIX path with no '..', '.', empty or backslash parts: it cannot leave OUT."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel or rel.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def _check_files(out: Path, files: dict, report: VerifyReport) -> None:
    root = out.resolve()
    hashed = nbytes = 0
    for rel, entry in files.items():
        if not _plain_relpath(rel):
            report.add(f"proxy.json lists {rel!r}: not a plain relative path inside the output directory")
            continue
        path = out / rel
        try:
            st = path.lstat()
        except FileNotFoundError:
            report.add(f"{rel}: listed in proxy.json but missing")
            continue
        if stat.S_ISLNK(st.st_mode):
            continue  # reported by the walk below
        if not stat.S_ISREG(st.st_mode):
            report.add(f"{rel}: not a regular file")
            continue
        if not path.resolve().is_relative_to(root):
            report.add(f"{rel}: resolves outside the output directory (through a symlinked folder)")
            continue
        if st.st_size != entry["bytes"]:
            report.add(f"{rel}: size is {st.st_size:,} bytes, proxy.json records {entry['bytes']:,} (truncated "
                       "or modified)")
            continue
        try:
            digest = sha256_file(path)
        except OSError as err:
            report.add(f"{rel}: cannot be read: {err}")
            continue
        hashed, nbytes = hashed + 1, nbytes + st.st_size
        if digest != entry["sha256"]:
            report.add(f"{rel}: sha256 mismatch (proxy.json records {entry['sha256'][:16]}…, file has "
                       f"{digest[:16]}…): the file was modified or corrupted")
    for dirpath, dirnames, filenames in os.walk(out):  # never follows symlinked folders
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(out).as_posix()
            if path.is_symlink():
                report.add(f"{rel}: is a symlink (to {os.readlink(path)!r}); a proxy holds only regular files")
            elif name in dirnames and not any(path.iterdir()):
                report.add(f"{rel}/: an empty folder; a proxy holds only the files proxy.json lists")
            elif name in filenames and rel != "proxy.json" and rel not in files:
                report.add(f"{rel}: not listed in proxy.json (an extra or leftover file)")
    report.checked.update(files=hashed, bytes=nbytes)


# -- 2. the manifest: see proxyds/verifier/manifest.py ----------------------------------------
# -- 3. shards against the manifest ------------------------------------------------------------


def _label_field(record: dict) -> str:
    """The output's label column / tar field: as proxy.json records it, else resolved the way
    ``write_proxy`` does for hf:/wds: sources."""
    recorded = record.get("output", {}).get("label_column")
    if recorded:
        return recorded
    config, summary = record["config"], record["summary"]
    source = "wds" if str(summary.get("source", "")).startswith("wds:") else "hf"
    if summary["format"] == "wds" and source == "hf":
        return "cls"  # row_to_wds_fields writes the label as `cls`
    if summary["format"] == "parquet" and source == "wds":
        return "label"  # wds_fields_to_row names the label column `label`
    return config.get("label_column") or ("cls" if source == "wds" else "label")


def _split_paths(out: Path, record: dict, split: str, report: VerifyReport) -> list[Path] | None:
    """The split's shard paths, or None when one is badly named or missing (already reported)."""
    ext = "tar" if record["summary"]["format"] == "wds" else "parquet"
    paths, complete = [], True
    for name in record["splits"][split]["files"]:
        rel = f"data/{name}"
        if "/" in name or not name.startswith(f"{split}-") or not name.endswith(f".{ext}"):
            report.add(f"splits.{split} lists {name!r}; the dataset card only loads data/{split}-*.{ext}")
            complete = False
        elif rel not in record["files"]:
            report.add(f"{rel}: in splits.{split} but not listed (with its sha256) in proxy.json files")
            complete = False
        elif (out / rel).is_symlink() or not (out / rel).is_file():
            complete = False  # missing: reported by the file check
        else:
            paths.append(out / rel)
    report.checked[f"{split}_shards"] = len(paths)
    return paths if complete else None


def _check_shards(out: Path, record: dict, manifest: dict | None, report: VerifyReport) -> None:
    splits, summary = record["splits"], record["summary"]
    names = split_names(record)
    listed = {f"data/{n}" for s in names for n in splits[s]["files"]}
    for rel in record["files"]:
        if rel.startswith("data/") and rel not in listed:
            report.add(f"{rel}: in proxy.json files but in no split; load_dataset would still read it")
    label_field = _label_field(record)
    wds = summary["format"] == "wds"
    for split in names:
        paths = _split_paths(out, record, split, report)
        read = None if paths is None else (
            read_tars(out, paths, label_field, report) if wds
            else read_parquet(out, paths, label_field, split == "train", record, report))
        if read is None:
            continue  # a shard is missing or unreadable: reported
        keys, labels, per_shard = read
        counts = splits[split].get("counts")
        if counts is not None and list(counts) != per_shard:
            report.add(f"{split} shards hold {per_shard} examples each, proxy.json splits.{split}.counts says "
                       f"{list(counts)}")
        rows = sum(per_shard)
        report.checked[f"{split}_rows"] = rows
        if rows != splits[split]["rows"]:
            report.add(f"{split} shards hold {rows} examples, proxy.json splits.{split}.rows says "
                       f"{splits[split]['rows']}")
        if split != "train" and rows != _expected_test_rows(summary):
            report.add(f"{split} shards hold {rows} examples, expected {_expected_test_rows(summary)} (summary."
                       "num_reference, less the classes label reduction dropped)")
        if split == "train" and manifest is not None and labels is not None:
            _compare_with_manifest(keys, labels, manifest, label_field, report)


def _expected_test_rows(summary: dict) -> int:
    kept = kept_classes(summary)
    if kept is None:
        return summary["num_reference"]
    return int(sum(summary["classes"]["reference"][c] for c in kept))


def _compare_with_manifest(keys, labels, manifest: dict, label_field: str, report) -> None:
    """The train shards must hold exactly the manifest's selected examples, in manifest order."""
    sel = manifest["selected"].astype(bool)
    want_keys = manifest["key"][sel].tolist()
    want_labels = manifest.get("proxy_label", manifest["label"])[sel].tolist()
    what = f"keys and {label_field!r} labels" if keys is not None else f"{label_field!r} labels"
    got = list(zip(keys, labels)) if keys is not None else labels
    want = list(zip(want_keys, want_labels)) if keys is not None else want_labels
    if got == want:
        return
    if len(got) != len(want):
        report.add(f"train shards hold {len(got)} examples but the manifest selects {len(want)}")
    i = next((j for j, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    if i < min(len(got), len(want)):
        report.add(f"train shards differ from the manifest's selected examples ({what}) at position {i}: shard has "
                   f"{got[i]!r}, manifest selects {want[i]!r} (key {want_keys[i]!r})")


def _check_readers(out: Path, record: dict, report: VerifyReport) -> None:
    splits, names = record["splits"], split_names(record)
    with report.guard(f"datasets.load_dataset({str(out)!r})"):
        import datasets

        # Absolute: a relative OUT named like a packaged builder ("parquet", "json") would load that builder.
        loaded = datasets.load_dataset(str(out.absolute()), streaming=True)
        if set(loaded) != set(names):
            report.add(f"datasets.load_dataset({str(out)!r}) gives splits {sorted(loaded)}, expected "
                       f"{' and '.join(names)}")
        for split in names:
            if split in loaded:
                with report.guard(f"datasets.load_dataset({str(out)!r})[{split!r}]"):
                    n = sum(len(next(iter(b.values()))) for b in loaded[split].decode(False).iter(batch_size=1024))
                    if n != splits[split]["rows"]:
                        report.add(f"datasets.load_dataset({str(out)!r})[{split!r}] reads {n} rows, expected "
                                   f"{splits[split]['rows']}")
    if record["summary"]["format"] != "wds":
        return
    import webdataset as wds

    for split in names:
        urls = [str(out / "data" / n) for n in splits[split]["files"] if (out / "data" / n).is_file()]
        with report.guard(f"webdataset.WebDataset({split} shards)"):
            ds = wds.WebDataset(urls, shardshuffle=False, empty_check=False, nodesplitter=_identity,
                                workersplitter=_identity)  # no .decode(): raw bytes, nothing unpickled
            n = sum(1 for _ in ds)
            if n != splits[split]["rows"]:
                report.add(f"webdataset.WebDataset reads {n} {split} examples, expected {splits[split]['rows']}")


def _identity(urls):
    return urls
