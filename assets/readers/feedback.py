"""Feedback as data: true labels posted to the service's /feedback, joined with the prepared text they label,
arrive as a dataset version of their own and pass the same rules as any other data."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from assets.readers.arrivals import land_records
from assets.readers.http import records_digest
from assets.readers.mapping import RecordMapping
from assets.storage.delta import Lake
from assets.storage.home import check_version_name
from assets.storage.tables import FEEDBACK, SERVICE_PREDICTIONS

FEEDBACK_MAPPING = RecordMapping(text_column="text", label_column="label", id_column="prediction_id")
FEEDBACK_COLUMNS = ("prediction_id", "text", "label", "predicted_label", "model_version", "received_at")


def pending_feedback(lake: Lake, after: float | None) -> pl.DataFrame:
    """Feedback received after `after` (epoch seconds), the newest label per prediction, with the text it labels.

    Feedback on a prediction the service did not log (another lake, a typo) has no text and is left out.
    """
    if not lake.exists(FEEDBACK) or not lake.exists(SERVICE_PREDICTIONS):
        return pl.DataFrame(schema=dict.fromkeys(FEEDBACK_COLUMNS, pl.String))
    feedback = pl.read_delta(lake.uri(FEEDBACK))
    if after is not None:
        feedback = feedback.filter(pl.col("received_at") > after)
    feedback = feedback.sort("received_at").unique("prediction_id", keep="last", maintain_order=True)
    predictions = pl.read_delta(lake.uri(SERVICE_PREDICTIONS)).select(
        "prediction_id", "text", pl.col("label").alias("predicted_label"), "model_version"
    )
    return feedback.join(predictions.unique("prediction_id"), on="prediction_id", how="inner").select(FEEDBACK_COLUMNS)


def feedback_tick(lake: Lake, landing: Path, known: set[str], after: float | None) -> tuple[str | None, float | None]:
    """New feedback becomes a `landing/feedback-<hash>/` version of NDJSON records; returns (version, new cursor)."""
    rows = pending_feedback(lake, after)
    if rows.is_empty():
        return None, after
    cursor = float(rows["received_at"].max())
    records = rows.sort("received_at", "prediction_id").to_dicts()
    digest = records_digest(records)
    version = check_version_name(f"feedback-{digest[:12]}")
    if version in known or (landing / version).exists():
        return None, cursor
    land_records(
        landing, version, records, FEEDBACK_MAPPING, "feedback", source="service feedback", content_sha256=digest
    )
    return version, cursor
