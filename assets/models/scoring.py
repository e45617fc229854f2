"""Batch scoring: the production model's label and score for every text of a version or a file."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from assets.storage.delta import Lake
from contracts.tables import CLEAN_DOCUMENTS


def read_texts(lake: Lake, version: str, input_path: str) -> pl.DataFrame:
    """doc_id and text of the rows to score: the version's clean documents, or a Parquet file or Delta table."""
    if not input_path:
        return lake.scan(CLEAN_DOCUMENTS, [version]).select("doc_id", "text").collect()
    path = Path(input_path)
    frame = pl.read_delta(input_path) if (path / "_delta_log").is_dir() else pl.read_parquet(input_path)
    if "text" not in frame.columns:
        raise ValueError(f"{input_path}: no `text` column to score (columns: {', '.join(frame.columns)})")
    if "doc_id" not in frame.columns:
        frame = frame.with_row_index("doc_id").with_columns(pl.col("doc_id").cast(pl.String))
    return frame.select(pl.col("doc_id").cast(pl.String), pl.col("text").cast(pl.String))


def score_texts(model_folder: Path, rows: pl.DataFrame, batch_size: int) -> pl.DataFrame:
    """`rows` with the text as the model saw it (prepared by its recipe), its label and score, or why it was refused."""
    from trainers.kinds import load_classifier  # torch loads in the step, not when the code location loads

    rows = rows.filter(pl.col("text").str.strip_chars() != "")
    classifier = load_classifier(model_folder)
    predictions = classifier.predict(rows["text"].to_list(), batch_size=batch_size)
    further_tasks = list(classifier.task_labels())[1:]  # a multi-task model: the primary task is label/score
    return rows.with_columns(
        pl.Series("text", [p.text for p in predictions], dtype=pl.String),  # never the unmasked input
        pl.Series("label", [p.label for p in predictions], dtype=pl.String),
        pl.Series("score", [p.score for p in predictions], dtype=pl.Float64),
        *task_columns(predictions, further_tasks),
        pl.Series("refused", [p.refused for p in predictions], dtype=pl.String),
        pl.lit(model_folder.name).alias("model_version"),
    )


def task_columns(predictions: list, tasks: list[str]) -> list[pl.Series]:
    """`<task>_label` and `<task>_score` of each further task (null where the text was refused)."""
    columns = []
    for task in tasks:
        answers = [p.tasks[task] if p.tasks else None for p in predictions]
        columns.append(pl.Series(f"{task}_label", [a.label if a else None for a in answers], dtype=pl.String))
        columns.append(pl.Series(f"{task}_score", [a.score if a else None for a in answers], dtype=pl.Float64))
    return columns
