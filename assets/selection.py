"""model_candidates: the selection matrix of a version's training set, before any fine-tune is paid for."""

import json
import tempfile
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from assets.examples.splitting import build_label_map
from assets.metadata import embedded_png
from assets.models.selection import (
    DEFAULT_CANDIDATES,
    FineTuneBudget,
    candidate_data,
    parse_candidates,
    run_selection,
    selection_splits,
    with_analyzed_text,
)
from assets.models.training_set import TrainOn, gather_examples, versions_to_train_on
from assets.partitions import DATASET_VERSIONS, dataset_versions
from assets.resources import LakeResource, LandingResource
from contracts.tables import MODEL_CANDIDATES, TOKENIZED_DOCUMENTS, TRAINING_EXAMPLES
from trainers.selection.matrix import SelectionLimits, plot_matrix

TABLE_COLUMNS = (
    "candidate",
    "val_accuracy",
    "val_macro_f1",
    "val_ece",
    "fit_seconds",
    "peak_memory_mb",
    "size_mb",
    "p50_ms_batch1",
    "p99_ms_batch1",
    "p99_ms_batch1_int8",
    "p99_ms_batch32",
)


class CandidatesConfig(dg.Config):
    """Which candidates to compare, the encoder they start from, and the limits the chosen one must meet."""

    candidates: list[str] = Field(
        default=list(DEFAULT_CANDIDATES),
        description="kinds to fit and measure: tfidf-logreg, encoder-frozen-logreg, encoder-finetune, encoder-lora; "
        "kind@<model folder or hub id> for another encoder (BERT, RoBERTa, XLNet, ...)",
    )
    model_name_or_path: str = Field("default", description="the encoder of encoder candidates without @")
    fine_tune_epochs: int = Field(2, description="epochs of each fine-tune candidate (its best val epoch kept)")
    fine_tune_max_seconds: float = Field(0.0, description="wall-clock limit of each fine-tune candidate; 0 = none")
    max_length: int = Field(64, description="tokens per text of encoder candidates")
    train_on: TrainOn = Field("all_up_to", description="versions up to this one, or only it")
    max_p99_ms_batch1: float = Field(0.0, description="latency limit of the chosen one; 0 = none")
    max_peak_memory_mb: float = Field(0.0, description="memory limit of the chosen one; 0 = none")
    max_size_mb: float = Field(0.0, description="size limit of the chosen one; 0 = none")


NOT_FOR_GENERATION = "candidates are classifiers; a generation dataset fine-tunes the causal LM its declaration names"


@dg.asset(
    partitions_def=dataset_versions,
    deps=[TRAINING_EXAMPLES, TOKENIZED_DOCUMENTS],
    group_name="train",
    kinds={"scikit-learn", "pytorch", "delta"},
    code_version="1",
)
def model_candidates(
    context: dg.AssetExecutionContext, config: CandidatesConfig, lake: LakeResource, landing: LandingResource
) -> dg.MaterializeResult:
    """Candidates fitted on train, measured on val (never test): quality, compute, the best val macro F1 in limits."""
    version = context.partition_key
    if landing.dataset(version).generative:
        return dg.MaterializeResult(metadata={"chosen": "none", "reason": NOT_FOR_GENERATION})
    registered = landing.of_same_dataset(context.instance.get_dynamic_partitions(DATASET_VERSIONS), version)
    versions = versions_to_train_on(registered, version, config.train_on)
    examples = with_analyzed_text(gather_examples(lake, versions), lake.scan(TOKENIZED_DOCUMENTS, versions).collect())
    train, val = selection_splits(examples)
    if train.is_empty() or val.is_empty():
        raise dg.Failure(f"version {version}: no train or val examples to compare candidates on")
    label_map = build_label_map(train["label"])
    limits = SelectionLimits(
        config.max_p99_ms_batch1 or None, config.max_peak_memory_mb or None, config.max_size_mb or None
    )
    try:
        specs = parse_candidates(config.candidates, config.model_name_or_path)
    except ValueError as error:
        raise dg.Failure(f"version {version}: {error}") from error
    budget = FineTuneBudget(config.fine_tune_epochs, config.fine_tune_max_seconds, config.max_length)
    with tempfile.TemporaryDirectory() as scratch:
        result = run_selection(
            candidate_data(train, label_map),
            candidate_data(val, label_map),
            len(label_map),
            Path(scratch),
            specs,
            limits,
            budget,
        )
        picture = plot_matrix(result.rows, Path(scratch) / "selection_matrix.png")
        matrix = embedded_png(picture, "quality against latency")
    frame = (
        pl.DataFrame(result.rows, infer_schema_length=None)
        .with_columns(pl.col(f"p99_ms_batch{b}_int8").cast(pl.Float64) for b in (1, 32))
        .with_columns(
            pl.col("candidate").is_in(list(result.front)).alias("pareto"),
            (pl.col("candidate") == result.chosen).alias("chosen"),
        )
    )
    delta_version = lake.write_version(MODEL_CANDIDATES, frame, version)
    chosen_row = next((row for row in result.rows if row["candidate"] == result.chosen), None)
    return dg.MaterializeResult(
        metadata={
            "chosen": result.chosen or "none",
            "chosen_settings": dg.MetadataValue.json(json.loads(chosen_row["settings"]) if chosen_row else {}),
            "reason": result.reason,
            "pareto_front": dg.MetadataValue.json(sorted(result.front)),
            "matrix": dg.MetadataValue.table(
                records=[dg.TableRecord({k: row[k] for k in TABLE_COLUMNS}) for row in result.rows],
                schema=dg.TableSchema(
                    [dg.TableColumn(k, "string" if k == "candidate" else "float") for k in TABLE_COLUMNS]
                ),
            ),
            "quality_against_latency": dg.MetadataValue.md(matrix),
            "train_examples": train.height,
            "val_examples": val.height,
            "dataset_versions": dg.MetadataValue.json(versions),
            "delta_version": delta_version,
        }
    )
