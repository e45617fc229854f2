"""Feedback on generated answers as preference pairs: a correction sent for a logged answer makes a pair (the
correction chosen, the logged answer rejected), and two answers to the same prompt rated up and down make another
(a new rating pairs with the earlier ratings of its prompt too). They land as a version of the preference dataset
declared to tune the generation dataset's production model (`model_name_or_path: <dataset>@production`), and pass
the same rules as any other preference data; feedback on a dataset with no such declaration waits for one."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import polars as pl

from assets.datasets.declaration import load_datasets
from assets.readers.arrivals import land_records
from assets.readers.feedback import next_cursor
from assets.readers.http import records_digest
from assets.readers.mapping import RecordMapping
from assets.storage.delta import Lake
from assets.storage.home import check_version_name
from contracts.tables import FEEDBACK, GENERATIONS
from trainers.bundle import CHOSEN, PAIRS, REJECTED

PAIR_MAPPING = RecordMapping(
    text_column="prompt", label_column=None, id_column="pair_id", chosen_column=CHOSEN, rejected_column=REJECTED
)
MAX_PAIRS_PER_PROMPT = 4  # rated answers to one prompt: its up x down pairs, at most this many
GENERATION_COLUMNS = ("generation_id", "dataset", "prompt", "context", "answer")


def answer_feedback(lake: Lake, after: float | None) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Ratings and corrections received after `after`, the newest per generation, joined with the logged answer
    they judge; those whose answer the lake does not hold yet; and the ratings received up to `after`, joined."""
    columns = {"prediction_id": pl.String, "rating": pl.String, "correction": pl.String, "received_at": pl.Float64}
    empty = pl.DataFrame(schema={**columns, **dict.fromkeys(GENERATION_COLUMNS[1:], pl.String)})
    if not lake.exists(FEEDBACK):
        return empty, empty.select("prediction_id", "received_at"), empty
    feedback = pl.read_delta(lake.uri(FEEDBACK))
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in columns.items() if name not in feedback.columns]
    feedback = feedback.with_columns(missing).select(pl.col(name).cast(dtype) for name, dtype in columns.items())
    feedback = feedback.filter(pl.col("rating").is_not_null() | pl.col("correction").is_not_null())
    feedback = feedback.sort("received_at").unique("prediction_id", keep="last", maintain_order=True)
    new = feedback if after is None else feedback.filter(pl.col("received_at") > after)
    if not lake.exists(GENERATIONS):
        return empty, new.select("prediction_id", "received_at"), empty
    logged = pl.read_delta(lake.uri(GENERATIONS))
    if "context" not in logged.columns:  # logged before answers kept their conversation
        logged = logged.with_columns(pl.lit(None, pl.String).alias("context"))
    logged = logged.select(  # a column the log only ever wrote nulls to reads back untyped
        pl.col("generation_id").cast(pl.String).alias("prediction_id"),
        *(pl.col(column).cast(pl.String) for column in GENERATION_COLUMNS[1:]),
    )
    logged = logged.unique("prediction_id")
    joined = new.join(logged, on="prediction_id", how="inner")
    waiting = new.join(logged, on="prediction_id", how="anti").select("prediction_id", "received_at")
    earlier = feedback.filter(pl.col("rating").is_not_null())
    earlier = earlier if after is None else earlier.filter(pl.col("received_at") <= after)
    return joined, waiting, (empty if after is None else earlier.join(logged, on="prediction_id", how="inner"))


def preference_pairs(judged: pl.DataFrame, earlier: pl.DataFrame | None = None) -> list[dict[str, object]]:
    """The pairs the feedback makes: each correction over its logged answer, and per prompt (and conversation) the
    answers rated up over those rated down, where at least one of the two ratings is new (`judged`, not
    `earlier`)."""
    pairs = []
    for row in judged.filter(pl.col("correction").is_not_null()).iter_rows(named=True):
        if row["correction"].strip() != (row["answer"] or "").strip():
            pairs.append(pair(row, row["correction"], row["answer"], f"correction:{row['prediction_id']}"))
    new = judged.filter(pl.col("rating").is_not_null()).with_columns(pl.lit(True).alias("new"))
    old = (
        (earlier if earlier is not None else new.clear())
        .select(new.columns[:-1])
        .with_columns(pl.lit(False).alias("new"))
    )
    keys = new.select("dataset", "prompt", "context").unique()
    rated = pl.concat([new, old.join(keys, on=["dataset", "prompt", "context"], how="semi", nulls_equal=True)])
    for _, group in rated.group_by("dataset", "prompt", "context", maintain_order=True):
        ups = group.filter(pl.col("rating") == "up").iter_rows(named=True)
        downs = list(group.filter(pl.col("rating") == "down").iter_rows(named=True))
        fresh = ((up, down) for up, down in itertools.product(ups, downs) if up["new"] or down["new"])
        for up, down in itertools.islice(fresh, MAX_PAIRS_PER_PROMPT):
            if up["answer"] != down["answer"]:
                pair_id = f"ratings:{up['prediction_id']}>{down['prediction_id']}"
                pairs.append(pair(up, up["answer"], down["answer"], pair_id))
    return pairs


def pair(row: dict, chosen: str, rejected: str, pair_id: str) -> dict[str, object]:
    """A pair record: the prompt as text, or as the logged conversation when it had earlier turns."""
    prompt = row["prompt"]
    if row["context"]:
        prompt = [*json.loads(row["context"]), {"role": "user", "content": row["prompt"]}]
    return {"dataset": row["dataset"], "pair_id": pair_id, "prompt": prompt, CHOSEN: chosen, REJECTED: rejected}


def preference_dataset_for(datasets_dir: Path, dataset: str) -> str | None:
    """The preference dataset declared to tune `dataset`'s production model (`model_name_or_path:
    <dataset>@production`); None when there is none."""
    reference = f"{dataset}@production"
    for declared in load_datasets(datasets_dir).values():
        if declared.primary.kind == PAIRS and declared.training.get("model_name_or_path") == reference:
            return declared.name
    return None


def held_back(cursor: dict, state: dict, landed_now: pl.DataFrame, undeclared: pl.DataFrame) -> dict:
    """The cursor moved back before the oldest feedback on a dataset with no preference declaration yet, so it is
    read again on the next tick (however long that takes), with what landed after that point kept as landed."""
    if undeclared.is_empty():
        return cursor
    start = float(undeclared["received_at"].min()) - 1e-6
    if cursor["after"] is not None and cursor["after"] <= start:
        return cursor
    seen = [
        *state["landed"],
        *([p, float(t)] for p, t in landed_now.select("prediction_id", "received_at").iter_rows()),
    ]
    return {"after": start, "landed": [entry for entry in seen if entry[1] > start]}


def answer_feedback_tick(
    lake: Lake, landing: Path, datasets_dir: Path, known: set[str], cursor: dict | None, now: float | None = None
) -> tuple[list[str], dict, list[str]]:
    """New ratings and corrections become, per generation dataset, a `landing/<preference dataset>-feedback-<hash>/`
    version of pair records; returns (versions, new cursor, the datasets whose feedback waits for a preference
    dataset to be declared). Feedback that arrives before its answer is in the lake waits for it (an hour), so
    nothing is skipped."""
    state = cursor or {"after": None, "landed": []}
    judged, waiting, earlier = answer_feedback(lake, state["after"])
    landed = pl.DataFrame(state["landed"], schema={"prediction_id": pl.String, "received_at": pl.Float64}, orient="row")
    judged = judged.join(landed, on=["prediction_id", "received_at"], how="anti")
    targets = {name: preference_dataset_for(datasets_dir, name) for name in judged["dataset"].unique().drop_nulls()}
    undeclared = judged.filter(
        pl.col("dataset").is_null() | pl.col("dataset").replace_strict(targets, default=None).is_null()
    )
    judged = judged.join(undeclared, on=["prediction_id", "received_at"], how="anti")
    new_cursor = next_cursor(state["after"], state["landed"], judged, waiting, now or time.time())
    new_cursor = held_back(new_cursor, state, judged, undeclared)
    versions = []
    for (dataset,), group in judged.group_by("dataset", maintain_order=True):
        records = [{k: v for k, v in p.items() if k != "dataset"} for p in preference_pairs(group, earlier)]
        if not records:
            continue
        digest = records_digest(records)
        version = check_version_name(f"{targets[dataset]}-feedback-{digest[:12]}")
        if version in known or (landing / version).exists():
            continue
        source = {"source": "answer feedback", "content_sha256": digest, "dataset": targets[dataset]}
        land_records(landing, version, records, PAIR_MAPPING, "feedback", **source)
        versions.append(version)
    return versions, new_cursor, sorted(set(undeclared["dataset"].drop_nulls()))
