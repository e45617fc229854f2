"""The summary says what the selection matrix chose and whether the fine-tune trained it, with the matrix's best
rows, so that a choice is never silently thrown away."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from assets.storage.delta import Lake
from contracts.tables import MODEL_CANDIDATES
from dagster_project.cli.summary import selection_lines, selection_summary


def matrix_lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    frame = pl.DataFrame(
        {
            "candidate": ["tfidf-logreg", "encoder-frozen-logreg"],
            "val_macro_f1": [0.9469, 0.9386],
            "p99_ms_batch1": [7.0, 40.2],
            "chosen": [True, False],
        }
    )
    lake.write_version(MODEL_CANDIDATES, frame, "v1")
    return lake


def test_a_fine_tune_that_ignored_the_choice_is_named_with_the_reason_and_the_top_rows(tmp_path: Path) -> None:
    selection = selection_summary(matrix_lake(tmp_path), "v1", {"lineage": {}})
    assert selection["chosen"] == "tfidf-logreg" and selection["trained_chosen"] is False
    shown = "\n".join(selection_lines(selection))
    assert "chose tfidf-logreg" in shown and "encoder-frozen-logreg F1 0.9386 p99 40.2 ms" in shown
    assert "from_selection is off; the matrix measured no full fine-tune" in shown


def test_a_fine_tune_that_trained_the_choice_says_so(tmp_path: Path) -> None:
    card = {"lineage": {"selection": {"candidate": "tfidf-logreg"}}}
    shown = "\n".join(selection_lines(selection_summary(matrix_lake(tmp_path), "v1", card)))
    assert "the chosen candidate, tfidf-logreg (from_selection)" in shown and "from_selection is off" not in shown


def test_a_version_without_a_matrix_has_no_selection_lines(tmp_path: Path) -> None:
    assert selection_summary(matrix_lake(tmp_path), "v2", {}) is None
    assert selection_summary(Lake(str(tmp_path / "empty")), "v1", {}) is None
