"""Deterministic, stratified train/val/test splits and label maps."""

from __future__ import annotations

import polars as pl

from assets.storage.records import content_hash

SPLITS = ("train", "val", "test")


def assign_splits(
    documents: pl.DataFrame,
    seed: int = 13,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    group_column: str | None = None,
) -> pl.DataFrame:
    """Add a `split` column: within each label, rows ordered by a seeded hash of `doc_id`.

    The same documents and seed always give the same split, whatever the row order. Every label
    with at least 3 rows gets at least one val and one test row. With `group_column`, every row of a
    group (a customer, a thread, a near-duplicate cluster) lands in the same split, stratified by
    the group's most frequent label; a row without a group is its own group.
    """
    if group_column is not None:
        if group_column not in documents.columns:
            raise ValueError(f"group column {group_column!r} is not a column of the examples ({documents.columns})")
        keyed = documents.with_columns(pl.coalesce(pl.col(group_column).cast(pl.String), "doc_id").alias("__group"))
        groups = keyed.group_by("__group").agg(pl.col("label").mode().sort().first())
        split = assign_splits(groups.rename({"__group": "doc_id"}), seed, val_fraction, test_fraction)
        return keyed.join(
            split.select(pl.col("doc_id").alias("__group"), "split"), on="__group", how="left", maintain_order="left"
        ).drop("__group")
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"bad split fractions: val={val_fraction}, test={test_fraction}")
    keys = content_hash(pl.Series([f"{seed}:{d}" for d in documents["doc_id"]]))
    size = pl.len().over("label")
    rank = pl.col("__key").rank("ordinal").over("label") - 1

    def quota(fraction: float) -> pl.Expr:
        wanted = (size * fraction).round(0).cast(pl.Int64)
        return pl.when(size >= 3).then(pl.max_horizontal(wanted, pl.lit(1) if fraction else pl.lit(0))).otherwise(0)

    test_n, val_n = quota(test_fraction), quota(val_fraction)
    return (
        documents.with_columns(keys.alias("__key"))
        .with_columns(
            pl.when(rank < test_n)
            .then(pl.lit("test"))
            .when(rank < test_n + val_n)
            .then(pl.lit("val"))
            .otherwise(pl.lit("train"))
            .alias("split")
        )
        .drop("__key")
    )


def build_label_map(labels: pl.Series) -> dict[str, int]:
    """Labels sorted by name, numbered from 0."""
    return {label: index for index, label in enumerate(sorted(labels.drop_nulls().unique().to_list()))}


def split_counts(examples: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Rows per split and label, for metadata."""
    counts = examples.group_by("split", "label").len().sort("split", "label")
    result: dict[str, dict[str, int]] = {}
    for row in counts.iter_rows(named=True):
        result.setdefault(row["split"], {})[row["label"]] = row["len"]
    return result
