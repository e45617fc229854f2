"""The `dataset_versions` Delta table: one row per version with its source, files and record counts."""

from __future__ import annotations

import json
import time
from typing import Protocol

import polars as pl

from assets.storage.delta import Lake
from contracts.tables import CATALOG

CATALOG_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "files": pl.String(),
    "watermark_low": pl.String(),
    "watermark_high": pl.String(),
    "records_read": pl.Int64(),
    "rows_ingested": pl.Int64(),
    "quarantined_at_ingest": pl.Int64(),
    "rows_kept": pl.Int64(),
    "quarantined_total": pl.Int64(),
    "text_recipe": pl.String(),  # JSON: how clean_documents prepared the version's texts
    "created_at": pl.String(),
    "updated_at": pl.String(),
}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def catalog_entry(lake: Lake, version: str) -> dict[str, object] | None:
    """The catalog row of one version, or None."""
    if not lake.exists(CATALOG):
        return None
    rows = lake.scan(CATALOG, [version]).collect()
    return rows.row(0, named=True) if rows.height else None


def _write(lake: Lake, version: str, entry: dict[str, object]) -> None:
    row = {name: entry.get(name) for name in CATALOG_SCHEMA}
    lake.write_version(CATALOG, pl.DataFrame([row], schema=CATALOG_SCHEMA), version)


class IngestedVersion(Protocol):
    """What ingestion knows about a version once its reader is drained (a `Reader` meets it)."""

    files: list[dict[str, object]]
    rows: int

    @property
    def records_read(self) -> int: ...


def record_ingest(lake: Lake, version: str, manifest: dict[str, object], reader: IngestedVersion) -> None:
    """Write a version's row after ingestion; a re-run keeps its first `created_at`."""
    previous = catalog_entry(lake, version) or {}
    sql = manifest["kind"] == "sql"
    now = _now()
    _write(
        lake,
        version,
        {
            "source": f"{manifest['kind']}:{manifest.get('source', f'landing/{version}')}",
            "files": json.dumps(reader.files, default=str),
            "watermark_low": _text(manifest.get("watermark_low")) if sql else None,
            "watermark_high": _text(manifest.get("watermark_high")) if sql else None,
            "records_read": reader.records_read,
            "rows_ingested": reader.rows,
            "quarantined_at_ingest": reader.records_read - reader.rows,
            "created_at": previous.get("created_at") or now,
            "updated_at": now,
        },
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def record_validation(lake: Lake, version: str, rows_kept: int, quarantined_total: int) -> None:
    """Add the kept and quarantined counts once a version's examples are validated."""
    entry = catalog_entry(lake, version)
    if entry is None:
        raise LookupError(f"dataset version {version!r} is not in the catalog: materialize raw_documents first")
    _write(
        lake, version, {**entry, "rows_kept": rows_kept, "quarantined_total": quarantined_total, "updated_at": _now()}
    )


def record_recipe(lake: Lake, version: str, recipe: dict[str, object]) -> None:
    """Record the text recipe a version was cleaned with; models trained on it carry it."""
    entry = catalog_entry(lake, version)
    if entry is None:
        raise LookupError(f"dataset version {version!r} is not in the catalog: materialize raw_documents first")
    _write(lake, version, {**entry, "text_recipe": json.dumps(recipe, sort_keys=True), "updated_at": _now()})


def version_recipe(lake: Lake, version: str) -> dict[str, object] | None:
    """The text recipe a version was cleaned with, if it was recorded."""
    entry = catalog_entry(lake, version) or {}
    return json.loads(entry["text_recipe"]) if entry.get("text_recipe") else None
