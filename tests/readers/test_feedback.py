"""Feedback as data: labels that arrive before their prediction is in the lake wait for it, and none lands twice."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from deltalake import write_deltalake

from assets.readers.feedback import FEEDBACK_GRACE_S, feedback_tick
from assets.storage.delta import Lake


def append(lake: Path, table: str, rows: list[dict]) -> None:
    write_deltalake(str(lake / table), pl.DataFrame(rows).to_arrow(), mode="append", schema_mode="merge")


def prediction(prediction_id: str) -> dict:
    return {
        "prediction_id": prediction_id,
        "predicted_at": 1.0,
        "dataset": "tickets",
        "model_version": "m1",
        "text": f"text of {prediction_id}",
        "label": "vpn",
        "score": 0.9,
    }


def landed_ids(landing: Path, versions: list[str]) -> list[str]:
    return sorted(pl.concat([pl.read_ndjson(landing / v / "records.ndjson") for v in versions])["prediction_id"])


def test_feedback_older_than_a_landed_one_still_lands_once_its_prediction_arrives(tmp_path: Path) -> None:
    lake, landing = tmp_path / "lake", tmp_path / "landing"
    append(lake, "predictions", [prediction("b")])  # "a" is still in the service's buffer
    append(
        lake,
        "feedback",
        [
            {"prediction_id": "a", "label": "printer", "received_at": 100.0},
            {"prediction_id": "b", "label": "vpn", "received_at": 200.0},
        ],
    )
    first, cursor = feedback_tick(Lake(str(lake)), landing, set(), None, now=300.0)
    assert landed_ids(landing, first) == ["b"]
    again, cursor = feedback_tick(Lake(str(lake)), landing, set(first), cursor, now=310.0)
    assert again == []  # "b" never lands twice
    append(lake, "predictions", [prediction("a")])  # the service flushed it
    late, cursor = feedback_tick(Lake(str(lake)), landing, set(first), cursor, now=320.0)
    assert landed_ids(landing, late) == ["a"] and late[0].startswith("tickets-feedback-")
    assert feedback_tick(Lake(str(lake)), landing, set(first + late), cursor, now=330.0)[0] == []


def test_feedback_whose_prediction_never_arrives_stops_holding_the_cursor_after_the_grace_period(
    tmp_path: Path,
) -> None:
    lake, landing = tmp_path / "lake", tmp_path / "landing"
    append(lake, "predictions", [prediction("b")])
    append(
        lake,
        "feedback",
        [
            {"prediction_id": "lost", "label": "printer", "received_at": 100.0},
            {"prediction_id": "b", "label": "vpn", "received_at": 200.0},
        ],
    )
    _, waiting = feedback_tick(Lake(str(lake)), landing, set(), None, now=300.0)
    assert waiting["after"] < 100.0
    _, given_up = feedback_tick(Lake(str(lake)), landing, set(), waiting, now=100.0 + FEEDBACK_GRACE_S + 1)
    assert given_up["after"] == 200.0 and given_up["landed"] == []
