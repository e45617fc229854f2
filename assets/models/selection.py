"""The selection matrix of a training set: candidates fitted on its train split and measured on its val split.

The test split never reaches a candidate: selection is made on val, and test stays for the final evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from assets.text.tokenize import analyzed_words
from trainers.default_model import resolve_model_source
from trainers.params import TrainingParams
from trainers.selection.candidates import CandidateData, FrozenEncoderCandidate, TfidfCandidate
from trainers.selection.fine_tune import FineTuneCandidate
from trainers.selection.matrix import SelectionLimits, choose_candidate, measure_candidate, pareto_front

KINDS = ("tfidf-logreg", "encoder-frozen-logreg", "encoder-finetune", "encoder-lora")
DEFAULT_CANDIDATES = ("tfidf-logreg", "encoder-frozen-logreg")
LORA_RANK = 8
LORA_LEARNING_RATE = 5e-4  # adapters start at zero and hold few weights: they need a larger step than a full fine-tune


@dataclass(frozen=True)
class CandidateSpec:
    """One matrix row asked for: a kind and, for encoder kinds, the encoder (`kind@source`; default: the config's)."""

    kind: str
    source: str

    @property
    def name(self) -> str:
        """The row's name: the kind, and the encoder's folder name or hub id when it is not the default."""
        if self.kind == "tfidf-logreg" or self.source == "default":
            return self.kind
        return f"{self.kind}@{Path(self.source).name or self.source}"

    def settings(self) -> dict[str, object]:
        """What `fine_tuned_model` trains when this candidate is chosen (a frozen encoder's winner is fine-tuned)."""
        if self.kind == "tfidf-logreg":
            return {"model_kind": "tfidf"}
        if self.kind == "encoder-lora":
            return {
                "model_kind": "transformer",
                "model_name_or_path": self.source,
                "lora_rank": LORA_RANK,
                "learning_rate": LORA_LEARNING_RATE,
            }
        return {"model_kind": "transformer", "model_name_or_path": self.source, "lora_rank": 0}


@dataclass(frozen=True)
class FineTuneBudget:
    """What each fine-tune candidate may spend: the same for all of them."""

    epochs: int = 2
    max_seconds: float = 0.0
    max_length: int = 64


def parse_candidates(names: list[str] | tuple[str, ...], default_source: str) -> list[CandidateSpec]:
    """Specs from `kind` or `kind@model`; an unknown kind is refused naming the known ones."""
    specs = []
    for name in names:
        kind, _, source = name.partition("@")
        if kind not in KINDS:
            raise ValueError(
                f"unknown candidate {name!r} (known kinds: {', '.join(KINDS)}; add @<model> for another encoder)"
            )
        specs.append(CandidateSpec(kind, source or default_source))
    return specs


def build_candidate(spec: CandidateSpec, budget: FineTuneBudget, seed: int = 13):
    """The candidate object a spec names."""
    source = resolve_model_source(spec.source)
    if spec.kind == "tfidf-logreg":
        return TfidfCandidate(seed=seed)
    if spec.kind == "encoder-frozen-logreg":
        return FrozenEncoderCandidate(source, budget.max_length, seed=seed, name=spec.name)
    lora = {"lora_rank": LORA_RANK, "learning_rate": LORA_LEARNING_RATE} if spec.kind == "encoder-lora" else {}
    params = TrainingParams(
        model_name_or_path=source, max_epochs=budget.epochs, max_length=budget.max_length, seed=seed, **lora
    )
    return FineTuneCandidate(spec.name, params, budget.max_seconds)


@dataclass(frozen=True)
class SelectionResult:
    """The matrix (one row per candidate), the Pareto front and the chosen candidate with the reason."""

    rows: list[dict]
    front: set[str]
    chosen: str | None
    reason: str


def with_analyzed_text(examples: pl.DataFrame, tokenized: pl.DataFrame) -> pl.DataFrame:
    """Examples with `analyzed`: their lemmas then their stems as one string of words (from tokenized_documents)."""
    words = analyzed_words(tokenized).unique("doc_id", keep="first")
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
    specs: list[CandidateSpec],
    limits: SelectionLimits | None = None,
    budget: FineTuneBudget | None = None,
) -> SelectionResult:
    """Fit and measure each candidate on the same splits and budget; choose by val macro F1 within the limits."""
    rows = []
    for spec in specs:
        candidate = build_candidate(spec, budget or FineTuneBudget())
        rows.append(
            {
                **measure_candidate(candidate, train, val, classes, folder),
                "candidate": spec.name,
                "settings": json.dumps(spec.settings(), sort_keys=True),
            }
        )
    chosen, reason = choose_candidate(rows, limits or SelectionLimits())
    return SelectionResult(rows, pareto_front(rows), chosen, reason)


def chosen_settings(matrix: pl.DataFrame) -> tuple[str, dict[str, object]] | None:
    """The chosen candidate of a version's matrix and the settings it gives `fine_tuned_model`; None if none."""
    chosen = matrix.filter(pl.col("chosen"))
    if chosen.is_empty():
        return None
    return chosen["candidate"][0], json.loads(chosen["settings"][0])
