"""The selection matrix of a training set: candidates fitted on its train split and measured on its val split.

The test split never reaches a candidate: selection is made on val, and test stays for the final evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from trainers.selection.candidates import CandidateData, FrozenEncoderCandidate, TfidfCandidate
from trainers.selection.matrix import SelectionLimits, choose_candidate, measure_candidate, pareto_front

CANDIDATES = {
    "tfidf-logreg": lambda source: TfidfCandidate(),
    "encoder-frozen-logreg": lambda source: FrozenEncoderCandidate(source),
}
DEFAULT_CANDIDATES = ("tfidf-logreg", "encoder-frozen-logreg")


@dataclass(frozen=True)
class SelectionResult:
    """The matrix (one row per candidate), the Pareto front and the chosen candidate with the reason."""

    rows: list[dict]
    front: set[str]
    chosen: str | None
    reason: str


def with_analyzed_text(examples: pl.DataFrame, tokenized: pl.DataFrame) -> pl.DataFrame:
    """Examples with `analyzed`: their lemmas then their stems as one string of words (from tokenized_documents)."""
    words = tokenized.select("doc_id", pl.concat_list("lemmas", "stems").list.join(" ").alias("analyzed")).unique(
        "doc_id", keep="first"
    )
    return examples.join(words, on="doc_id", how="left").with_columns(pl.col("analyzed").fill_null(pl.col("text")))


def selection_splits(examples: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The train and val examples: what candidates are fitted and chosen on. Test rows are left out here."""
    return examples.filter(pl.col("split") == "train"), examples.filter(pl.col("split") == "val")


def candidate_data(frame: pl.DataFrame, label_map: dict[str, int]) -> CandidateData:
    """One split's texts, analyzed texts and label ids; labels the map lacks are left out."""
    known = frame.filter(pl.col("label").is_in(list(label_map)))
    labels = np.array([label_map[label] for label in known["label"].to_list()], dtype=np.int64)
    return CandidateData(known["text"].to_list(), known["analyzed"].to_list(), labels)


def run_selection(
    train: CandidateData,
    val: CandidateData,
    classes: int,
    folder: Path,
    model_source: str,
    names: tuple[str, ...] = DEFAULT_CANDIDATES,
    limits: SelectionLimits | None = None,
) -> SelectionResult:
    """Fit and measure each named candidate; choose by val macro F1 within the limits."""
    unknown = sorted(set(names) - set(CANDIDATES))
    if unknown:
        raise ValueError(f"unknown candidates {unknown} (known: {', '.join(CANDIDATES)})")
    rows = [measure_candidate(CANDIDATES[name](model_source), train, val, classes, folder) for name in names]
    chosen, reason = choose_candidate(rows, limits or SelectionLimits())
    return SelectionResult(rows, pareto_front(rows), chosen, reason)
