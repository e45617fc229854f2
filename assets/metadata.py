"""Asset metadata shared by the stages: counts, the Delta table and a preview of the rows."""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg
import polars as pl

from assets.examples.label_issues import LabelScreen
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


SUSPECT_COLUMNS = ("rank", "kind", "split", "given_label", "suggested_label", "self_confidence", "source", "source_row")


def label_issue_metadata(screen: LabelScreen, policy: str, table_uri: str, rows: int = 20) -> dict[str, object]:
    """The label screening as the UI shows it: counts, the policy, and the top suspects as a table."""
    issues = screen.issues
    top = issues.head(rows).with_columns(
        pl.col("text").str.slice(0, 120), pl.col("self_confidence").round(4).cast(pl.String)
    )
    shown = (*SUSPECT_COLUMNS, "text")
    integers = ("rank", "source_row")
    columns = [dg.TableColumn(name, "int" if name in integers else "string") for name in shown]
    records = [
        dg.TableRecord({name: row[name] if row[name] is not None else "" for name in shown})
        for row in top.iter_rows(named=True)
    ]
    return {
        "label_issue_policy": policy,
        "label_screening": screen.note,
        "label_examples_screened": screen.scanned,
        "label_suspects": screen.suspects,
        "label_conflicting_duplicates": issues.height - screen.suspects,
        "label_quarantined": int((issues["action"] == "quarantined").sum()),
        "label_issues_table": dg.MetadataValue.path(table_uri),
        "top_label_issues": dg.MetadataValue.table(records, schema=dg.TableSchema(columns)),
    }


NUMERIC_VALUES = (dg.IntMetadataValue, dg.FloatMetadataValue)


def is_number(value: object) -> bool:
    """An int or float entry, raw or as Dagster's metadata value (a bool is no number here)."""
    return isinstance(value, NUMERIC_VALUES) or (isinstance(value, int | float) and not isinstance(value, bool))


def per_dataset(dataset: str, metadata: dict[str, object]) -> dict[str, object]:
    """The metadata with each number again under `<name> · <dataset>`. One graph serves every dataset and the UI
    plots a key's history as one line, so a key of the dataset's own keeps its history apart from the others'.
    Dagster's own keys (`dagster/row_count`) are its to name, and stay as they are."""
    numbers = {
        f"{name} · {dataset}": value
        for name, value in metadata.items()
        if is_number(value) and not name.startswith("dagster/")
    }
    return {**metadata, **numbers}


def checks_per_dataset(dataset: str, results: list[dg.AssetCheckResult]) -> list[dg.AssetCheckResult]:
    """Check results whose numbers are keyed by the dataset too (see `per_dataset`)."""
    return [result._replace(metadata=per_dataset(dataset, dict(result.metadata))) for result in results]
