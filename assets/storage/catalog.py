"""The `dataset_versions` Delta table: one row per version with its source, files and record counts."""

from __future__ import annotations

import json
import time

import polars as pl

from assets.resources import LakeResource

CATALOG = "dataset_versions"
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
    "created_at": pl.String(),
    "updated_at": pl.String(),
}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def catalog_entry(lake: LakeResource, version: str) -> dict[str, object] | None:
    """The catalog row of one version, or None."""
    if not lake.exists(CATALOG):
        return None
    rows = lake.scan(CATALOG, [version]).collect()
    return rows.row(0, named=True) if rows.height else None


def _write(lake: LakeResource, version: str, entry: dict[str, object]) -> None:
    row = {name: entry.get(name) for name in CATALOG_SCHEMA}
    lake.write_version(CATALOG, pl.DataFrame([row], schema=CATALOG_SCHEMA), version)


def record_ingest(
    lake: LakeResource,
    version: str,
    source: str,
    files: list[dict[str, object]],
    records_read: int,
    rows_ingested: int,
    quarantined_at_ingest: int,
    watermark: tuple[str, str] | None = None,
) -> None:
    """Write a version's row after ingestion; a re-run keeps its first `created_at`."""
    previous = catalog_entry(lake, version) or {}
    now = _now()
    _write(
        lake,
        version,
        {
            "source": source,
            "files": json.dumps(files),
            "watermark_low": watermark[0] if watermark else None,
            "watermark_high": watermark[1] if watermark else None,
            "records_read": records_read,
            "rows_ingested": rows_ingested,
            "quarantined_at_ingest": quarantined_at_ingest,
            "created_at": previous.get("created_at") or now,
            "updated_at": now,
        },
    )


def record_validation(lake: LakeResource, version: str, rows_kept: int, quarantined_total: int) -> None:
    """Add the kept and quarantined counts once a version's examples are validated."""
    entry = catalog_entry(lake, version)
    if entry is None:
        raise LookupError(f"dataset version {version!r} is not in the catalog: materialize raw_documents first")
    _write(
        lake, version, {**entry, "rows_kept": rows_kept, "quarantined_total": quarantined_total, "updated_at": _now()}
    )
