"""Delta Lake tables partitioned by dataset version, written with predicate overwrites."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import deltalake
import polars as pl
import pyarrow as pa

from assets.storage.home import check_version_name
from contracts.store_options import object_store_options
from contracts.table_lock import table_lock

VERSION_COLUMN = "dataset_version"
FOR_VERSION = "refinery_version"  # in a commit's info: the version whose rows it writes


def _predicate(version: str, scope: Mapping[str, str]) -> str:
    clauses = [f"{VERSION_COLUMN} = '{check_version_name(version)}'"]
    for column, value in scope.items():
        if "'" in value:
            raise ValueError(f"scope value for {column!r} may not contain a quote: {value!r}")
        clauses.append(f"{column} = '{value}'")
    return " AND ".join(clauses)


def write_version(
    uri: str,
    frame: pl.DataFrame,
    version: str,
    scope: Mapping[str, str] | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> int:
    """Replace the rows of `version` (and `scope`) in the table at `uri` with `frame`, atomically.

    Returns the Delta table version that the write created.
    """
    scope = dict(scope or {})
    frame = frame.with_columns(pl.lit(version, dtype=pl.String).alias(VERSION_COLUMN))
    for column, value in scope.items():
        if column not in frame.columns or (frame.height and frame[column].ne(value).any()):
            raise ValueError(f"every row written under scope {scope} must have {column}={value!r}")
    options = dict(storage_options or {})
    if table_exists(uri, options):
        deltalake.write_deltalake(
            uri,
            frame.to_arrow(),
            mode="overwrite",
            predicate=_predicate(version, scope),
            partition_by=[VERSION_COLUMN],
            schema_mode="merge",
            storage_options=options or None,
        )
    else:
        deltalake.write_deltalake(
            uri,
            frame.to_arrow(),
            mode="append",
            partition_by=[VERSION_COLUMN],
            storage_options=options or None,
        )
    return deltalake.DeltaTable(uri, storage_options=options or None).version()


def write_version_stream(
    uri: str,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    version: str,
    storage_options: Mapping[str, str] | None = None,
    *,
    metadata: Mapping[str, str] | None = None,
) -> int:
    """Replace the rows of `version` with a stream of batches in one commit, in bounded memory; `metadata` is
    recorded in the commit's info."""
    exists = table_exists(uri, storage_options)  # a new table is created by an append, its schema as given
    return _write_stream(
        uri, schema, batches, version, storage_options, replace=exists, merge_schema=exists, metadata=metadata
    )


def clear_version(
    uri: str,
    schema: pa.Schema,
    version: str,
    storage_options: Mapping[str, str] | None = None,
    *,
    metadata: Mapping[str, str] | None = None,
) -> int:
    """Remove the rows of `version` and merge `schema` into the table (creating it when absent), in one commit:
    the first step of a sharded write, after which each shard appends its rows in a commit of its own."""
    return write_version_stream(uri, schema, iter(()), version, storage_options, metadata=metadata)


def append_version_stream(
    uri: str,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    version: str,
    storage_options: Mapping[str, str] | None = None,
    *,
    metadata: Mapping[str, str] | None = None,
) -> int:
    """Append a stream of batches to `version`'s rows in one commit of its own (a commit that loses a race with
    another writer raises deltalake's CommitFailedError)."""
    return _write_stream(
        uri, schema, batches, version, storage_options, replace=False, merge_schema=True, metadata=metadata
    )


def _write_stream(
    uri: str,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    version: str,
    storage_options: Mapping[str, str] | None,
    *,
    replace: bool,
    merge_schema: bool,
    metadata: Mapping[str, str] | None = None,
) -> int:
    """One commit of `batches` tagged with `version`, replacing the version's rows or appended to them; returns
    the table's version after it."""
    tagged = schema.append(pa.field(VERSION_COLUMN, pa.large_string()))
    options = dict(storage_options or {}) or None
    deltalake.write_deltalake(
        uri,
        pa.RecordBatchReader.from_batches(tagged, _tagged(batches, version, tagged)),
        mode="overwrite" if replace else "append",
        predicate=_predicate(version, {}) if replace else None,
        partition_by=[VERSION_COLUMN],
        schema_mode="merge" if merge_schema else None,
        storage_options=options,
        commit_properties=deltalake.CommitProperties(custom_metadata=dict(metadata)) if metadata else None,
    )
    return deltalake.DeltaTable(uri, storage_options=options).version()


def _tagged(batches: Iterable[pa.RecordBatch], version: str, tagged: pa.Schema) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        column = pa.array([version] * batch.num_rows, pa.large_string())
        yield pa.RecordBatch.from_arrays([*batch.columns, column], schema=tagged)


def table_exists(uri: str, storage_options: Mapping[str, str] | None = None) -> bool:
    """Whether a Delta table exists at `uri`."""
    if "://" not in uri and not (Path(uri) / "_delta_log").is_dir():
        return False
    return deltalake.DeltaTable.is_deltatable(uri, storage_options=dict(storage_options or {}))


def scan_versions(
    uri: str,
    versions: Sequence[str] | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> pl.LazyFrame:
    """Lazily read the rows of `versions` (all when None) from the table at `uri`."""
    frame = pl.scan_delta(uri, storage_options=dict(storage_options or {}) or None)
    if versions is not None:
        frame = frame.filter(pl.col(VERSION_COLUMN).is_in(list(versions)))
    return frame


class Lake:
    """Delta Lake tables under `root` (a folder or an object-store URI), one partition per dataset version."""

    root: str
    storage_options: dict[str, str]

    def __init__(self, root: str, storage_options: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.storage_options = dict(storage_options or {})

    def store_options(self) -> dict[str, str]:
        """The storage options delta-rs gets: the configured ones, made safe for concurrent S3 writers."""
        return object_store_options(self.root, self.storage_options)

    def uri(self, table: str) -> str:
        return f"{self.root.rstrip('/')}/{table}"

    def exists(self, table: str) -> bool:
        return table_exists(self.uri(table), self.store_options())

    def write_version(self, table: str, frame: pl.DataFrame, version: str, scope: dict[str, str] | None = None) -> int:
        """Replace one version's rows of `table` (within `scope`); returns the new Delta version."""
        with self.writing(table):
            return write_version(self.uri(table), frame, version, scope, self.store_options())

    def write_version_stream(
        self, table: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch], version: str
    ) -> int:
        """Replace one version's rows of `table` with a stream of Arrow batches, in one commit."""
        with self.writing(table):
            tag = {FOR_VERSION: version}  # a whole write: any earlier unfinished re-run is superseded
            return write_version_stream(self.uri(table), schema, batches, version, self.store_options(), metadata=tag)

    @contextmanager
    def writing(self, table: str) -> Iterator[None]:
        """Writers of one table take turns (an OS file lock beside a local lake), so two runs of the same version
        cannot both append to a new table or fail each other's commit; the second replaces what the first wrote.
        An object-store lake relies on Delta's own commit protocol."""
        if "://" in self.root:
            yield
            return
        with table_lock(Path(self.root), table):
            yield

    def scan(self, table: str, versions: list[str] | None = None) -> pl.LazyFrame:
        """Lazily read `versions` (all when None) of `table`."""
        if not self.exists(table):
            raise FileNotFoundError(f"Delta table {self.uri(table)} does not exist yet: materialize {table} first")
        return scan_versions(self.uri(table), versions, self.store_options())

    def table_version(self, table: str) -> int:
        return deltalake.DeltaTable(self.uri(table), storage_options=self.store_options() or None).version()
