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
    predictions = pl.read_delta(lake.uri(SERVICE_PREDICTIONS))
    if "dataset" not in predictions.columns:  # logged before the service served several datasets
        predictions = predictions.with_columns(pl.lit(None, pl.String).alias("dataset"))
    predictions = predictions.select(
        "prediction_id", "text", pl.col("label").alias("predicted_label"), "model_version", "dataset"
    )
    joined = feedback.join(predictions.unique("prediction_id"), on="prediction_id", how="inner")
    return joined.select(*FEEDBACK_COLUMNS, "dataset")


def feedback_tick(lake: Lake, landing: Path, known: set[str], after: float | None) -> tuple[list[str], float | None]:
    """New feedback becomes, per dataset it labels, a `landing/<dataset>-feedback-<hash>/` version of NDJSON
    records; returns (versions, new cursor)."""
    rows = pending_feedback(lake, after)
    if rows.is_empty():
        return [], after
    cursor, versions = float(rows["received_at"].max()), []
    for (dataset,), group in rows.group_by("dataset", maintain_order=True):
        records = group.drop("dataset").sort("received_at", "prediction_id").to_dicts()
        digest = records_digest(records)
        version = check_version_name(f"{dataset}-feedback-{digest[:12]}" if dataset else f"feedback-{digest[:12]}")
        if version in known or (landing / version).exists():
            continue
        named = {"dataset": dataset} if dataset else {}
        land_records(landing, version, records, FEEDBACK_MAPPING, "feedback", source="service feedback",
                     content_sha256=digest, **named)  # fmt: skip
        versions.append(version)
    return versions, cursor
