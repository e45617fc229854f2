"""Feedback on generated answers as preference pairs: a correction sent for a logged answer makes a pair (the
correction chosen, the logged answer rejected), and two answers to the same prompt rated up and down make another.
They land as a version of the preference dataset that tunes the generation dataset's production model, declared
on first use, and pass the same rules as any other preference data."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import polars as pl

from assets.datasets.declaration import DatasetDeclaration, Task, declaration_yaml, load_datasets
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


def answer_feedback(lake: Lake, after: float | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Ratings and corrections received after `after`, the newest per generation, joined with the logged answer
    they judge; and those whose answer the lake does not hold yet."""
    columns = {"prediction_id": pl.String, "rating": pl.String, "correction": pl.String, "received_at": pl.Float64}
    empty = pl.DataFrame(schema={**columns, **dict.fromkeys(GENERATION_COLUMNS[1:], pl.String)})
    if not lake.exists(FEEDBACK):
        return empty, empty.select("prediction_id", "received_at")
    feedback = pl.read_delta(lake.uri(FEEDBACK))
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in columns.items() if name not in feedback.columns]
    feedback = feedback.with_columns(missing).select(list(columns))
    feedback = feedback.filter(pl.col("rating").is_not_null() | pl.col("correction").is_not_null())
    if after is not None:
        feedback = feedback.filter(pl.col("received_at") > after)
    feedback = feedback.sort("received_at").unique("prediction_id", keep="last", maintain_order=True)
    if not lake.exists(GENERATIONS):
        return empty, feedback.select("prediction_id", "received_at")
    logged = pl.read_delta(lake.uri(GENERATIONS))
    if "context" not in logged.columns:  # logged before answers kept their conversation
        logged = logged.with_columns(pl.lit(None, pl.String).alias("context"))
    logged = logged.select(pl.col("generation_id").alias("prediction_id"), *GENERATION_COLUMNS[1:])
    joined = feedback.join(logged.unique("prediction_id"), on="prediction_id", how="inner")
    waiting = feedback.join(logged, on="prediction_id", how="anti").select("prediction_id", "received_at")
    return joined, waiting


def preference_pairs(judged: pl.DataFrame) -> list[dict[str, object]]:
    """The pairs the feedback makes: each correction over its logged answer, and per prompt (and conversation) the
    answers rated up over those rated down."""
    pairs = []
    for row in judged.filter(pl.col("correction").is_not_null()).iter_rows(named=True):
        if row["correction"].strip() != (row["answer"] or "").strip():
            pairs.append(pair(row, row["correction"], row["answer"], f"correction:{row['prediction_id']}"))
    rated = judged.filter(pl.col("rating").is_not_null())
    for _, group in rated.group_by("dataset", "prompt", "context", maintain_order=True):
        ups = group.filter(pl.col("rating") == "up").iter_rows(named=True)
        downs = list(group.filter(pl.col("rating") == "down").iter_rows(named=True))
        combinations = itertools.islice(itertools.product(ups, downs), MAX_PAIRS_PER_PROMPT)
        for up, down in combinations:
            if up["answer"] != down["answer"]:
                pairs.append(
                    pair(up, up["answer"], down["answer"], f"ratings:{up['prediction_id']}>{down['prediction_id']}")
                )
    return pairs


def pair(row: dict, chosen: str, rejected: str, pair_id: str) -> dict[str, object]:
    """A pair record: the prompt as text, or as the logged conversation when it had earlier turns."""
    prompt = row["prompt"]
    if row["context"]:
        prompt = [*json.loads(row["context"]), {"role": "user", "content": row["prompt"]}]
    return {"dataset": row["dataset"], "pair_id": pair_id, "prompt": prompt, CHOSEN: chosen, REJECTED: rejected}


def preference_dataset_for(datasets_dir: Path, dataset: str) -> str:
    """The preference dataset that tunes `dataset`'s production model (`model_name_or_path: <dataset>@production`);
    `<dataset>-preferences` is declared when there is none."""
    reference = f"{dataset}@production"
    for declared in load_datasets(datasets_dir).values():
        if declared.primary.kind == PAIRS and declared.training.get("model_name_or_path") == reference:
            return declared.name
    name = f"{dataset}-preferences"[:32]
    declaration = DatasetDeclaration(
        name,
        description=f"preference pairs from the feedback on {dataset}'s answers; tunes its production model",
        mapping=PAIR_MAPPING,
        tasks=(Task("preference", CHOSEN, None, "accept", PAIRS),),
        training={"model_name_or_path": reference},
    )
    header = f"# Dataset {name}, declared by the answer-feedback sensor for {dataset}. Edit freely.\n"
    datasets_dir.mkdir(parents=True, exist_ok=True)
    (datasets_dir / f"{name}.yaml").write_text(declaration_yaml(declaration, header))
    return name


def answer_feedback_tick(
    lake: Lake, landing: Path, known: set[str], cursor: dict | None, now: float | None = None
) -> tuple[list[str], dict]:
    """New ratings and corrections become, per generation dataset, a `landing/<preference dataset>-feedback-<hash>/`
    version of pair records; returns (versions, new cursor). Feedback that arrives before its answer is in the
    lake waits for it (up to FEEDBACK_GRACE_S), so nothing is skipped."""
    state = cursor or {"after": None, "landed": []}
    judged, waiting = answer_feedback(lake, state["after"])
    landed = pl.DataFrame(state["landed"], schema={"prediction_id": pl.String, "received_at": pl.Float64}, orient="row")
    judged = judged.join(landed, on=["prediction_id", "received_at"], how="anti")
    new_cursor = next_cursor(state["after"], state["landed"], judged, waiting, now or time.time())
    versions = []
    datasets_dir = landing.parent / "datasets"
    for (dataset,), group in judged.group_by("dataset", maintain_order=True):
        records = [{k: v for k, v in p.items() if k != "dataset"} for p in preference_pairs(group)]
        if not records or not dataset:
            continue
        digest = records_digest(records)
        target = preference_dataset_for(datasets_dir, dataset)
        version = check_version_name(f"{target}-feedback-{digest[:12]}")
        if version in known or (landing / version).exists():
            continue
        land_records(
            landing,
            version,
            records,
            PAIR_MAPPING,
            "feedback",
            source="answer feedback",
            content_sha256=digest,
            dataset=target,
        )
        versions.append(version)
    return versions, new_cursor
