"""Write the `mnist1d-cnn` benchmark's exact rows as a HF dataset, so `proxyds evaluate hf:DIR` runs
the same data through the build's path as `proxyds evaluate mnist1d-cnn` runs in memory.

train = the first 8,000 examples of the generator's train pool; validation = test-pool rows
0:5000 (the benchmark's reference split A); test = rows 5000:15000 (its evaluation split B).

    python tools/mnist1d_benchmark_rows.py /tmp/mnist1d-rows
    proxyds evaluate hf:/tmp/mnist1d-rows --space cnn1d --input-column x \\
        --reference-split validation --evaluation-split test --out report/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from proxyds.harness.settings import BENCHMARKS
from proxyds.presets import materialize_mnist1d
from proxyds.sinks import ParquetShardWriter


def write_rows(out: Path, benchmark: str = "mnist1d-cnn") -> Path:
    spec = BENCHMARKS[benchmark]["data"]
    root = materialize_mnist1d(dict(spec.generator))
    length = len(pq.read_table(next((root / "data").glob("train-*.parquet"))).column("x")[0])
    features = datasets.Features({"x": datasets.List(datasets.Value("float32"), length=length),
                                  "label": datasets.ClassLabel(names=[str(i) for i in range(10)])})
    for split, pool, (a, b) in (("train", "train", (0, spec.train)), ("validation", "test", spec.reference),
                                ("test", "test", spec.evaluation)):
        files = sorted((root / "data").glob(f"{pool}-*.parquet"))
        table = pa.concat_tables([pq.read_table(f) for f in files]).slice(a, b - a)
        with ParquetShardWriter(out / "data", split, features, rows_per_shard=2000) as w:
            for row in table.select(["x", "label"]).to_pylist():
                w.write(row)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="directory to write (data/{train,validation,test}-*.parquet)")
    p.add_argument("--benchmark", default="mnist1d-cnn", choices=sorted(BENCHMARKS))
    args = p.parse_args(argv)
    print(write_rows(args.out, args.benchmark))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
