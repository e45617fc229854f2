"""The pictures people read: each decodes, carries its title (in the image and in the PNG's metadata), and draws
what its title and legend claim."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from trainers.reports import (
    best_epoch,
    bins_calibration_error,
    confusion_png,
    preference_curves_png,
    reliability_png,
    training_curves_png,
)
from trainers.selection.matrix import MIN_QUALITY_SPAN, plot_matrix, quality_limits


def decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()  # a truncated or corrupt file fails here
    assert image.width >= 400 and image.height >= 300
    return image


def classifier_rows() -> list[dict[str, float]]:
    rows = []
    for epoch in range(3):
        for step in range(epoch * 10, epoch * 10 + 10):
            rows.append({"step": step, "epoch": epoch, "train_loss": 1.2 - step / 40, "train_ce": 1.0 - step / 40})
            rows.append({"step": step, "lr-AdamW/pg1": 8e-5 * (1 - step / 30)})
        f1 = (0.9425, 0.9436, 0.9431)[epoch]
        rows.append({"step": epoch * 10 + 9, "epoch": epoch, "val_loss": 0.5, "val_accuracy": 0.95, "val_macro_f1": f1})
    return rows


def test_training_curves_decode_with_their_title_and_mark_the_best_epoch() -> None:
    rows = classifier_rows()
    assert best_epoch(rows) == ("val_macro_f1", 1, 0.9436)
    image = decoded(training_curves_png(rows))
    assert image.info["Title"] == "Training curves"
    diverged = [{**row, "train_ce": float("nan")} if "train_ce" in row else row for row in rows]
    assert "NaN" in decoded(training_curves_png(diverged)).info["Title"]


def test_a_causal_lm_run_without_accuracy_marks_its_lowest_val_loss() -> None:
    rows = [{"step": s, "epoch": s // 5, "train_loss": 2.0 - s / 10} for s in range(10)]
    rows += [{"step": 4, "epoch": 0, "val_loss": 1.9}, {"step": 9, "epoch": 1, "val_loss": 1.7}]
    assert best_epoch(rows) == ("val_loss", 1, 1.7)
    assert decoded(training_curves_png(rows)).info["Title"] == "Training curves"


def test_the_reliability_diagram_names_its_ece_and_count() -> None:
    bins = [
        {"low": 0.5, "high": 0.75, "count": 10, "confidence": 0.6, "accuracy": 0.5},
        {"low": 0.75, "high": 1.0, "count": 30, "confidence": 0.9, "accuracy": 0.9},
        {"low": 0.0, "high": 0.5, "count": 0, "confidence": 0.0, "accuracy": 0.0},
    ]
    assert abs(bins_calibration_error(bins) - 0.025) < 1e-9
    title = decoded(reliability_png(bins)).info["Title"]
    assert title == "Reliability on the test split: ECE 0.025, 40 texts"


def test_the_confusion_and_preference_pictures_carry_titles() -> None:
    assert "4 texts" in decoded(confusion_png([[2, 0], [1, 1]], ["a", "b"])).info["Title"]
    rows = [{"step": s, "train_loss": 0.7 - s / 100, "train_reward_margin": s / 10} for s in range(5)]
    assert decoded(preference_curves_png(rows)).info["Title"] == "Preference tuning curves"


def test_the_candidates_picture_draws_a_close_race_on_a_sane_axis(tmp_path: Path) -> None:
    rows = [
        {"candidate": "tfidf-logreg", "p99_ms_batch1": 7.0, "val_macro_f1": 0.9469},
        {"candidate": "encoder-frozen-logreg", "p99_ms_batch1": 40.0, "val_macro_f1": 0.9467},
        {"candidate": "encoder-finetune", "p99_ms_batch1": 45.0, "val_macro_f1": 0.9471},
    ]
    low, high = quality_limits([row["val_macro_f1"] for row in rows])
    assert high - low >= MIN_QUALITY_SPAN - 1e-9 and low <= 0.9467 and high >= 0.9471
    image = decoded(plot_matrix(rows, tmp_path / "matrix.png").read_bytes())
    assert image.info["Title"].startswith("Candidates")
