"""Splits: deterministic, stratified, independent of row order."""

import polars as pl

from assets.splitting import assign_splits, build_label_map, split_counts


def _documents() -> pl.DataFrame:
    labels = ["a"] * 50 + ["b"] * 20 + ["c"] * 3
    return pl.DataFrame({"doc_id": [f"doc{i}" for i in range(len(labels))], "label": labels})


def test_split_is_stratified_and_every_label_reaches_val_and_test() -> None:
    counts = split_counts(assign_splits(_documents()))
    assert counts["test"] == {"a": 5, "b": 2, "c": 1}
    assert counts["val"] == {"a": 5, "b": 2, "c": 1}
    assert counts["train"] == {"a": 40, "b": 16, "c": 1}


def test_split_depends_on_seed_not_on_row_order() -> None:
    documents = _documents()
    first = assign_splits(documents, seed=1).sort("doc_id")
    assert assign_splits(documents.reverse(), seed=1).sort("doc_id").equals(first)
    assert not assign_splits(documents, seed=2).sort("doc_id")["split"].equals(first["split"])


def test_label_map_is_sorted_and_dense() -> None:
    assert build_label_map(pl.Series(["b", "a", None, "b"])) == {"a": 0, "b": 1}
