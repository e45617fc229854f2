"""Asset metadata shared by the stages: counts, the Delta table and a preview of the rows."""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg
import polars as pl

from assets.storage.delta import Lake
from assets.storage.records import reason_counts

PREVIEW_COLUMNS = ("doc_id", "text", "label", "source", "source_row")


def preview(frame: pl.DataFrame, rows: int = 5, columns: tuple[str, ...] = PREVIEW_COLUMNS) -> dg.MetadataValue:
    """A markdown table of the first rows, texts shortened."""
    shown = frame.select([c for c in columns if c in frame.columns]).head(rows)
    shown = shown.with_columns(pl.col(pl.String).str.slice(0, 80))
    header = "| " + " | ".join(shown.columns) + " |\n|" + "---|" * len(shown.columns) + "\n"
    body = "".join("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |\n" for row in shown.iter_rows())
    return dg.MetadataValue.md(header + body)


def stage_metadata(
    lake: Lake, table: str, delta_version: int, kept: pl.DataFrame, rejected: pl.DataFrame, rules_hash: str
) -> dict[str, object]:
    """What the UI shows for a stage's write: rows in, kept and quarantined by rule, the Delta table and a preview."""
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


def embedded_png(path: Path, title: str) -> str:
    """Markdown showing a PNG inline (the UI renders data URIs), so the picture travels with the metadata."""
    return f"![{title}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"
