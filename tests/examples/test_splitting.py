"""Splits: deterministic, stratified, independent of row order."""

import polars as pl
import pytest

from assets.examples.splitting import assign_splits, build_label_map, split_counts


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


def test_every_row_of_a_group_lands_in_one_split() -> None:
    documents = pl.DataFrame(
        {
            "doc_id": [f"doc{i}" for i in range(200)],
            "label": ["a", "b"] * 100,
            "customer": [f"c{i % 25}" for i in range(200)],
        }
    )
    split = assign_splits(documents, group_column="customer")
    per_group = split.group_by("customer").agg(pl.col("split").n_unique())
    assert per_group["split"].max() == 1
    assert set(split["split"]) == {"train", "val", "test"}
    with pytest.raises(ValueError, match="group column 'team' is not a column"):
        assign_splits(documents, group_column="team")


def test_near_duplicate_clusters_stay_in_one_split_and_the_leak_check_sees_a_leak() -> None:
    from assets.examples.leakage import find_split_leakage, near_duplicate_groups

    base = "the vpn client disconnects every ten minutes when I work from the Lyon office since the update"
    texts = [
        base,
        "Hello, " + base,
        *(f"unrelated ticket number {i} about printers and toner on floor {i}" for i in range(40)),
    ]
    documents = pl.DataFrame(
        {
            "doc_id": [f"d{i}" for i in range(len(texts))],
            "text": texts,
            "label": ["vpn", "vpn"] + ["printer"] * 40,
            "source": ["f"] * len(texts),
            "source_row": list(range(len(texts))),
        }
    )
    clustered = documents.with_columns(near_duplicate_groups(documents, 0.6).alias("__cluster"))
    assert clustered["__cluster"][:2].to_list() == ["d0", "d0"]
    split = assign_splits(clustered, group_column="__cluster")
    assert split["split"][0] == split["split"][1]
    assert find_split_leakage(split, 0.6, None).passed
    leaked = split.with_columns(
        pl.when(pl.col("doc_id") == "d1")
        .then(pl.lit("test" if split["split"][0] != "test" else "train"))
        .otherwise(pl.col("split"))
        .alias("split")
    )
    result = find_split_leakage(leaked, 0.6, None)
    assert not result.passed and len(result.near_duplicate_pairs_across_splits) == 1
