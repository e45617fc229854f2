"""Asset metadata shared by the stages: counts, previews and the stage write itself."""

from __future__ import annotations

import dagster as dg
import polars as pl

from assets.storage.records import reason_counts
from assets.resources import LakeResource

QUARANTINE = "quarantine"
PREVIEW_COLUMNS = ("doc_id", "text", "label", "source", "source_row")


def preview(frame: pl.DataFrame, rows: int = 5, columns: tuple[str, ...] = PREVIEW_COLUMNS) -> dg.MetadataValue:
    """A markdown table of the first rows, texts shortened."""
    shown = frame.select([c for c in columns if c in frame.columns]).head(rows)
    shown = shown.with_columns(pl.col(pl.String).str.slice(0, 80))
    header = "| " + " | ".join(shown.columns) + " |\n|" + "---|" * len(shown.columns) + "\n"
    body = "".join("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |\n" for row in shown.iter_rows())
    return dg.MetadataValue.md(header + body)


def write_stage(
    lake: LakeResource,
    table: str,
    stage: str,
    version: str,
    kept: pl.DataFrame,
    rejected: pl.DataFrame,
    rules_hash: str,
) -> dict[str, object]:
    """Write a stage's rows and its quarantine rows for one version; return the metadata to show."""
    delta_version = lake.write_version(table, kept, version)
    lake.write_version(QUARANTINE, rejected, version, scope={"stage": stage})
    return {
        "dagster/row_count": kept.height,
        "rows_in": kept.height + rejected.height,
        "quarantined": rejected.height,
        "quarantined_by_rule": dg.MetadataValue.json(reason_counts(rejected)),
        "delta_version": delta_version,
        "delta_table": dg.MetadataValue.path(lake.uri(table)),
        "rules_hash": rules_hash,
        "preview": preview(kept),
    }
