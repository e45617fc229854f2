"""Keeping the lake small: compact each table's small files and vacuum the files no live version needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import deltalake
from pyarrow import fs

from assets.storage.delta import Lake

DEFAULT_RETENTION_HOURS = 168  # Delta's default: time travel and readers of older versions keep a week


@dataclass(frozen=True)
class TableMaintenance:
    """What maintaining one table did."""

    table: str
    files_compacted: int
    files_added: int
    files_vacuumed: int
    bytes_before: int
    bytes_after: int


def _size(uri: str) -> int:
    """The bytes of every file under a folder or an object-store prefix."""
    filesystem, path = _filesystem(uri)
    found = filesystem.get_file_info(fs.FileSelector(path, recursive=True, allow_not_found=True))
    return sum(info.size or 0 for info in found if info.type == fs.FileType.File)


def _filesystem(uri: str) -> tuple[fs.FileSystem, str]:
    return fs.FileSystem.from_uri(uri) if "://" in uri else (fs.LocalFileSystem(), str(Path(uri).resolve()))


def lake_tables(lake: Lake) -> list[str]:
    """The Delta tables of a lake (a folder or an object-store prefix), by name."""
    filesystem, root = _filesystem(lake.root)
    if filesystem.get_file_info(root).type != fs.FileType.Directory:
        return []
    found = filesystem.get_file_info(fs.FileSelector(root, recursive=False))
    folders = [info.base_name for info in found if info.type == fs.FileType.Directory]
    return sorted(name for name in folders if lake.exists(name))


def maintain_table(lake: Lake, table: str, retention_hours: int = DEFAULT_RETENTION_HOURS) -> TableMaintenance:
    """Compact small files, then delete the files older than `retention_hours` that no current version reads.

    A retention under Delta's default week is allowed on a local lake (the caller gives up time travel), where
    the table's write lock keeps every writer out meanwhile; an object-store lake has no such lock (the service
    appends from another machine), so there a shorter retention could delete a writer's files before its commit:
    refused.
    """
    if "://" in lake.root and retention_hours < DEFAULT_RETENTION_HOURS:
        raise ValueError(
            f"{lake.uri(table)}: a retention under {DEFAULT_RETENTION_HOURS} hours is refused on an "
            "object-store lake, where writers on other machines are not held off by a lock"
        )
    with lake.writing(table):
        before = _size(lake.uri(table))
        delta = deltalake.DeltaTable(lake.uri(table), storage_options=lake.store_options() or None)
        compacted = delta.optimize.compact()
        removed = delta.vacuum(
            retention_hours=retention_hours,
            dry_run=False,
            enforce_retention_duration=retention_hours >= DEFAULT_RETENTION_HOURS,
        )
        return TableMaintenance(
            table,
            int(compacted.get("numFilesRemoved", 0)),
            int(compacted.get("numFilesAdded", 0)),
            len(removed),
            before,
            _size(lake.uri(table)),
        )
