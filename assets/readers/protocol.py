"""What every reader is: a stream of documents in one Arrow schema, with its rejects and provenance."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import polars as pl
import pyarrow as pa


class IngestError(ValueError):
    """Data that cannot be ingested at all; the message names the file and what is wrong."""


@dataclass
class ParsedRecords:
    """Up to `batch_size` parsed records of a file or query (column -> values) and the rejects found meanwhile."""

    columns: dict[str, list[object]]
    rejects: list[dict[str, object]] = field(default_factory=list)
    frame: pl.DataFrame | None = None  # the fast path's records, all strings, with `source_row`, instead of columns

    @property
    def size(self) -> int:
        return self.frame.height if self.frame is not None else len(self.columns["source_row"])

    def values(self) -> pl.DataFrame:
        """The records' values as the source names its columns (no `source_row`), however they were parsed."""
        if self.frame is not None:
            return self.frame.drop("source_row")
        return pl.DataFrame({k: v for k, v in self.columns.items() if k != "source_row"}, strict=False)


@runtime_checkable
class Reader(Protocol):
    """A dataset version's records as documents: `batches()` streams them, then the counts and rejects are final."""

    schema: pa.Schema
    files: list[dict[str, object]]  # per file (or query): name, sha256, format, records, rejected
    extras: dict[str, str]  # carried source column -> lake column
    rows: int

    def batches(self) -> Iterator[pa.RecordBatch]: ...

    def quarantine(self) -> pl.DataFrame: ...

    @property
    def records_read(self) -> int: ...
