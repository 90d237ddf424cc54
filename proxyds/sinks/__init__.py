"""Writers for a proxy's output directory: shards, the dataset card, and the atomic rename.

Parquet shards (``ParquetShardWriter``) and WebDataset tars (``WdsShardWriter``) hold the
examples with their original values; ``row_to_wds_fields`` / ``wds_fields_to_row`` let
any input be written in either format; ``write_card`` makes ``datasets.load_dataset(OUT)``
find the splits; ``atomic_output_dir`` makes the whole directory appear at once.
"""

from proxyds.sinks.atomic import atomic_output_dir, sha256_file
from proxyds.sinks.card import write_card
from proxyds.sinks.convert import row_to_wds_fields, wds_features, wds_fields_to_row
from proxyds.sinks.parquet import ParquetShardWriter
from proxyds.sinks.wds import WdsShardWriter

__all__ = [
    "ParquetShardWriter",
    "WdsShardWriter",
    "atomic_output_dir",
    "row_to_wds_fields",
    "sha256_file",
    "wds_features",
    "wds_fields_to_row",
    "write_card",
]
