"""The page-header walk on Parquet files as common writers make them, and on a file whose headers are garbage."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assets.readers.parquet_pages import page_headers, row_group_largest_page
from assets.readers.protocol import IngestError

TEXTS = [f"ticket {row} " + "word " * (row % 300) for row in range(20_000)]

WRITERS = {
    "pyarrow-defaults": lambda path: pq.write_table(pa.table({"text": TEXTS, "n": range(len(TEXTS))}), path),
    "pyarrow-v2-pages-index-stats": lambda path: pq.write_table(
        pa.table({"text": TEXTS, "n": range(len(TEXTS))}),
        path,
        data_page_version="2.0",
        write_page_index=True,
        compression="zstd",
        use_dictionary=False,
        data_page_size=256 << 10,
    ),
    "polars": lambda path: pl.DataFrame({"text": TEXTS, "n": range(len(TEXTS))}).write_parquet(path),
    "polars-uncompressed-stats": lambda path: pl.DataFrame({"text": TEXTS}).write_parquet(
        path, compression="uncompressed", statistics=True, row_group_size=5_000
    ),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_row_group_of_a_common_writer_walks_to_pages_no_larger_than_its_column_chunks(
    tmp_path: Path, writer: str
) -> None:
    path = tmp_path / "t.parquet"
    WRITERS[writer](path)
    metadata = pq.ParquetFile(path).metadata
    for group in range(metadata.num_row_groups):
        with page_headers(path) as headers:
            page, column = row_group_largest_page(headers, metadata, group, source="t.parquet")
        chunks = metadata.row_group(group)
        largest_chunk = max(chunks.column(index).total_uncompressed_size for index in range(chunks.num_columns))
        assert 0 < page <= largest_chunk and column in {"text", "n"}


def test_a_one_page_chunk_walks_to_that_page_s_size(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["x" * 3_000_000]}), path, use_dictionary=False, compression="zstd")
    metadata = pq.ParquetFile(path).metadata
    with page_headers(path) as headers:
        page, column = row_group_largest_page(headers, metadata, 0, source="t.parquet")
    assert column == "text" and 3_000_000 <= page <= metadata.row_group(0).column(0).total_uncompressed_size


def test_garbage_where_a_page_header_should_be_is_refused_naming_the_file_and_column(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["fine", "tickets"]}), path, use_dictionary=False)
    metadata = pq.ParquetFile(path).metadata
    start = metadata.row_group(0).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[start : start + 12] = b"\x1c" * 12  # struct fields nested without end
    path.write_bytes(bytes(data))
    with (
        page_headers(path) as headers,
        pytest.raises(IngestError, match=r"drop/t\.parquet: row group 0, column text: "),
    ):
        row_group_largest_page(headers, metadata, 0, source="drop/t.parquet")


@pytest.mark.parametrize(
    ("header", "refusal"),
    [
        (b"\x19\xf7" + b"\xff" * 9 + b"\x01", "past the end of the file"),  # a list of 2^63 doubles
        (b"\x1b" + b"\xff" * 9 + b"\x01\x77", "past the end of the file"),  # a map of 2^63 entries
        (b"\x18" + b"\xff\xff\xff\xff\x0f", "runs past the end of the file"),  # a 4 GiB binary
    ],
    ids=["list-of-doubles", "huge-map", "huge-binary"],
)
def test_a_crafted_page_header_is_refused_at_once_not_walked(tmp_path: Path, header: bytes, refusal: str) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["fine", "tickets"]}), path, use_dictionary=False)
    metadata = pq.ParquetFile(path).metadata
    start = metadata.row_group(0).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[start : start + len(header)] = header
    path.write_bytes(bytes(data))
    with page_headers(path) as headers, pytest.raises(IngestError, match=refusal):
        row_group_largest_page(headers, metadata, 0, source="t.parquet")


def test_row_groups_that_all_point_at_the_same_pages_exhaust_the_walking_budget(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": TEXTS[:2000]}), path, row_group_size=2000, data_page_size=64)
    metadata = pq.ParquetFile(path).metadata
    with page_headers(path) as headers:
        row_group_largest_page(headers, metadata, 0, source="t.parquet")  # the file's own walk fits
        with pytest.raises(IngestError, match="page headers overlap"):
            for _ in range(50):  # as a footer of 50 row groups over the same bytes would make it walk them
                row_group_largest_page(headers, metadata, 0, source="t.parquet")
