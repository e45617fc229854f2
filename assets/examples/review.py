"""A person's review of suspected label errors: the file they edit, and the corrected version it becomes.

`refinery review export` writes a version's label issues as a CSV with two columns to fill: `decision` (keep,
relabel or drop; empty: keep) and `label` (filled with the suggested label). `refinery review import` reads it back,
refuses a row it cannot follow by file, row and rule, and lands the reviewed version's records, labels corrected and
dropped rows left out, as a new version that supersedes it: the pipeline runs it through the same rules, it trains
in the reviewed version's place, and its manifest keeps every decision.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from assets.examples.label_issues import LABEL_ISSUE_SCHEMA

DECISIONS = ("keep", "relabel", "drop")
REVIEW_COLUMNS = ("dataset_version", *LABEL_ISSUE_SCHEMA, "decision", "label")
DECIDED = ("source", "source_row", "decision", "label")  # a record is its file and row: copies share a doc_id
FORMULA = r"^[=+\-@\t\r]"  # a cell a spreadsheet would run as a formula: the texts are the users' data
PROVENANCE = ("doc_id", "source_id", "source", "source_row")  # the reviewed records' own: not carried as data


class ReviewError(ValueError):
    """A review file that cannot be followed; the message names the file, row and rule."""


def review_sheet(issues: pl.DataFrame, version: str) -> pl.DataFrame:
    """The rows a reviewer decides on: every issue, `decision` empty and `label` the suggested one; a text that a
    spreadsheet would take for a formula is quoted (texts are never read back)."""
    formula = pl.col("text").str.contains(FORMULA)
    return issues.select(
        pl.lit(version).alias("dataset_version"),
        *LABEL_ISSUE_SCHEMA,
        pl.lit("").alias("decision"),
        pl.col("suggested_label").alias("label"),
    ).with_columns(pl.when(formula).then(pl.lit("'") + pl.col("text")).otherwise(pl.col("text")).alias("text"))


def read_decisions(path: Path) -> tuple[str, pl.DataFrame]:
    """The reviewed version and its decisions (line, source, source_row, decision, label) from an edited sheet,
    each decision checked; `check_relabels` checks the new labels against the dataset's."""
    try:
        sheet = pl.read_csv(path, infer_schema=False).fill_null("")
    except (pl.exceptions.PolarsError, OSError) as error:
        raise ReviewError(f"{path}: not a readable review file ({error})") from None
    missing = [column for column in ("dataset_version", *DECIDED) if column not in sheet.columns]
    if missing:
        raise ReviewError(f"{path}: lacks the column(s) {', '.join(missing)}; export it with refinery review export")
    versions = sheet["dataset_version"].unique().to_list()
    if len(versions) != 1:
        raise ReviewError(f"{path}: reviews one dataset version at a time, this file names {sorted(versions)}")
    decided = sheet.select(
        "source",
        pl.col("source_row").cast(pl.Int64, strict=False),
        pl.col("decision").str.strip_chars().str.to_lowercase().replace("", "keep"),
        "label",
    ).with_row_index("line", offset=2)
    for row in decided.iter_rows(named=True):
        where = f"{path}: row {row['line']}"
        if row["source_row"] is None:
            raise ReviewError(f"{where}: source_row is not a row number (rule: source_row)")
        if row["decision"] not in DECISIONS:
            known = ", ".join(DECISIONS)
            raise ReviewError(f"{where}: decision {row['decision']!r} is not one of {known} (rule: decision)")
    repeated = decided.filter(pl.struct("source", "source_row").is_duplicated())
    if not repeated.is_empty():
        first = repeated.row(0, named=True)
        record = f"{first['source']} row {first['source_row']}"
        raise ReviewError(f"{path}: row {first['line']}: {record} is decided twice (rule: one_decision)")
    return versions[0], decided


def check_relabels(path: Path, decisions: pl.DataFrame, labels: set[str]) -> None:
    """Every relabel names one of the dataset's labels; the first that does not is refused by its row."""
    wrong = decisions.filter((pl.col("decision") == "relabel") & ~pl.col("label").is_in(sorted(labels)))
    if not wrong.is_empty():
        row, known = wrong.row(0, named=True), ", ".join(sorted(labels))
        raise ReviewError(
            f"{path}: row {row['line']}: relabel to {row['label']!r}, which is not a label of the dataset ({known}) "
            "(rule: known_label)"
        )


def reviewed_records(raw: pl.DataFrame, decisions: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """The reviewed version's records with the decisions applied (relabelled, dropped rows left out), as the data
    of the new version (text, label and the other carried columns), and how many rows each decision touched."""
    record = ["source", "source_row"]
    unknown = decisions.join(raw.select(record), on=record, how="anti")
    if not unknown.is_empty():
        first = unknown.row(0, named=True)
        raise ReviewError(f"{first['source']} row {first['source_row']} is not a record of the reviewed version")
    relabel = decisions.filter(pl.col("decision") == "relabel").select(*record, pl.col("label").alias("__new"))
    dropped = decisions.filter(pl.col("decision") == "drop").select(record)
    records = raw.sort(record).join(dropped, on=record, how="anti")
    records = records.join(relabel, on=record, how="left").with_columns(pl.coalesce("__new", "label").alias("label"))
    counts = {decision: int((decisions["decision"] == decision).sum()) for decision in DECISIONS}
    return records.drop("__new", *[c for c in PROVENANCE if c in records.columns]), counts
