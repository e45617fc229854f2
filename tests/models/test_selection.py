"""The selection matrix: candidates measured on val for quality and compute, chosen within limits, test untouched."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from assets.models.selection import (
    FineTuneBudget,
    candidate_data,
    parse_candidates,
    run_selection,
    selection_splits,
    with_analyzed_text,
)
from tests.conftest import TINY_CONFIGS, build_tiny_model
from trainers.selection.matrix import SelectionLimits, choose_candidate, pareto_front

WORDS = {
    "vpn": ["tunnel", "connect", "dropping", "remote", "client"],
    "printer": ["paper", "toner", "jam", "tray", "print"],
    "billing": ["invoice", "charge", "refund", "payment", "bill"],
}


def examples(rows: int = 180) -> pl.DataFrame:
    labels = list(WORDS)
    records = []
    for n in range(rows):
        label = labels[n % 3]
        words = WORDS[label]
        text = f"the {words[n % 5]} and {words[(n // 3) % 5]} issue number {n}"
        split = "test" if n % 10 == 0 else "val" if n % 10 == 1 else "train"
        records.append({"doc_id": f"d{n}", "text": text, "label": label, "split": split})
    frame = pl.DataFrame(records)
    tokenized = frame.select(
        "doc_id",
        pl.col("text").str.split(" ").alias("lemmas"),
        pl.col("text").str.split(" ").list.eval(pl.element().str.slice(0, 4)).alias("stems"),
    )
    return with_analyzed_text(frame, tokenized)


def test_the_matrix_measures_quality_and_compute_of_each_candidate(tmp_path: Path) -> None:
    encoder = build_tiny_model(tmp_path / "tiny", "bert")
    train, val = selection_splits(examples())
    label_map = {label: index for index, label in enumerate(sorted(WORDS))}
    kinds = ["tfidf-logreg", "encoder-frozen-logreg", "encoder-finetune", "encoder-lora"]
    result = run_selection(
        candidate_data(train, label_map),
        candidate_data(val, label_map),
        3,
        tmp_path / "out",
        parse_candidates(kinds, str(encoder)),
        budget=FineTuneBudget(epochs=1),
    )
    assert [row["candidate"] for row in result.rows] == [kinds[0], *(f"{kind}@tiny" for kind in kinds[1:])]
    for row in result.rows:
        assert 0 <= row["val_macro_f1"] <= 1 and 0 <= row["val_ece"] <= 1
        assert row["fit_seconds"] > 0 and row["peak_memory_mb"] > 0 and row["size_mb"] > 0 and row["parameters"] > 0
        assert 0 < row["p50_ms_batch1"] <= row["p99_ms_batch1"] and row["p50_ms_batch32"] > 0
        assert (row["p99_ms_batch1_int8"] is None) == (row["candidate"] == "tfidf-logreg")
    settings = [json.loads(row["settings"]) for row in result.rows]
    assert settings[0] == {"model_kind": "tfidf"}
    assert settings[2] == {"model_kind": "transformer", "model_name_or_path": str(encoder), "lora_rank": 0}
    assert settings[3]["lora_rank"] > 0
    tfidf = result.rows[0]
    assert tfidf["val_macro_f1"] > 0.9  # the words say the label: a cheap model is enough here
    assert result.chosen in result.front


def test_the_test_split_never_reaches_a_candidate(tmp_path: Path) -> None:
    clean = examples()
    poisoned = clean.with_columns(
        pl.when(pl.col("split") == "test").then(pl.lit("vpn")).otherwise(pl.col("label")).alias("label"),
        pl.when(pl.col("split") == "test").then(pl.lit("garbage words")).otherwise(pl.col("text")).alias("text"),
    )
    label_map = {label: index for index, label in enumerate(sorted(WORDS))}
    scores = []
    for frame in (clean, poisoned):
        train, val = selection_splits(frame)
        assert set(train["split"]) | set(val["split"]) == {"train", "val"}
        result = run_selection(
            candidate_data(train, label_map),
            candidate_data(val, label_map),
            3,
            tmp_path,
            parse_candidates(["tfidf-logreg"], "unused"),
        )
        scores.append(result.rows[0]["val_macro_f1"])
    assert scores[0] == scores[1]


def test_the_policy_takes_the_best_macro_f1_within_the_limits() -> None:
    rows = [
        {"candidate": "big", "val_macro_f1": 0.95, "p99_ms_batch1": 40.0, "peak_memory_mb": 900.0, "size_mb": 90.0},
        {"candidate": "small", "val_macro_f1": 0.91, "p99_ms_batch1": 3.0, "peak_memory_mb": 300.0, "size_mb": 5.0},
        {"candidate": "worse", "val_macro_f1": 0.90, "p99_ms_batch1": 5.0, "peak_memory_mb": 300.0, "size_mb": 5.0},
    ]
    assert choose_candidate(rows, SelectionLimits())[0] == "big"
    chosen, reason = choose_candidate(rows, SelectionLimits(max_p99_ms_batch1=10))
    assert chosen == "small" and "1 over a limit" in reason
    assert choose_candidate(rows, SelectionLimits(max_size_mb=1))[0] is None
    assert pareto_front(rows) == {"big", "small"}


def test_an_unknown_candidate_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown candidate 'gpt@x' \(known kinds: tfidf-logreg"):
        parse_candidates(["tfidf-logreg", "gpt@x"], "default")


@pytest.mark.slow
def test_every_named_family_fine_tunes_as_a_matrix_row(tmp_path: Path) -> None:
    train, val = selection_splits(examples(90))
    label_map = {label: index for index, label in enumerate(sorted(WORDS))}
    names = [f"encoder-finetune@{build_tiny_model(tmp_path / family, family)}" for family in sorted(TINY_CONFIGS)]
    result = run_selection(
        candidate_data(train, label_map),
        candidate_data(val, label_map),
        3,
        tmp_path / "out",
        parse_candidates(names, "default"),
        budget=FineTuneBudget(epochs=1),
    )
    assert [row["candidate"] for row in result.rows] == [f"encoder-finetune@{f}" for f in sorted(TINY_CONFIGS)]
    assert all(row["parameters"] > 0 and row["p99_ms_batch1_int8"] > 0 for row in result.rows)
