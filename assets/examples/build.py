"""Training examples of one version: seeded, stratified splits that keep near-duplicates together, row rules."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from assets.examples.leakage import LeakageReport, find_split_leakage, near_duplicate_groups
from assets.examples.splitting import assign_splits
from assets.storage.records import DOCUMENT_SCHEMA, empty_quarantine
from assets.validation.enforce import apply_row_rules
from rules import RuleSet

EXAMPLE_COLUMNS = [*DOCUMENT_SCHEMA, "split", "token_count"]


@dataclass(frozen=True)
class SplitSettings:
    """How examples are split."""

    seed: int = 13
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    group_column: str | None = None  # e.g. a carried customer or thread column; None: near-duplicate clusters
    near_duplicate_threshold: float = 0.8
    task_columns: tuple[str, ...] = ()  # the labels of a dataset's other tasks, kept beside `label`


@dataclass
class ValidatedExamples:
    """What splitting and validating one version produced."""

    kept: pl.DataFrame
    rejected: pl.DataFrame
    rows_in: int
    leakage: LeakageReport


def build_examples(tokenized: pl.DataFrame, rules: RuleSet | None, settings: SplitSettings) -> ValidatedExamples:
    """Split tokenized documents into train/val/test, enforce the row rules and look for leakage."""
    group = settings.group_column
    if group is None:  # near-duplicate clusters stay in one split even when cleaning kept them
        clusters = near_duplicate_groups(tokenized, settings.near_duplicate_threshold)
        tokenized = tokenized.with_columns(clusters.alias("__cluster"))
    examples = assign_splits(
        tokenized, settings.seed, settings.val_fraction, settings.test_fraction, group or "__cluster"
    )
    kept, broken = apply_row_rules(examples, rules, "validate") if rules else (examples, empty_quarantine())
    leakage = find_split_leakage(kept, settings.near_duplicate_threshold, group)
    extra = [c for c in (group, *settings.task_columns) if c and c not in EXAMPLE_COLUMNS and c in kept.columns]
    kept = kept.select(EXAMPLE_COLUMNS + list(dict.fromkeys(extra)))
    return ValidatedExamples(kept, broken, examples.height, leakage)
