"""Batch scoring with the production model, and drift monitoring of what it sees against what it learned."""

import dagster as dg
import polars as pl

from assets.cleaning import CLEAN_DOCUMENTS, clean_documents
from assets.deployment import deployed_model
from assets.models.drift import DriftReport, drift_report
from assets.partitions import dataset_versions
from assets.resources import LakeResource, ModelRegistryResource, TrainerResource

BATCH_PREDICTIONS = "batch_predictions"
MODEL_MONITORING = "model_monitoring"
# Appended by `refinery serve` (trainers.serving.app PREDICTIONS_TABLE and FEEDBACK_TABLE; not imported from there,
# because that module loads FastAPI and the code location should not).
SERVICE_PREDICTIONS = "predictions"
FEEDBACK = "feedback"


class BatchPredictionsConfig(dg.Config):
    """What to score: this version's clean documents, or any Parquet file or Delta table with a `text` column."""

    input_path: str = ""
    batch_size: int = 64


def read_texts(lake: LakeResource, version: str, input_path: str) -> pl.DataFrame:
    """doc_id and text of the rows to score."""
    from pathlib import Path

    if not input_path:
        return lake.scan(CLEAN_DOCUMENTS, [version]).select("doc_id", "text").collect()
    path = Path(input_path)
    frame = pl.read_delta(input_path) if (path / "_delta_log").is_dir() else pl.read_parquet(input_path)
    if "text" not in frame.columns:
        raise ValueError(f"{input_path}: no `text` column to score (columns: {', '.join(frame.columns)})")
    if "doc_id" not in frame.columns:
        frame = frame.with_row_index("doc_id").with_columns(pl.col("doc_id").cast(pl.String))
    return frame.select(pl.col("doc_id").cast(pl.String), pl.col("text").cast(pl.String))


@dg.asset(
    partitions_def=dataset_versions,
    deps=[clean_documents, deployed_model],  # scored by the production model, so after a deployment
    group_name="monitor",
    kinds={"pytorch", "delta"},
    code_version="1",
)
def batch_predictions(
    context: dg.AssetExecutionContext,
    config: BatchPredictionsConfig,
    lake: LakeResource,
    registry: ModelRegistryResource,
) -> dg.MaterializeResult:
    """The production model's label and score for every document of the version (or of `input_path`)."""
    from trainers.export import Classifier
    from trainers.registry import resolve_alias

    version = context.partition_key
    folder = resolve_alias(registry.model_root)
    rows = read_texts(lake, version, config.input_path).filter(pl.col("text").str.strip_chars() != "")
    predictions = Classifier(folder).predict(rows["text"].to_list(), batch_size=config.batch_size)
    scored = rows.with_columns(
        pl.Series("label", [p.label for p in predictions], dtype=pl.String),
        pl.Series("score", [p.score for p in predictions], dtype=pl.Float64),
        pl.lit(folder.name).alias("model_version"),
    )
    delta_version = lake.write_version(BATCH_PREDICTIONS, scored, version)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": scored.height,
            "model_version": folder.name,
            "input": config.input_path or f"{CLEAN_DOCUMENTS} of {version}",
            "label_counts": dg.MetadataValue.json(dict(scored["label"].value_counts().iter_rows())),
            "delta_version": delta_version,
        }
    )


class MonitoringConfig(dg.Config):
    """Where recent predictions come from, and when a shift warns or fails."""

    source: str = "batch"  # batch: this version's batch_predictions; service: the service's latest predictions
    window: int = 2000  # latest service predictions compared
    psi_warn: float = 0.1
    psi_fail: float = 0.25
    oov_shift_warn: float = 0.05
    oov_shift_fail: float = 0.15
    confidence_drop_warn: float = 0.05
    confidence_drop_fail: float = 0.15
    live_accuracy_warn: float = 0.8
    live_accuracy_fail: float = 0.6


MONITORING_CHECKS = {
    "check_label_drift": "predicted label distribution vs training labels (PSI)",
    "check_length_drift": "text length distribution vs training texts (PSI)",
    "check_oov_shift": "share of words the training texts never had, above the training share",
    "check_confidence_drop": "mean confidence below the test split's",
    "check_live_accuracy": "accuracy on predictions that received feedback labels",
}


def recent_predictions(lake: LakeResource, version: str, config: MonitoringConfig) -> pl.DataFrame:
    """prediction_id (service only), text, label and score of the predictions to monitor."""
    if config.source == "batch":
        return lake.scan(BATCH_PREDICTIONS, [version]).select("text", "label", "score").collect()
    if config.source == "service":
        if not lake.exists(SERVICE_PREDICTIONS):
            raise FileNotFoundError(f"{lake.uri(SERVICE_PREDICTIONS)}: the service has logged no predictions yet")
        frame = pl.read_delta(lake.uri(SERVICE_PREDICTIONS)).sort("predicted_at").tail(config.window)
        return frame.select("prediction_id", "text", "label", "score")
    raise ValueError(f"source must be 'batch' or 'service', not {config.source!r}")


def live_feedback(lake: LakeResource, recent: pl.DataFrame) -> list[tuple[str, str]]:
    """(predicted, true) label pairs for recent service predictions that got feedback."""
    if "prediction_id" not in recent.columns or not lake.exists(FEEDBACK):
        return []
    feedback = pl.read_delta(lake.uri(FEEDBACK)).unique("prediction_id", keep="last")
    joined = recent.join(feedback.rename({"label": "true_label"}), on="prediction_id")
    return list(zip(joined["label"].to_list(), joined["true_label"].to_list(), strict=True))


def check_results(report: DriftReport, config: MonitoringConfig) -> list[dg.AssetCheckResult]:
    """Each measure against its thresholds: passed below warn, a warning below fail, an error above."""
    measures = {
        "check_label_drift": (report.label_psi, config.psi_warn, config.psi_fail, True),
        "check_length_drift": (report.length_psi, config.psi_warn, config.psi_fail, True),
        "check_oov_shift": (report.oov_shift, config.oov_shift_warn, config.oov_shift_fail, True),
        "check_confidence_drop": (
            report.confidence_drop, config.confidence_drop_warn, config.confidence_drop_fail, True,
        ),
        "check_live_accuracy": (report.live_accuracy, config.live_accuracy_warn, config.live_accuracy_fail, False),
    }  # fmt: skip
    results = []
    for name, (value, warn, fail, higher_is_worse) in measures.items():
        if value is None:
            results.append(dg.AssetCheckResult(check_name=name, passed=True, metadata={"observed": "no feedback yet"}))
            continue
        beyond_warn = value > warn if higher_is_worse else value < warn
        beyond_fail = value > fail if higher_is_worse else value < fail
        results.append(
            dg.AssetCheckResult(
                check_name=name,
                passed=not beyond_warn,
                severity=dg.AssetCheckSeverity.ERROR if beyond_fail else dg.AssetCheckSeverity.WARN,
                metadata={"observed": round(float(value), 6), "warn_at": warn, "fail_at": fail},
            )
        )
    return results


@dg.asset(
    partitions_def=dataset_versions,
    deps=[batch_predictions],
    group_name="monitor",
    kinds={"polars", "delta"},
    code_version="1",
    check_specs=[dg.AssetCheckSpec(n, asset=MODEL_MONITORING, description=d) for n, d in MONITORING_CHECKS.items()],
)
def model_monitoring(
    context: dg.AssetExecutionContext,
    config: MonitoringConfig,
    lake: LakeResource,
    registry: ModelRegistryResource,
    trainer: TrainerResource,
) -> dg.MaterializeResult:
    """Drift of recent predictions from the production model's training data; an error-level shift asks for
    retraining (`drift_retraining_sensor`)."""
    from trainers.bundle import read_split
    from trainers.registry import read_card, resolve_alias

    version = context.partition_key
    folder = resolve_alias(registry.model_root)
    card = read_card(folder)
    label_map = card["label_map"]
    bundle = trainer.bundle_folder(folder.name)
    train_texts, train_ids = read_split(bundle, "train", label_map)
    names = {i: label for label, i in label_map.items()}
    recent = recent_predictions(lake, version, config)
    report = drift_report(
        train_texts, [names[i] for i in train_ids],
        float(card.get("test_evaluation", {}).get("metrics", {}).get("mean_confidence", 1.0)),
        recent["text"].to_list(), recent["label"].to_list(), recent["score"].to_list(),
        live_feedback(lake, recent),
    )  # fmt: skip
    checks = check_results(report, config)
    retrain = any(not c.passed and c.severity == dg.AssetCheckSeverity.ERROR for c in checks)
    if retrain:
        context.log.warning(f"drift beyond the fail thresholds for model {folder.name}: retraining is requested")
    return dg.MaterializeResult(
        metadata={
            "model_version": folder.name,
            "source": config.source,
            "recent_predictions": report.recent_count,
            "label_psi": round(report.label_psi, 6),
            "length_psi": round(report.length_psi, 6),
            "train_oov_rate": round(report.train_oov_rate, 6),
            "recent_oov_rate": round(report.recent_oov_rate, 6),
            "reference_confidence": round(report.reference_confidence, 6),
            "recent_confidence": round(report.recent_confidence, 6),
            "live_accuracy": report.live_accuracy if report.live_accuracy is not None else "no feedback",
            "feedback_count": report.feedback_count,
            "retraining_requested": retrain,
        },
        check_results=checks,
    )
