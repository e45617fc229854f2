"""SQL sources: the highest watermark, and a watermark range of rows streamed as documents."""

from __future__ import annotations

import datetime as dt
import decimal
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa

from assets.readers.declared import SourceDeclarationError, SqlSource
from assets.readers.drop import carried_columns, documents_schema, map_batch, mapped_columns, reject_unmappable
from assets.readers.protocol import ParsedRecords
from assets.storage.records import QUARANTINE_SCHEMA

Watermark = int | float | str


def engine_for(source: SqlSource):
    """A SQLAlchemy engine; the password, if any, comes from the environment variable the source names."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(source.uri)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if source.password_env:
        password = os.environ.get(source.password_env)
        if password is None:
            raise SourceDeclarationError(
                f"source {source.name!r}: environment variable {source.password_env} is not set"
            )
        url = url.set(password=password)
    return create_engine(url)


def as_watermark(value: object) -> Watermark | None:
    """A watermark value as JSON can keep it (timestamps as ISO text)."""
    if value is None or isinstance(value, (int, float, str)):
        return value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == int(value) else float(value)
    return str(value)


def _scalar(value: object) -> object:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    return value


def max_watermark(source: SqlSource) -> Watermark | None:
    """The highest watermark the query returns now (None when it returns no rows)."""
    from sqlalchemy import text

    if source.watermark_column is None:
        raise SourceDeclarationError(f"source {source.name!r} has no watermark_column to poll")
    engine = engine_for(source)
    try:
        with engine.connect() as connection:
            statement = text(f"SELECT MAX({source.watermark_column}) FROM ({source.query}) AS refinery_source")
            return as_watermark(connection.execute(statement).scalar())
    finally:
        engine.dispose()


def range_query(source: SqlSource, low: Watermark | None, high: Watermark | None) -> tuple[str, dict[str, object]]:
    """The query for rows with low < watermark <= high (open ends when None), in watermark order."""
    if source.watermark_column is None:
        return source.query, {}
    column, clauses, params = source.watermark_column, [], {}
    if low is not None:
        clauses.append(f"{column} > :low")
        params["low"] = low
    if high is not None:
        clauses.append(f"{column} <= :high")
        params["high"] = high
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"SELECT * FROM ({source.query}) AS refinery_source{where} ORDER BY {column}", params


@dataclass
class SqlReader:
    """Streams a watermark range of a SQL source as documents, like `DropReader` does for files."""

    source: SqlSource
    low: Watermark | None = None
    high: Watermark | None = None
    rejects: list[dict[str, object]] = field(default_factory=list)
    files: list[dict[str, object]] = field(default_factory=list)
    rows: int = 0
    extras: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from sqlalchemy import text

        self._engine = engine_for(self.source)
        self._connection = self._engine.connect().execution_options(stream_results=True)
        query, params = range_query(self.source, self.low, self.high)
        self._result = self._connection.execute(text(query), params)
        self.columns = list(self._result.keys())
        where = f"source {self.source.name!r}"
        missing = [c for c in self.source.mapping.mapped.values() if c not in self.columns]
        if missing:
            self.close()
            raise SourceDeclarationError(
                f"{where}: mapped column {missing[0]!r} not in the query's columns {self.columns}"
            )
        self.extras = carried_columns(self.columns, self.source.mapping, {})
        self.schema: pa.Schema = documents_schema([*self.extras.values(), *mapped_columns(self.source.mapping)])

    def close(self) -> None:
        self._connection.close()
        self._engine.dispose()

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The range's rows, `batch_size` at a time; the connection closes at the end."""
        label = f"sql:{self.source.name}"
        try:
            while rows := self._result.fetchmany(self.source.batch_size):
                read = self.rows + len(self.rejects)  # rows fetched so far: documents and rejects
                columns = {name: [_scalar(row[i]) for row in rows] for i, name in enumerate(self.columns)}
                columns["source_row"] = list(range(read + 1, read + len(rows) + 1))
                batch = reject_unmappable(ParsedRecords(columns), self.source.mapping, label)
                self.rejects += batch.rejects
                frame = map_batch(
                    batch, self.source.mapping, self.extras, self.schema, label, f"source {self.source.name!r}"
                )
                self.rows += batch.size
                yield from frame.to_arrow().cast(self.schema).to_batches()
        finally:
            self.close()
        self.files.append(
            {
                "file": label,
                "sha256": "",
                "format": "sql",
                "records": self.rows,
                "rejected": len(self.rejects),
                "watermark_low": self.low,
                "watermark_high": self.high,
            }
        )

    def quarantine(self) -> pl.DataFrame:
        return pl.DataFrame(self.rejects, schema=QUARANTINE_SCHEMA)

    @property
    def records_read(self) -> int:
        return self.rows + len(self.rejects)
