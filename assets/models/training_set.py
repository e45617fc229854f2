"""Which examples a model learns from: the validated examples of the versions it is trained on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from assets.examples.splitting import SPLITS, build_label_map
from assets.storage.catalog import version_recipe
from assets.storage.delta import Lake
from assets.storage.home import git_commit
from contracts.tables import TRAINING_EXAMPLES
from recipe.text_recipe import TextRecipe
from trainers.bundle import CONTEXT, EXTRA_COLUMNS, BundleManifest, task_column
from trainers.registry import new_model_version

TrainOn = Literal["all_up_to", "this_version"]


def versions_to_train_on(all_versions: list[str], version: str, train_on: TrainOn) -> list[str]:
    """The dataset versions model `version` learns from: all registered up to it, or only it."""
    if train_on == "this_version":
        return [version]
    if train_on != "all_up_to":
        raise ValueError(f"train_on must be 'all_up_to' or 'this_version', not {train_on!r}")
    return all_versions[: all_versions.index(version) + 1]


def gather_examples(lake: Lake, versions: list[str]) -> pl.DataFrame:
    """The examples of `versions`, each doc_id once (its earliest version wins, so splits never leak)."""
    order = {v: i for i, v in enumerate(versions)}
    examples = lake.scan(TRAINING_EXAMPLES, versions).collect()
    return (
        examples.with_columns(pl.col("dataset_version").replace_strict(order, return_dtype=pl.Int64).alias("__order"))
        .sort("__order", "source", "source_row")
        .unique("doc_id", keep="first", maintain_order=True)
        .drop("__order")
    )


def task_label_maps(train: pl.DataFrame, tasks: list[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """Each task's label map from the train split (`tasks`: name and column, primary first); {} for one task."""
    if len(tasks) < 2:
        return {}
    missing = [column for _, column in tasks[1:] if column not in train.columns]
    if missing:
        raise ValueError(f"task columns {missing} are not in the training examples; re-materialize them")
    return {name: build_label_map(train["label" if i == 0 else column]) for i, (name, column) in enumerate(tasks)}


def with_task_columns(frame: pl.DataFrame, tasks: list[tuple[str, str]]) -> pl.DataFrame:
    """The bundle's `label:<task>` columns: the primary task from `label`, the others from their columns."""
    if len(tasks) < 2:
        return frame
    return frame.with_columns(
        pl.col("label" if i == 0 else column).cast(pl.String).alias(task_column(name))
        for i, (name, column) in enumerate(tasks)
    )


def split_examples(
    examples: pl.DataFrame,
    versions: list[str],
    rules_hash: str,
    lineage: dict[str, object],
    text_recipe: dict[str, object] | None = None,
    tasks: list[tuple[str, str]] | None = None,
    kind: str = "classification",
) -> tuple[dict[str, pl.DataFrame], BundleManifest]:
    """The examples per split and the bundle manifest that describes them; train and val must not be empty. A
    generation dataset's examples carry their `response` and no labels, a preference dataset's its two answers, a
    pretraining dataset's only the documents."""
    splits = {split: examples.filter(pl.col("split") == split) for split in SPLITS}
    if splits["train"].is_empty() or splits["val"].is_empty():
        raise ValueError(f"no train or val examples in versions {versions}")
    if kind in EXTRA_COLUMNS:  # a causal LM's examples: answers (a response, or a chosen and a rejected one)
        missing = [column for column in EXTRA_COLUMNS[kind] if column != CONTEXT and column not in examples.columns]
        if missing:
            raise ValueError(f"the training examples have no {' or '.join(missing)} column; re-materialize them")
        if CONTEXT in EXTRA_COLUMNS[kind] and CONTEXT not in examples.columns:  # single prompts: no earlier turns
            splits = {
                split: frame.with_columns(pl.lit(None, pl.String).alias(CONTEXT)) for split, frame in splits.items()
            }
        tasks = []
    task_maps = task_label_maps(splits["train"], tasks or [])
    splits = {split: with_task_columns(frame, tasks or []) for split, frame in splits.items()}
    manifest = BundleManifest(
        tasks=task_maps,
        label_map=build_label_map(splits["train"]["label"]),
        dataset_versions=sorted(set(examples["dataset_version"]), key=versions.index),
        rules_hash=rules_hash,
        row_counts={split: frame.height for split, frame in splits.items()},
        lineage=lineage,
        text_recipe=text_recipe,
        kind=kind,
    )
    return splits, manifest


@dataclass
class TrainingSet:
    """What one fine-tune learns from: its new model version id, the examples per split and the bundle manifest."""

    model_version: str
    splits: dict[str, pl.DataFrame]
    manifest: BundleManifest


def plan_training_set(
    lake: Lake,
    registered: list[str],
    version: str,
    *,
    train_on: TrainOn,
    rules_hash: str,
    run_id: str,
    tasks: list[tuple[str, str]] | None = None,
    kind: str = "classification",
) -> TrainingSet:
    """Gather the examples a new model of `version` learns from, with the lineage its card will carry."""
    versions = versions_to_train_on(registered, version, train_on)
    model_version = new_model_version(version, run_id)  # every run's fine-tune is a new model version
    recipe = version_recipe(lake, version)  # how this version's texts were prepared: serving applies it too
    if recipe is None:  # a model without its recipe would be served raw text
        raise ValueError(f"no text recipe recorded for {version!r}: materialize clean_documents for it first")
    lineage = {
        "dataset_version": version,
        "model_version": model_version,
        "training_examples_delta_version": lake.table_version(TRAINING_EXAMPLES),
        "text_recipe_hash": TextRecipe.from_dict(recipe).digest if recipe else None,
        "git_commit": git_commit(),
        "dagster_run_id": run_id,
    }
    examples = gather_examples(lake, versions)
    splits, manifest = split_examples(examples, versions, rules_hash, lineage, recipe, tasks, kind)
    return TrainingSet(model_version, splits, manifest)
