"""Parquet files read in bounded memory: batches sized by the row groups' uncompressed bytes, text columns kept
dictionary-encoded while they are measured, and records past `max_record_bytes` quarantined before any of their
values become Python strings.

Parquet compresses repeated text very well: 1.3 KB on disk can hold rows of 20 MiB each, so the number of rows
says nothing about the memory a batch takes. A plainly encoded value counts in its row group's uncompressed
size; a dictionary-encoded one is held once however many rows repeat it.
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assets.readers.lines import OversizedLine, open_binary, oversized_reject
from assets.readers.mapping import RecordMapping
from assets.readers.parquet_pages import page_headers, row_group_largest_page
from assets.readers.protocol import IngestError, ParsedRecords
from assets.storage.records import quarantine_raw

MAX_GUNZIPPED_PARQUET_BYTES = 4 << 30  # a gzipped Parquet file is unpacked to disk: a bomb must not fill it
BATCH_BYTES = 64 << 20  # the uncompressed bytes one batch may take, by its row group's average row
# Arrow decompresses a page whole: past this, a row group's rows are quarantined rather than decoded. A writer's
# pages are 1 MiB by default; only rows of half a megabyte each, a thousand to a page, come near it.
MAX_PAGE_BYTES = 512 << 20
MAX_UNDECODED_ROWS = 1_000_000  # more rows than pages past MAX_PAGE_BYTES hold in files written by real writers
REJECT_BATCH = 50_000  # quarantine rows of an undecoded row group, built a batch at a time
HEAD_BYTES = 200  # what the quarantine keeps of an oversized record
SIZED_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)


def read_parquet(path: Path, source: str, config: RecordMapping, batch_size: int) -> Iterator[ParsedRecords]:
    """Parquet row groups in batches of bounded size; every row is a record, an oversized one quarantined."""
    with tempfile.TemporaryDirectory() as scratch:
        plain = plain_parquet(path, Path(scratch))
        texts = [field.name for field in pq.read_schema(plain) if any(test(field.type) for test in SIZED_TYPES)]
        parquet = pq.ParquetFile(plain, read_dictionary=texts)  # a repeated huge value is held once
        offset = 1
        with page_headers(plain) as headers:
            for group in range(parquet.num_row_groups):
                page, column = row_group_largest_page(headers, parquet.metadata, group, source=source)
                rows = range(offset, offset + parquet.metadata.row_group(group).num_rows)
                if page > MAX_PAGE_BYTES:
                    yield from undecoded_rows(rows, source, page, column)
                else:
                    yield from group_records(parquet, group, rows, source, config=config, batch_size=batch_size)
                offset = rows.stop


def group_records(
    parquet: pq.ParquetFile, group: int, rows: range, source: str, *, config: RecordMapping, batch_size: int
) -> Iterator[ParsedRecords]:
    """One row group's records, in batches sized by its rows' average bytes."""
    offset = rows.start
    per_batch = rows_per_batch(parquet.metadata.row_group(group), batch_size)
    for batch in parquet.iter_batches(batch_size=per_batch, row_groups=[group]):
        yield from bounded_records(batch, offset, source, config.max_record_bytes)
        offset += batch.num_rows


def undecoded_rows(rows: range, source: str, page: int, column: str) -> Iterator[ParsedRecords]:
    """The rows of a row group whose page is too large to decompress, quarantined by number, a batch at a time; a
    footer claiming more rows than any such group holds is refused (it would only fill the quarantine)."""
    if len(rows) > MAX_UNDECODED_ROWS:
        raise IngestError(
            f"{source}: a row group of {len(rows)} rows with a page of {page} bytes uncompressed (column {column}); "
            "write the file with smaller pages or row groups"
        )
    reason = (
        f"in a Parquet row group with a page of {page} bytes uncompressed (column {column}); pages past "
        f"{MAX_PAGE_BYTES} are not decompressed: write the file with smaller pages or row groups"
    )
    for start in range(rows.start, rows.stop, REJECT_BATCH):
        numbers = range(start, min(start + REJECT_BATCH, rows.stop))
        yield ParsedRecords(
            {"source_row": []}, [quarantine_raw(source, row, "record_too_large", reason, "") for row in numbers]
        )


def rows_per_batch(group: pq.RowGroupMetaData, batch_size: int) -> int:
    """At most `batch_size` rows, fewer when the group's rows are large on average (at least one)."""
    if group.num_rows == 0:
        return batch_size
    average = max(group.total_byte_size / group.num_rows, 1.0)
    return int(max(1, min(batch_size, BATCH_BYTES // average)))


def value_lengths(batch: pa.RecordBatch) -> list[np.ndarray]:
    """Per text or binary column, each row's value length in bytes (a dictionary column's from its distinct values)."""
    lengths = []
    for column in batch.columns:
        if isinstance(column, pa.DictionaryArray):
            measured = pc.take(pc.binary_length(column.dictionary), column.indices)
        elif any(test(column.type) for test in SIZED_TYPES):
            measured = pc.binary_length(column)
        else:
            lengths.append(np.zeros(batch.num_rows, dtype=np.int64))
            continue
        lengths.append(pc.fill_null(measured, 0).to_numpy(zero_copy_only=False).astype(np.int64))
    return lengths


def head_bytes(column: pa.Array, row: int) -> bytes:
    """The first HEAD_BYTES of one value, cut in Arrow before anything becomes a Python object."""
    if isinstance(column, pa.DictionaryArray):
        column, row = column.dictionary, column.indices[row].as_py()
    value = column.slice(row, 1).cast(pa.large_binary())
    return pc.binary_slice(value, 0, HEAD_BYTES)[0].as_py() or b""


def bounded_records(batch: pa.RecordBatch, offset: int, source: str, limit: int) -> Iterator[ParsedRecords]:
    """A batch's records as columns, in pieces of at most BATCH_BYTES, the rows past `limit` bytes moved to the
    rejects (their largest value's first bytes kept)."""
    lengths = value_lengths(batch)
    sizes = np.sum(lengths, axis=0) if lengths else np.zeros(batch.num_rows, dtype=np.int64)
    oversized = np.flatnonzero(sizes > limit)
    rejects = []
    for row in oversized:
        largest = int(np.argmax([column[row] for column in lengths]))
        line = OversizedLine(int(sizes[row]), head_bytes(batch.column(largest), int(row)))
        rejects.append(oversized_reject(source, offset + int(row), line, limit))
    if rejects:
        yield ParsedRecords({"source_row": []}, rejects)
    kept = np.flatnonzero(sizes <= limit)
    start = 0
    while start < len(kept):
        fitting = int(np.searchsorted(np.cumsum(sizes[kept[start:]]), BATCH_BYTES, side="right"))
        end = start + max(1, fitting)
        piece = batch.take(pa.array(kept[start:end]))
        columns = {name: piece.column(name).to_pylist() for name in piece.schema.names}
        columns["source_row"] = [offset + int(row) for row in kept[start:end]]
        yield ParsedRecords(columns)
        start = end


def plain_parquet(path: Path, scratch: Path) -> Path:
    """The Parquet file itself, or its gunzipped copy in `scratch` (Parquet needs to seek), refused past a size."""
    with open_binary(path) as stream:
        if not isinstance(stream, gzip.GzipFile):
            return path
        plain = scratch / "plain.parquet"
        with plain.open("wb") as out:
            while piece := stream.read(1 << 20):
                if out.tell() + len(piece) > MAX_GUNZIPPED_PARQUET_BYTES:
                    raise IngestError(
                        f"{path}: gunzips past {MAX_GUNZIPPED_PARQUET_BYTES} bytes; store Parquet uncompressed "
                        "(it compresses its own pages)"
                    )
                out.write(piece)
    return plain
