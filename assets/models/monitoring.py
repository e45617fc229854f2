"""Monitoring inputs: recent predictions (a batch or the service's log), feedback, and the drift report."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl

from assets.models.drift import DriftReport, drift_report
from assets.storage.delta import Lake
from contracts.tables import BATCH_PREDICTIONS, FEEDBACK, SERVICE_PREDICTIONS
from trainers.bundle import read_split
from trainers.registry import read_card, read_label_map

PredictionSource = Literal["batch", "service"]


def recent_predictions(lake: Lake, version: str, source: PredictionSource, window: int) -> pl.DataFrame:
    """prediction_id (service only), text, label and score of the predictions to monitor."""
    if source == "batch":
        scored = lake.scan(BATCH_PREDICTIONS, [version])
        if "refused" in scored.collect_schema().names():
            scored = scored.filter(pl.col("refused").is_null())
        return scored.select("text", "label", "score").collect()
    if source == "service":
        if not lake.exists(SERVICE_PREDICTIONS):
            raise FileNotFoundError(f"{lake.uri(SERVICE_PREDICTIONS)}: the service has logged no predictions yet")
        frame = pl.read_delta(lake.uri(SERVICE_PREDICTIONS)).sort("predicted_at").tail(window)
        return frame.select("prediction_id", "text", "label", "score")
    raise ValueError(f"source must be 'batch' or 'service', not {source!r}")


def live_feedback(lake: Lake, recent: pl.DataFrame) -> list[tuple[str, str]]:
    """(predicted, true) label pairs for recent service predictions that got feedback."""
    if "prediction_id" not in recent.columns or not lake.exists(FEEDBACK):
        return []
    feedback = pl.read_delta(lake.uri(FEEDBACK)).unique("prediction_id", keep="last")
    joined = recent.join(feedback.rename({"label": "true_label"}), on="prediction_id")
    return list(zip(joined["label"].to_list(), joined["true_label"].to_list(), strict=True))


def monitor_model(
    lake: Lake, model_folder: Path, bundle: Path, version: str, source: PredictionSource, window: int
) -> DriftReport:
    """How recent predictions differ from what the model learned (its bundle's train split) and was tested on."""
    card, label_map = read_card(model_folder), read_label_map(model_folder)
    train_texts, train_ids = read_split(bundle, "train", label_map)
    names = {i: label for label, i in label_map.items()}
    recent = recent_predictions(lake, version, source, window)
    return drift_report(
        train_texts,
        [names[i] for i in train_ids],
        float(card.get("test_evaluation", {}).get("metrics", {}).get("mean_confidence", 1.0)),
        recent["text"].to_list(),
        recent["label"].to_list(),
        recent["score"].to_list(),
        live_feedback(lake, recent),
    )
