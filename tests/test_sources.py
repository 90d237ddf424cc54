"""Sources stream examples in a stable order with stable keys; the mnist1d preset is generated locally."""

from __future__ import annotations

import random

import numpy as np
import pytest

from proxyds.sources import open_source
from proxyds.presets import materialize_mnist1d


def test_hf_source_keys_shards_and_order(tiny_mnist1d):
    src = open_source(f"hf:{tiny_mnist1d}", "train")
    assert src.shards == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    first = list(src)
    assert [ex.key for ex in first] == [f"train-{i:08d}" for i in range(480)]
    assert [ex.shard for ex in first[::160]] == src.shards
    assert [ex.key for ex in src] == [ex.key for ex in first]  # same order every pass
    assert all(isinstance(ex.label, int) and 0 <= ex.label < 10 for ex in first)
    assert set(first[0].payload) == {"x", "label"} and len(first[0].payload["x"]) == 40
    assert src.info.class_names == tuple(str(i) for i in range(10))


def test_split_pattern_source(tiny_mnist1d):
    src = open_source(f"hf:{tiny_mnist1d}/data/{{split}}-*.parquet", "test")
    assert sum(1 for _ in src) == 120


@pytest.mark.parametrize("spec,error,match", [
    ("nope:/x", ValueError, "hf:LOCATION or wds:LOCATION"),
    ("hf:/does/not/exist", FileNotFoundError, "no such directory"),
    ("wds:/does/not/exist-{000..002}.tar", FileNotFoundError, "do not exist"),
])
def test_bad_specs_are_named(spec, error, match):
    with pytest.raises(error, match=match):
        open_source(spec, "train")


def test_mnist1d_is_cached_and_leaves_global_rng_alone(tmp_path):
    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(123)
    first = materialize_mnist1d({"num_samples": 200}, root=tmp_path)
    assert (np.random.random(), random.random()) == (expected_np, expected_py)
    stamp = (first / "proxyds-cache.json").stat().st_mtime_ns
    assert materialize_mnist1d({"num_samples": 200}, root=tmp_path) == first
    assert (first / "proxyds-cache.json").stat().st_mtime_ns == stamp  # reused, not regenerated
    assert sum(1 for _ in open_source(f"hf:{first}", "train")) == 160
    with pytest.raises(ValueError, match="unknown mnist1d arguments"):
        materialize_mnist1d({"bogus": 1}, root=tmp_path)


def _copy(tiny_mnist1d, tmp_path):
    import shutil

    return shutil.copytree(tiny_mnist1d, tmp_path / "ds", ignore=shutil.ignore_patterns("README.md"))


def test_card_with_a_python_yaml_tag_is_refused_in_one_line_and_never_run(tiny_mnist1d, tmp_path, capsys):
    from proxyds.cli import main

    src, marker = _copy(tiny_mnist1d, tmp_path), tmp_path / "PWNED"
    (src / "README.md").write_text(f"---\nlicense: mit\npretty_name: !!python/object/apply:os.system ['touch {marker}']"
                                   f"\n---\n# card\n")
    with pytest.raises(ValueError, match=r"dataset card .*README\.md: its YAML header cannot be read safely \(line 3\).*"
                                         r"python/object/apply:os\.system"):
        open_source(f"hf:{src}", "train")
    code = main(["build", f"hf:{src}", "--space", "resnet1d", "--input-column", "x", "--ratio", "0.1",
                 "--out", str(tmp_path / "o"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "README.md" in err and "Traceback" not in err
    assert not marker.exists()


@pytest.mark.parametrize("header,match", [
    ("- a\n- b", "its YAML header must be a mapping"),
    ("configs: [", "cannot be read safely"),
    ("dataset_info: [1]", "datasets cannot read it"),
])
def test_malformed_cards_are_named(tiny_mnist1d, tmp_path, header, match):
    src = _copy(tiny_mnist1d, tmp_path)
    (src / "README.md").write_text(f"---\n{header}\n---\n")
    with pytest.raises(ValueError, match=match):
        open_source(f"hf:{src}", "train")


def test_plain_card_is_read(tiny_mnist1d, tmp_path):
    src = _copy(tiny_mnist1d, tmp_path)
    (src / "README.md").write_text("---\nlicense: mit\ntags: [a, b]\n---\n# card\n")
    assert sum(1 for _ in open_source(f"hf:{src}", "test")) == 120


def test_dataset_loading_script_is_refused_never_run(tiny_mnist1d, tmp_path):
    src, marker = _copy(tiny_mnist1d, tmp_path), tmp_path / "PWNED"
    (src / "ds.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    with pytest.raises(ValueError, match=r"ds\.py is a dataset loading script; proxyds never runs code from a dataset"):
        open_source(f"hf:{src}", "train")
    assert not marker.exists()
