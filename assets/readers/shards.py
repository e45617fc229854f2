"""A large drop read in shards: its files split into size-balanced groups, each group read by its own process and
appended to the version's partition in a Delta commit of its own, with every count summed exactly."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import deltalake
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from deltalake.exceptions import CommitFailedError

from assets.readers.drop import DropReader
from assets.readers.protocol import Reader
from assets.storage.delta import VERSION_COLUMN, Lake, append_version_stream, clear_version, write_version_stream
from assets.storage.records import QUARANTINE_SCHEMA

DEFAULT_SHARD_BYTES = 256 * 1024 * 1024
COMMIT_ATTEMPTS = 3


@dataclass(frozen=True)
class ShardSettings:
    """When a drop is split (`shard_bytes` of files per shard) and how many processes read the shards (0: one per
    CPU this process may use)."""

    shard_bytes: int = DEFAULT_SHARD_BYTES
    workers: int = 0

    def __post_init__(self) -> None:
        if self.shard_bytes < 1 or self.workers < 0:
            raise ValueError(f"shard_bytes must be >= 1 and workers >= 0, got {self.shard_bytes}, {self.workers}")

    def processes(self, shards: int) -> int:
        available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, min(shards, self.workers or available))


def plan_shards(paths: list[Path], shard_bytes: int) -> list[list[Path]]:
    """The files in ceil(total bytes / shard_bytes) groups, at most one per file, balanced by size (largest file
    first into the lightest group); each group keeps the drop's file order, and the groups are ordered by it."""
    sizes = {path: path.stat().st_size for path in paths}
    count = max(1, min(len(paths), math.ceil(sum(sizes.values()) / shard_bytes)))
    groups: list[list[Path]] = [[] for _ in range(count)]
    loads = [0] * count
    for path in sorted(paths, key=lambda p: -sizes[p]):
        lightest = loads.index(min(loads))
        groups[lightest].append(path)
        loads[lightest] += sizes[path]
    order = {path: index for index, path in enumerate(paths)}
    return sorted((sorted(group, key=order.__getitem__) for group in groups if group), key=lambda g: order[g[0]])


@dataclass
class ShardedRead:
    """The results of a read in shards, in a reader's shape: what the catalog and the metadata are built from."""

    schema: pa.Schema
    extras: dict[str, str]
    shards: int
    files: list[dict[str, object]] = field(default_factory=list)
    rejects: list[dict[str, object]] = field(default_factory=list)
    rows: int = 0

    def quarantine(self) -> pl.DataFrame:
        return pl.DataFrame(self.rejects, schema=QUARANTINE_SCHEMA)

    @property
    def records_read(self) -> int:
        return self.rows + len(self.rejects)


@dataclass(frozen=True)
class _ShardOutcome:
    rows: int
    files: list[dict[str, object]]
    rejects: list[dict[str, object]]


def read_shard(reader: DropReader, paths: list[Path], uri: str, version: str, options: dict[str, str]) -> _ShardOutcome:
    """Read one shard's files and append its documents to the version's partition (one commit)."""
    attempt = 1
    while True:
        shard = reader.for_files(paths)
        raised: list[Exception] = []
        try:
            append_version_stream(uri, shard.schema, _watched(shard.batches(), raised), version, options)
            return _ShardOutcome(shard.rows, shard.files, shard.rejects)
        except CommitFailedError as error:  # another writer's commit won (an object store has no table lock)
            if attempt == COMMIT_ATTEMPTS:
                raise RuntimeError(f"{uri}: shard of {len(paths)} files not committed: {error}") from None
            attempt += 1
        except Exception as error:
            # delta-rs wraps a reading error in its own exception, which cannot cross back to the parent process.
            raise (raised[0] if raised else RuntimeError(f"{uri}: {error}")) from None


def _watched(batches: Iterator[pa.RecordBatch], raised: list[Exception]) -> Iterator[pa.RecordBatch]:
    try:
        yield from batches
    except Exception as error:
        raised.append(error)
        raise


def ingest_version(
    lake: Lake, table: str, reader: Reader, version: str, settings: ShardSettings
) -> tuple[Reader | ShardedRead, int]:
    """Write `version`'s partition of `table` from the reader (in shards when the drop is large); its final counts."""
    shards = plan_shards(reader.paths, settings.shard_bytes) if isinstance(reader, DropReader) else []
    if len(shards) < 2:  # one commit that replaces the partition atomically
        return reader, lake.write_version_stream(table, reader.schema, reader.batches(), version)
    uri, options = lake.uri(table), lake.store_options()
    # The table's lock is held from the clearing commit to the last shard's: no other run's writer, and no
    # maintenance vacuuming a shard's files before their commit, comes between.
    with lake.writing(table):
        before = lake.table_version(table) if lake.exists(table) else None
        clear_version(uri, reader.schema, version, options)
        try:
            outcomes = _read_shards(reader, shards, uri, version, options, settings.processes(len(shards)))
        except Exception:
            put_back_version(uri, reader.schema, version, before, options)
            raise
    result = ShardedRead(reader.schema, reader.extras, len(shards))
    for outcome in outcomes:
        result.rows += outcome.rows
        result.files += outcome.files
        result.rejects += outcome.rejects
    order = {reader.sources[path]: index for index, path in enumerate(reader.paths)}
    result.files.sort(key=lambda entry: order[str(entry["file"])])
    return result, lake.table_version(table)


def put_back_version(uri: str, schema: pa.Schema, version: str, before: int | None, options: dict[str, str]) -> None:
    """Give `version` back the rows it had at Delta version `before` (none for a new table), in one commit, so a
    failed re-run leaves the previous good partition, not an empty or half-written one."""
    if before is None:
        clear_version(uri, schema, version, options)
        return
    old = deltalake.DeltaTable(uri, version=before, storage_options=options or None).to_pyarrow_dataset()
    columns = [name for name in old.schema.names if name != VERSION_COLUMN]
    scanner = old.scanner(columns=columns, filter=pc.field(VERSION_COLUMN) == version)
    write_version_stream(uri, scanner.projected_schema, scanner.to_batches(), version, options)


def _read_shards(
    reader: DropReader, shards: list[list[Path]], uri: str, version: str, options: dict[str, str], processes: int
) -> list[_ShardOutcome]:
    if processes == 1:
        return [read_shard(reader, paths, uri, version, options) for paths in shards]
    # spawn, not fork: a forked child of a threaded process (Dagster, delta-rs) can inherit a held lock.
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        count = len(shards)
        return list(pool.map(read_shard, [reader] * count, shards, [uri] * count, [version] * count, [options] * count))
