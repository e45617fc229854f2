"""Keeping the lake small: compact each table's small files and vacuum the files no live version needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import deltalake

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


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def lake_tables(lake: Lake) -> list[str]:
    """The Delta tables of a local lake, by name."""
    root = Path(lake.root)
    return sorted(p.name for p in root.iterdir() if (p / "_delta_log").is_dir()) if root.is_dir() else []


def maintain_table(lake: Lake, table: str, retention_hours: int = DEFAULT_RETENTION_HOURS) -> TableMaintenance:
    """Compact small files, then delete the files older than `retention_hours` that no current version reads.

    A retention under Delta's default week is allowed (it is the caller's choice to give up time travel),
    but never while another writer of the table runs: the table's write lock is held throughout.
    """
    folder = Path(lake.uri(table))
    with lake.writing(table):
        before = _size(folder)
        delta = deltalake.DeltaTable(lake.uri(table), storage_options=lake.store_options() or None)
        compacted = delta.optimize.compact()
        removed = delta.vacuum(
            retention_hours=retention_hours,
            dry_run=False,
            enforce_retention_duration=retention_hours >= DEFAULT_RETENTION_HOURS,
        )
        return TableMaintenance(
            table, int(compacted.get("numFilesRemoved", 0)), int(compacted.get("numFilesAdded", 0)), len(removed),
            before, _size(folder),
        )  # fmt: skip
