"""A large drop read in shards: its files split into size-balanced groups, each group read by its own process and
appended to the version's partition in a Delta commit of its own, with every count summed exactly.

A re-run clears the partition first. Its commits say so in their info (the run, the shard count, the table version
before it), so a re-run killed halfway (SIGKILL, a lost node: no Python exception to put the rows back) is found
and undone by the next write of that version, from the table's own history.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
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
from assets.storage.delta import (
    FOR_VERSION,
    VERSION_COLUMN,
    Lake,
    append_version_stream,
    clear_version,
    table_exists,
    write_version_stream,
)
from assets.storage.records import QUARANTINE_SCHEMA

LOG = logging.getLogger("refinery.ingest")
DEFAULT_SHARD_BYTES = 256 * 1024 * 1024
COMMIT_ATTEMPTS = 3
HISTORY_LIMIT = 1000  # commits looked back through for an unfinished re-run of a version
# commit-info keys of a sharded write (FOR_VERSION, from the lake, marks every write of a version's rows)
RERUN = "refinery_rerun"
SHARD_COUNT = "refinery_shards"
BEFORE = "refinery_before"
SHARD = "refinery_shard"


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


@dataclass(frozen=True)
class ShardTarget:
    """Where the shards of one re-run go: the table, the version, the store options and the re-run's id."""

    uri: str
    version: str
    options: dict[str, str]
    rerun: str


def read_shard(reader: DropReader, paths: list[Path], index: int, target: ShardTarget) -> _ShardOutcome:
    """Read one shard's files and append its documents to the version's partition (one commit, tagged with the
    re-run and the shard's index)."""
    attempt, tag = 1, {RERUN: target.rerun, SHARD: str(index)}
    uri, version, options = target.uri, target.version, target.options
    while True:
        shard = reader.for_files(paths)
        raised: list[Exception] = []
        try:
            batches = _watched(shard.batches(), raised)
            append_version_stream(uri, shard.schema, batches, version, options, metadata=tag)
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
        restore_unfinished_rerun(uri, reader.schema, version, options)
        before = lake.table_version(table) if lake.exists(table) else None
        target = ShardTarget(uri, version, options, uuid.uuid4().hex)
        started = {RERUN: target.rerun, FOR_VERSION: version, SHARD_COUNT: str(len(shards)), BEFORE: str(before)}
        clear_version(uri, reader.schema, version, options, metadata=started)
        try:
            outcomes = _read_shards(reader, shards, target, settings.processes(len(shards)))
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


def unfinished_rerun(uri: str, version: str, options: dict[str, str]) -> tuple[bool, int | None]:
    """Whether the latest write of `version` is a sharded re-run with shards never committed, and the table
    version it started from (None: the version had no rows)."""
    if not table_exists(uri, options):
        return False, None
    committed: dict[str, set[str]] = {}
    for commit in deltalake.DeltaTable(uri, storage_options=options or None).history(HISTORY_LIMIT):  # newest first
        if SHARD in commit:
            committed.setdefault(str(commit.get(RERUN)), set()).add(str(commit[SHARD]))
        elif commit.get(FOR_VERSION) == version:
            rerun = commit.get(RERUN)
            if rerun is None or len(committed.get(str(rerun), ())) >= int(commit[SHARD_COUNT]):
                return False, None
            before = str(commit.get(BEFORE))
            return True, int(before) if before.isdigit() else None
    return False, None


def restore_unfinished_rerun(uri: str, schema: pa.Schema, version: str, options: dict[str, str]) -> None:
    """Put back the rows a killed re-run of `version` had cleared, before anything else writes it."""
    unfinished, before = unfinished_rerun(uri, version, options)
    if not unfinished:
        return
    try:
        put_back_version(uri, schema, version, before, options)
    except Exception as error:  # its files vacuumed since: the re-run about to start replaces the rows anyway
        LOG.warning("%s: cannot put back version %s as of Delta version %s (%s)", uri, version, before, error)


def put_back_version(uri: str, schema: pa.Schema, version: str, before: int | None, options: dict[str, str]) -> None:
    """Give `version` back the rows it had at Delta version `before` (none for a new table), in one commit, so a
    failed re-run leaves the previous good partition, not an empty or half-written one."""
    whole = {FOR_VERSION: version}
    if before is None:
        clear_version(uri, schema, version, options, metadata=whole)
        return
    old = deltalake.DeltaTable(uri, version=before, storage_options=options or None).to_pyarrow_dataset()
    columns = [name for name in old.schema.names if name != VERSION_COLUMN]
    scanner = old.scanner(columns=columns, filter=pc.field(VERSION_COLUMN) == version)
    write_version_stream(uri, scanner.projected_schema, scanner.to_batches(), version, options, metadata=whole)


def _read_shards(
    reader: DropReader, shards: list[list[Path]], target: ShardTarget, processes: int
) -> list[_ShardOutcome]:
    if processes == 1:
        return [read_shard(reader, paths, index, target) for index, paths in enumerate(shards)]
    # spawn, not fork: a forked child of a threaded process (Dagster, delta-rs) can inherit a held lock.
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        count = len(shards)
        return list(pool.map(read_shard, [reader] * count, shards, range(count), [target] * count))
