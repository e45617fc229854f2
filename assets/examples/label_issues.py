"""Suspected label errors of one version's examples: a cheap model's out-of-fold probabilities, then cleanlab.

Confident learning (cleanlab's `find_label_issues`) needs, for every example, probabilities from a model that did
not see it: the TF-IDF candidate is fitted k times, each time on the other folds. Every split is scored that way;
the policy may move train and val suspects to the quarantine, never the test split's (accuracy is measured against
the data as labelled). Near-duplicates that the cleaning quarantined with a different label are reported beside.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import polars as pl

from assets.storage.delta import VERSION_COLUMN, Lake
from assets.storage.records import empty_quarantine, quarantine_documents, read_version
from assets.text.tokenize import analyzed_words
from contracts.tables import QUARANTINE, TRAINING_EXAMPLES

LABEL_ISSUE_POLICIES = ("report", "quarantine", "relabel", "off")  # relabel: reported, for `refinery review`
LABEL_ISSUE_MODELS = ("tfidf", "encoder")  # the out-of-fold model: the TF-IDF candidate, or a frozen encoder's head
SUSPECTED = "suspected_label_error"
CONFLICTING = "conflicting_duplicate"
QUARANTINED_SPLITS = ("train", "val")
DUPLICATE_RULES = ("duplicate", "near_duplicate")
LABEL_ISSUE_SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.String(),
    "rank": pl.Int64(),
    "doc_id": pl.String(),
    "source": pl.String(),
    "source_row": pl.Int64(),
    "split": pl.String(),
    "text": pl.String(),
    "given_label": pl.String(),
    "suggested_label": pl.String(),
    "self_confidence": pl.Float64(),
    "duplicate_of": pl.String(),
    "duplicate_label": pl.String(),
    "action": pl.String(),
}


@dataclass(frozen=True)
class LabelIssueSettings:
    """How a version's labels are screened."""

    policy: str = "report"
    folds: int = 5
    seed: int = 13
    model: str = "tfidf"
    encoder: str = "default"  # the frozen encoder's model (the embedded MiniLM by default)


@dataclass
class LabelScreen:
    """What screening found: the issues table, how many examples were scored, and why, if none were."""

    issues: pl.DataFrame
    scanned: int
    note: str

    @property
    def suspects(self) -> int:
        return int((self.issues["kind"] == SUSPECTED).sum())


def out_of_fold_probabilities(
    texts: list[str], analyzed: list[str], labels: np.ndarray, settings: LabelIssueSettings, folds: int
) -> np.ndarray:
    """Each example's class probabilities from a model fitted on the folds it is not in: the TF-IDF candidate, or
    a logistic regression on a frozen encoder's sentence vectors (the texts are embedded once)."""
    from sklearn.model_selection import StratifiedKFold

    if settings.model not in LABEL_ISSUE_MODELS:
        raise ValueError(f"label issue model {settings.model!r}: expected one of {', '.join(LABEL_ISSUE_MODELS)}")
    classes = int(labels.max()) + 1
    vectors = _frozen_vectors(texts, settings) if settings.model == "encoder" else None
    probabilities = np.zeros((len(texts), classes), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=settings.seed)
    for fitted, held in splitter.split(np.zeros(len(labels)), labels):
        if vectors is None:
            probabilities[held] = _tfidf_fold(texts, analyzed, labels, fitted, held, seed=settings.seed)
        else:
            probabilities[held] = _encoder_fold(vectors, labels, fitted, held, seed=settings.seed)
    return probabilities


def _frozen_vectors(texts: list[str], settings: LabelIssueSettings) -> np.ndarray:
    from trainers.default_model import resolve_model_source
    from trainers.selection.candidates import FrozenEncoderCandidate

    return FrozenEncoderCandidate(resolve_model_source(settings.encoder), seed=settings.seed).embed(texts)


def _tfidf_fold(texts, analyzed, labels: np.ndarray, fitted: np.ndarray, held: np.ndarray, *, seed: int):
    from trainers.selection.candidates import TfidfCandidate

    model = TfidfCandidate(seed=seed)
    model.fit(_subset(texts, analyzed, labels, fitted), int(labels.max()) + 1)
    return model.predict_proba(_subset(texts, analyzed, labels, held))


def _encoder_fold(vectors: np.ndarray, labels: np.ndarray, fitted: np.ndarray, held: np.ndarray, *, seed: int):
    from sklearn.linear_model import LogisticRegression

    head = LogisticRegression(C=50.0, max_iter=500, random_state=seed).fit(vectors[fitted], labels[fitted])
    full = np.zeros((len(held), int(labels.max()) + 1))
    full[:, head.classes_] = head.predict_proba(vectors[held])
    return full


def _subset(texts: list[str], analyzed: list[str], labels: np.ndarray, rows: np.ndarray):
    from trainers.selection.candidates import CandidateData

    return CandidateData([texts[row] for row in rows], [analyzed[row] for row in rows], labels[rows])


def screening_folds(labels: pl.Series, folds: int) -> int:
    """The folds the smallest label allows (a label needs an example in every fold); below two, none."""
    smallest = int(labels.value_counts()["count"].min() or 0)
    return min(folds, smallest) if smallest >= 2 else 0


def find_label_suspects(examples: pl.DataFrame, analyzed: pl.DataFrame, settings: LabelIssueSettings) -> LabelScreen:
    """Rank the examples whose label the out-of-fold model doubts (cleanlab's confident learning)."""
    if settings.policy == "off":
        return LabelScreen(pl.DataFrame(schema=LABEL_ISSUE_SCHEMA), 0, "label screening is off for this dataset")
    labelled = examples.filter(pl.col("label").is_not_null()).drop("analyzed", strict=False)
    labelled = labelled.join(analyzed, on="doc_id", how="left").with_columns(
        pl.lit(None, dtype=LABEL_ISSUE_SCHEMA[name]).alias(name)
        for name in ("source", "source_row", "split")
        if name not in examples.columns
    )
    folds = screening_folds(labelled["label"], settings.folds) if labelled.height else 0
    if labelled["label"].n_unique() < 2 or folds < 2:
        note = "not screened: it needs two labels with two examples each"
        return LabelScreen(pl.DataFrame(schema=LABEL_ISSUE_SCHEMA), 0, note)
    names = sorted(labelled["label"].unique().to_list())
    ids = labelled["label"].replace_strict(names, list(range(len(names))), return_dtype=pl.Int64).to_numpy()
    texts, words = labelled["text"].to_list(), labelled["analyzed"].fill_null("").to_list()
    try:
        probabilities = out_of_fold_probabilities(texts, words, ids, settings, folds)
    except ValueError as error:  # e.g. a vocabulary left empty by tiny folds: screening is advice, never a failure
        if settings.model not in LABEL_ISSUE_MODELS:
            raise
        return LabelScreen(pl.DataFrame(schema=LABEL_ISSUE_SCHEMA), 0, f"not screened: {error}")
    from cleanlab.filter import find_label_issues

    ranked = find_label_issues(ids, probabilities, return_indices_ranked_by="self_confidence", n_jobs=1)
    suspects = labelled[ranked].with_columns(
        pl.lit(SUSPECTED).alias("kind"),
        pl.Series("rank", np.arange(1, len(ranked) + 1), dtype=pl.Int64),
        pl.col("label").alias("given_label"),
        pl.Series("suggested_label", [names[i] for i in probabilities[ranked].argmax(axis=1)], dtype=pl.String),
        pl.Series("self_confidence", probabilities[ranked, ids[ranked]], dtype=pl.Float64),
        pl.lit(None, dtype=pl.String).alias("duplicate_of"),
        pl.lit(None, dtype=pl.String).alias("duplicate_label"),
        _action(settings.policy),
    )
    model = "TF-IDF" if settings.model == "tfidf" else f"frozen encoder ({settings.encoder})"
    note = f"{model} out-of-fold probabilities ({folds} folds), cleanlab confident learning"
    return LabelScreen(suspects.select(list(LABEL_ISSUE_SCHEMA)), labelled.height, note)


def _action(policy: str) -> pl.Expr:
    moved = pl.col("split").is_in(QUARANTINED_SPLITS) & pl.lit(policy == "quarantine")
    return pl.when(moved).then(pl.lit("quarantined")).otherwise(pl.lit("reported")).alias("action")


def conflicting_duplicates(quarantine: pl.DataFrame, kept_labels: pl.DataFrame) -> pl.DataFrame:
    """Duplicates the cleaning quarantined whose label differs from the copy it kept (`kept_labels`: doc_id, label)."""
    copies = quarantine.filter(pl.col("rule").is_in(DUPLICATE_RULES) & pl.col("duplicate_of").is_not_null())
    if copies.is_empty():
        return pl.DataFrame(schema=LABEL_ISSUE_SCHEMA)
    records = [json.loads(record) for record in copies["record"].to_list()]
    copies = copies.with_columns(
        pl.Series("text", [record.get("text") for record in records], dtype=pl.String),
        pl.Series("given_label", [record.get("label") for record in records], dtype=pl.String),
    )
    kept = kept_labels.select(pl.col("doc_id").alias("duplicate_of"), pl.col("label").alias("duplicate_label"))
    conflicts = copies.join(kept, on="duplicate_of", how="inner").filter(
        pl.col("given_label").is_not_null() & (pl.col("given_label") != pl.col("duplicate_label"))
    )
    return conflicts.sort("source", "source_row").select(
        pl.lit(CONFLICTING).alias("kind"),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("rank"),
        "doc_id",
        "source",
        "source_row",
        pl.lit(None, dtype=pl.String).alias("split"),
        "text",
        "given_label",
        pl.col("duplicate_label").alias("suggested_label"),
        pl.lit(None, dtype=pl.Float64).alias("self_confidence"),
        "duplicate_of",
        "duplicate_label",
        pl.lit("reported").alias("action"),
    )


def quarantine_suspects(kept: pl.DataFrame, screen: LabelScreen) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The examples less the suspects the policy moved, and those suspects as quarantine rows."""
    moved = screen.issues.filter((pl.col("kind") == SUSPECTED) & (pl.col("action") == "quarantined"))
    if moved.is_empty():
        return kept, quarantine_documents(kept.clear(), "validate", SUSPECTED, "")
    suggested = moved.select("doc_id", "suggested_label", "self_confidence")
    leaving = kept.join(suggested, on="doc_id", how="inner")
    rejected = quarantine_documents(
        leaving,
        "validate",
        SUSPECTED,
        "the out-of-fold model doubts this label (cleanlab); the suggested label is in value",
        value=pl.col("suggested_label"),
    )
    return kept.join(suggested, on="doc_id", how="anti"), rejected


def screen_version(
    lake: Lake,
    version: str,
    tokenized: pl.DataFrame,
    kept: pl.DataFrame,
    *,
    settings: LabelIssueSettings,
    earlier: list[str],
) -> tuple[pl.DataFrame, pl.DataFrame, LabelScreen]:
    """Screen a version's examples: the examples the policy keeps, the suspects it quarantines, and the issues
    (suspects, then duplicates quarantined with another label than the copy kept, here or in one of the `earlier`
    versions of its dataset)."""
    screen = find_label_suspects(kept, analyzed_words(tokenized), settings)
    if settings.policy == "off":
        return kept, quarantine_documents(kept.clear(), "validate", SUSPECTED, ""), screen
    quarantine = read_version(lake, QUARANTINE, version) if lake.exists(QUARANTINE) else empty_quarantine()
    duplicates = quarantine.filter(pl.col("rule").is_in(DUPLICATE_RULES))
    targets = duplicates["duplicate_of"].drop_nulls().unique()
    kept_labels = kept.select("doc_id", "label")
    if lake.exists(TRAINING_EXAMPLES) and len(targets) and earlier:
        found = lake.scan(TRAINING_EXAMPLES, earlier).filter(pl.col("doc_id").is_in(targets.implode()))
        order = pl.col(VERSION_COLUMN).replace_strict(earlier, list(range(len(earlier))), return_dtype=pl.Int64)
        copies = found.sort(order, descending=True).select("doc_id", "label").collect()  # the latest copy first
        kept_labels = pl.concat([kept_labels, copies]).unique("doc_id", keep="first", maintain_order=True)
    conflicts = conflicting_duplicates(duplicates, kept_labels)
    kept, rejected = quarantine_suspects(kept, screen)
    screen.issues = pl.concat([screen.issues, conflicts])
    return kept, rejected, screen
