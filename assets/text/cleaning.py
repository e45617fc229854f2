"""Cleaning: normalisation, reply and signature removal, PII masking, row rules, quality and language
filters, and exact and near-duplicate removal within a version and against earlier versions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import polars as pl

from assets.storage.delta import Lake
from assets.storage.records import ANSWER_COLUMNS, CONTEXT, empty_quarantine
from assets.text.dedup import NearDuplicateOptions, exact_duplicates, near_duplicates
from assets.text.quality import apply_quality_filters
from assets.validation.enforce import apply_row_rules
from assets.validation.labels import LabelSetRule, enforce_label_sets
from contracts.tables import CLEAN_DOCUMENTS, DEDUP_INDEX
from recipe.normalize import CleaningOptions
from recipe.pii_policy import PiiPolicy
from recipe.text_recipe import TextRecipe
from rules import RuleSet

PAIR = "__pair"  # prompt and answers, the text a generation or preference dataset's duplicates are found on


def recipe_for(rules: RuleSet | None, options: CleaningOptions, rules_hash: str = "") -> TextRecipe:
    """The recipe cleaning applies with these rules and options: it travels with every model trained on the result."""
    low, high = rules.length_bounds.get("text", (None, None)) if rules else (None, None)
    pii = rules.pii if rules and rules.pii else PiiPolicy()
    return TextRecipe(options, pii, None if low is None else int(low), None if high is None else int(high), rules_hash)


def normalize_documents(raw: pl.DataFrame, recipe: TextRecipe | None = None) -> pl.DataFrame:
    """Prepare texts (and a generation dataset's responses or a preference pair's answers: PII is masked on every
    side) with the recipe and normalise labels; the untouched texts stay in `original_text`, `original_response`..."""
    recipe = recipe or TextRecipe()
    responses = []
    for column in (column for column in ANSWER_COLUMNS if column in raw.columns):
        responses += [pl.col(column).alias(f"original_{column}"), recipe.apply(raw[column]).alias(column)]
    if CONTEXT in raw.columns:
        responses += [pl.col(CONTEXT).alias("original_context"), prepared_contexts(raw[CONTEXT], recipe)]
    return raw.with_columns(
        pl.col("text").alias("original_text"),
        recipe.apply(raw["text"]).alias("text"),
        pl.col("label").str.strip_chars().replace("", None).alias("label"),
        *responses,
    )


def prepared_contexts(contexts: pl.Series, recipe: TextRecipe) -> pl.Series:
    """Chat contexts (JSON lists of {role, content}) with every message's content through the recipe."""
    turns = [json.loads(context) if context else [] for context in contexts]
    contents = recipe.apply(pl.Series([m["content"] for turn in turns for m in turn], dtype=pl.String)).to_list()
    prepared, at = [], 0
    for turn in turns:
        messages = [{**message, "content": contents[at + i] or ""} for i, message in enumerate(turn)]
        at += len(turn)
        prepared.append(json.dumps(messages, ensure_ascii=False) if messages else None)
    return pl.Series(CONTEXT, prepared, dtype=pl.String)


def dedup_column(documents: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """The documents with the column duplicates are found on: the text, or a generation dataset's prompt and
    response together (one prompt may have several good answers), or a preference record's prompt and both answers."""
    answers = [pl.col(column).fill_null("") for column in ANSWER_COLUMNS if column in documents.columns]
    if not answers:
        return documents, "text"
    parts = [pl.col(CONTEXT).fill_null("")] if CONTEXT in documents.columns else []
    pair = pl.concat_str([*parts, pl.col("text").fill_null(""), *answers], separator="\n\n")
    return documents.with_columns(pair.alias(PAIR)), PAIR


@dataclass
class CleanedVersion:
    """What cleaning one version produced."""

    kept: pl.DataFrame
    rejected: pl.DataFrame
    dedup_index: pl.DataFrame
    duplicates: int
    near_duplicates: int
    unseen_labels: dict[str, list[str]] = field(default_factory=dict)  # task -> labels its label set lacked


def clean_version(
    raw: pl.DataFrame,
    rules: RuleSet | None,
    recipe: TextRecipe | None = None,
    *,
    near: NearDuplicateOptions | None = None,
    earlier: EarlierCopies | None = None,
    label_sets: list[LabelSetRule] | None = None,
    answer_columns: tuple[str, ...] = (),
) -> CleanedVersion:
    """Prepare texts (the recipe), enforce row rules, label sets and quality filters, then drop duplicates;
    `answer_columns` are the dataset's own beside the text (a generation's response, a preference pair's answers)."""
    others = [c for c in (*ANSWER_COLUMNS, CONTEXT) if c not in answer_columns]
    raw = raw.drop(others, strict=False)  # a lake shared with other kinds of dataset reads back their (null) columns
    cleaned = normalize_documents(raw, recipe or recipe_for(rules, CleaningOptions()))
    passed, broken = apply_row_rules(cleaned, rules, "clean") if rules else (cleaned, empty_quarantine())
    passed, unlabelled, unseen = enforce_label_sets(passed, label_sets or [])
    broken = pl.concat([broken, unlabelled])
    passed, low_quality = apply_quality_filters(passed, rules.quality if rules else {}, "clean")
    passed, column = dedup_column(passed)
    earlier = earlier or EarlierCopies()
    unique, exact = exact_duplicates(passed, "clean", earlier.keys, column)
    kept, near_copies, index = near_duplicates(unique, "clean", near or NearDuplicateOptions(), earlier.index, column)
    rejected = pl.concat([broken, low_quality, exact, near_copies])
    originals = ["original_text", "original_context", *(f"original_{column}" for column in ANSWER_COLUMNS)]
    kept = kept.drop(*originals, PAIR, strict=False)
    return CleanedVersion(kept, rejected, index, exact.height, near_copies.height, unseen)


@dataclass(frozen=True)
class EarlierCopies:
    """What earlier versions kept: their text keys and near-duplicate index rows (None when there are none)."""

    keys: pl.DataFrame | None = None
    index: pl.DataFrame | None = None


def earlier_dedup_state(lake: Lake, versions: list[str]) -> EarlierCopies:
    """The text keys and near-duplicate index rows of earlier versions."""
    if not versions or not lake.exists(CLEAN_DOCUMENTS):
        return EarlierCopies()
    keys = lake.scan(CLEAN_DOCUMENTS, versions).select("text_key", "doc_id").collect()
    index = lake.scan(DEDUP_INDEX, versions).collect() if lake.exists(DEDUP_INDEX) else None
    return EarlierCopies(keys, index)
