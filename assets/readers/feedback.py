"""Feedback as data: true labels posted to the service's /feedback, joined with the prepared text they label,
arrive as a dataset version of their own and pass the same rules as any other data."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from assets.readers.arrivals import land_records
from assets.readers.http import records_digest
from assets.readers.mapping import RecordMapping
from assets.storage.delta import Lake
from assets.storage.home import check_version_name
from contracts.tables import FEEDBACK, SERVICE_PREDICTIONS

FEEDBACK_MAPPING = RecordMapping(text_column="text", label_column="label", id_column="prediction_id")
FEEDBACK_COLUMNS = ("prediction_id", "text", "label", "predicted_label", "model_version", "received_at")


FEEDBACK_GRACE_S = 3600.0  # feedback whose prediction is still not in the lake this long after it came is dropped


def pending_feedback(lake: Lake, after: float | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Feedback received after `after` (epoch seconds), the newest label per prediction: the rows joined with the
    text they label, and the rows whose prediction the lake does not hold yet (the service flushes both tables
    on its own schedule)."""
    empty = pl.DataFrame(
        schema={**dict.fromkeys(FEEDBACK_COLUMNS, pl.String), "received_at": pl.Float64, "dataset": pl.String}
    )
    if not lake.exists(FEEDBACK):
        return empty, empty.select("prediction_id", "received_at")
    feedback = pl.read_delta(lake.uri(FEEDBACK))
    if "label" not in feedback.columns:  # only generations were rated or corrected so far
        return empty, empty.select("prediction_id", "received_at")
    feedback = feedback.filter(pl.col("label").is_not_null()).select("prediction_id", "label", "received_at")
    if after is not None:
        feedback = feedback.filter(pl.col("received_at") > after)
    feedback = feedback.sort("received_at").unique("prediction_id", keep="last", maintain_order=True)
    if not lake.exists(SERVICE_PREDICTIONS):
        return empty, feedback.select("prediction_id", "received_at")
    predictions = pl.read_delta(lake.uri(SERVICE_PREDICTIONS))
    if "dataset" not in predictions.columns:  # logged before the service served several datasets
        predictions = predictions.with_columns(pl.lit(None, pl.String).alias("dataset"))
    predictions = predictions.select(
        "prediction_id", "text", pl.col("label").alias("predicted_label"), "model_version", "dataset"
    ).unique("prediction_id")
    joined = feedback.join(predictions, on="prediction_id", how="inner").select(*FEEDBACK_COLUMNS, "dataset")
    waiting = feedback.join(predictions, on="prediction_id", how="anti").select("prediction_id", "received_at")
    return joined, waiting


def next_cursor(after: float | None, landed: list, joined: pl.DataFrame, waiting: pl.DataFrame, now: float) -> dict:
    """Where the next tick starts: before the oldest feedback still waiting for its prediction (within the grace
    period), with the (prediction, time) pairs already landed after that point so they never land twice."""
    recent = waiting.filter(pl.col("received_at") > now - FEEDBACK_GRACE_S)
    seen = [*landed, *([p, float(t)] for p, t in joined.select("prediction_id", "received_at").iter_rows())]
    times = [float(t) for _, t in seen] + [float(t) for t in waiting["received_at"]]
    start = float(recent["received_at"].min()) - 1e-6 if not recent.is_empty() else max(times, default=after)
    return {"after": start, "landed": [pair for pair in seen if start is not None and pair[1] > start]}


def feedback_tick(
    lake: Lake, landing: Path, known: set[str], cursor: dict | float | None, now: float | None = None
) -> tuple[list[str], dict]:
    """New feedback becomes, per dataset it labels, a `landing/<dataset>-feedback-<hash>/` version of NDJSON
    records; returns (versions, new cursor). Feedback that arrives before its prediction is in the lake waits for
    it (up to an hour), so nothing is skipped."""
    state = cursor if isinstance(cursor, dict) else {"after": cursor, "landed": []}
    joined, waiting = pending_feedback(lake, state["after"])
    landed = pl.DataFrame(state["landed"], schema={"prediction_id": pl.String, "received_at": pl.Float64}, orient="row")
    joined = joined.with_columns(pl.col("received_at").cast(pl.Float64)).join(
        landed, on=["prediction_id", "received_at"], how="anti"
    )
    new_cursor = next_cursor(state["after"], state["landed"], joined, waiting, now or time.time())
    versions = []
    for (dataset,), group in joined.group_by("dataset", maintain_order=True):
        records = group.drop("dataset").sort("received_at", "prediction_id").to_dicts()
        digest = records_digest(records)
        version = check_version_name(f"{dataset}-feedback-{digest[:12]}" if dataset else f"feedback-{digest[:12]}")
        if version in known or (landing / version).exists():
            continue
        named = {"dataset": dataset} if dataset else {}
        land_records(
            landing,
            version,
            records,
            FEEDBACK_MAPPING,
            "feedback",
            source="service feedback",
            content_sha256=digest,
            **named,
        )
        versions.append(version)
    return versions, new_cursor
