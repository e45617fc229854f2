"""Split leakage: the same text, a near-duplicate or one group in more than one split."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from assets.text.dedup import NearDuplicateOptions, near_duplicates, text_keys


def near_duplicate_groups(documents: pl.DataFrame, threshold: float) -> pl.Series:
    """The doc_id each document's near-duplicate cluster is named after (itself when alone)."""
    _, near, _ = near_duplicates(documents, "validate", NearDuplicateOptions(threshold=threshold))
    representative = dict(zip(near["doc_id"].to_list(), near["duplicate_of"].to_list(), strict=True))
    return documents["doc_id"].replace_strict(representative, default=documents["doc_id"], return_dtype=pl.String)


@dataclass(frozen=True)
class LeakageReport:
    """How the splits of a version's examples overlap."""

    exact_texts_in_several_splits: int
    near_duplicate_pairs_across_splits: list[tuple[str, str]]
    groups_in_several_splits: int

    @property
    def passed(self) -> bool:
        return not (
            self.exact_texts_in_several_splits
            or self.near_duplicate_pairs_across_splits
            or self.groups_in_several_splits
        )


def find_split_leakage(examples: pl.DataFrame, threshold: float, group_column: str | None) -> LeakageReport:
    """Exact and near-duplicate texts, and groups, found in more than one split."""
    ordered = examples.sort(pl.col("split").replace_strict({"train": 0, "val": 1, "test": 2}), "doc_id")
    split_of = dict(zip(ordered["doc_id"].to_list(), ordered["split"].to_list(), strict=True))
    exact = ordered.group_by(text_keys(ordered["text"]).alias("key")).agg(pl.col("split").n_unique().alias("n"))
    _, near, _ = near_duplicates(ordered, "validate", NearDuplicateOptions(threshold=threshold))
    near_leaks = [
        (d, o) for d, o in zip(near["doc_id"], near["duplicate_of"], strict=True) if split_of[d] != split_of[o]
    ]
    group_leaks = 0
    if group_column:
        splits_per_group = examples.drop_nulls(group_column).group_by(group_column).agg(pl.col("split").n_unique())
        group_leaks = int((splits_per_group["split"] > 1).sum())
    return LeakageReport(int((exact["n"] > 1).sum()), near_leaks, group_leaks)
