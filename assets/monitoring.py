"""batch_predictions, batch_generations and model_monitoring: score (or answer) with the production model, compare
with what it learned."""

import dagster as dg
from pydantic import Field

from assets.metadata import checks_per_dataset, per_dataset
from assets.models.drift import DriftReport
from assets.models.generating import NotGenerativeError, generate_answers
from assets.models.monitoring import PredictionSource, monitor_model
from assets.models.scoring import read_texts, score_texts
from assets.partitions import dataset_versions
from assets.resources import LakeResource, LandingResource, ModelRegistryResource, TrainerResource
from contracts.model_folder import CLASSIFIER
from contracts.tables import BATCH_GENERATIONS, BATCH_PREDICTIONS, CLEAN_DOCUMENTS
from trainers.kinds import kind_of
from trainers.registry import resolve_alias

MODEL_MONITORING = "model_monitoring"


class BatchPredictionsConfig(dg.Config):
    """What to score: this version's clean documents, or any Parquet file or Delta table with a `text` column."""

    input_path: str = Field("", description="a Parquet file or Delta table with a text column; '' = this version")
    batch_size: int = Field(64, description="texts per forward pass")


@dg.asset(
    partitions_def=dataset_versions,
    deps=[CLEAN_DOCUMENTS, "deployed_model"],  # scored by the production model, so after a deployment
    group_name="monitor",
    kinds={"pytorch", "delta"},
    code_version="2",
)
def batch_predictions(
    context: dg.AssetExecutionContext,
    config: BatchPredictionsConfig,
    lake: LakeResource,
    registry: ModelRegistryResource,
    landing: LandingResource,
) -> dg.MaterializeResult:
    """The production model's label and score for every document of the version (or of `input_path`)."""
    version = context.partition_key
    folder = resolve_alias(registry.for_dataset(landing.dataset(version).name).model_root)
    kind = kind_of(folder)
    if kind.family != CLASSIFIER:
        raise dg.Failure(
            f"version {version}: production model {folder.name} is a {kind.name} model; it labels nothing. "
            f"Materialize {BATCH_GENERATIONS} for its answers."
        )
    scored = score_texts(folder, read_texts(lake, version, config.input_path), config.batch_size)
    delta_version = lake.write_version(BATCH_PREDICTIONS, scored, version)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": scored.height,
            "model_version": folder.name,
            "input": config.input_path or f"{CLEAN_DOCUMENTS} of {version}",
            "label_counts": dg.MetadataValue.json(dict(scored["label"].drop_nulls().value_counts().iter_rows())),
            "refused": int(scored["refused"].is_not_null().sum()),
            "delta_version": delta_version,
        }
    )


class BatchGenerationsConfig(dg.Config):
    """What to answer: this version's clean prompts, or any Parquet file or Delta table with a `text` column."""

    input_path: str = Field("", description="a Parquet file or Delta table with a text column; '' = this version")
    batch_size: int = Field(16, description="prompts per generate call")
    max_new_tokens: int = Field(128, description="most tokens of each answer")
    temperature: float = Field(0.0, description="sampling temperature; 0 = greedy")


@dg.asset(
    partitions_def=dataset_versions,
    deps=[CLEAN_DOCUMENTS, "deployed_model"],
    group_name="generate",
    kinds={"pytorch", "delta"},
    code_version="1",
)
def batch_generations(
    context: dg.AssetExecutionContext,
    config: BatchGenerationsConfig,
    lake: LakeResource,
    registry: ModelRegistryResource,
    landing: LandingResource,
) -> dg.MaterializeResult:
    """The production causal LM's answer to every prompt of the version (or of `input_path`)."""
    version = context.partition_key
    folder = resolve_alias(registry.for_dataset(landing.dataset(version).name).model_root)
    rows = read_texts(lake, version, config.input_path)
    try:
        answered = generate_answers(folder, rows, config.batch_size, config.max_new_tokens, config.temperature)
    except NotGenerativeError as error:
        raise dg.Failure(f"version {version}: {error}") from error
    delta_version = lake.write_version(BATCH_GENERATIONS, answered, version)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": answered.height,
            "model_version": folder.name,
            "input": config.input_path or f"{CLEAN_DOCUMENTS} of {version}",
            "answered": int(answered["answer"].is_not_null().sum()),
            "refused": int(answered["refused"].is_not_null().sum()),
            "generated_tokens": int(answered["tokens"].fill_null(0).sum()),
            "delta_version": delta_version,
        }
    )


class MonitoringConfig(dg.Config):
    """Where recent predictions come from, and when a shift warns or fails."""

    source: PredictionSource = Field(
        "batch", description="batch: this version's batch_predictions; service: the service's prediction log"
    )
    window: int = Field(2000, description="latest service predictions compared")
    psi_warn: float = Field(0.1, description="label or length drift (PSI) that warns")
    psi_fail: float = Field(0.25, description="label or length drift (PSI) that fails")
    oov_shift_warn: float = Field(0.05, description="rise in the share of unseen words that warns")
    oov_shift_fail: float = Field(0.15, description="rise in the share of unseen words that fails")
    confidence_drop_warn: float = Field(0.05, description="drop in mean confidence below the test split's that warns")
    confidence_drop_fail: float = Field(0.15, description="drop in mean confidence below the test split's that fails")
    live_accuracy_warn: float = Field(0.8, description="accuracy on feedback-labelled predictions below which it warns")
    live_accuracy_fail: float = Field(0.6, description="accuracy on feedback-labelled predictions below which it fails")


MONITORING_CHECKS = {
    "check_label_drift": "predicted label distribution vs training labels (PSI)",
    "check_length_drift": "text length distribution vs training texts (PSI)",
    "check_oov_shift": "share of words the training texts never had, above the training share",
    "check_confidence_drop": "mean confidence below the test split's",
    "check_live_accuracy": "accuracy on predictions that received feedback labels",
}


def drift_check_results(report: DriftReport, config: MonitoringConfig) -> list[dg.AssetCheckResult]:
    """Each measure against its thresholds: passed below warn, a warning below fail, an error above."""
    measures = {
        "check_label_drift": (report.label_psi, config.psi_warn, config.psi_fail, True),
        "check_length_drift": (report.length_psi, config.psi_warn, config.psi_fail, True),
        "check_oov_shift": (report.oov_shift, config.oov_shift_warn, config.oov_shift_fail, True),
        "check_confidence_drop": (
            report.confidence_drop,
            config.confidence_drop_warn,
            config.confidence_drop_fail,
            True,
        ),
        "check_live_accuracy": (report.live_accuracy, config.live_accuracy_warn, config.live_accuracy_fail, False),
    }
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


def drift_metadata(report: DriftReport) -> dict[str, object]:
    """The drift measures as they are, besides their checks."""
    return {
        "recent_predictions": report.recent_count,
        "label_psi": round(report.label_psi, 6),
        "length_psi": round(report.length_psi, 6),
        "train_oov_rate": round(report.train_oov_rate, 6),
        "recent_oov_rate": round(report.recent_oov_rate, 6),
        "reference_confidence": round(report.reference_confidence, 6),
        "recent_confidence": round(report.recent_confidence, 6),
        "live_accuracy": report.live_accuracy if report.live_accuracy is not None else "no feedback",
        "feedback_count": report.feedback_count,
    }


@dg.asset(
    partitions_def=dataset_versions,
    deps=[BATCH_PREDICTIONS],
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
    landing: LandingResource,
) -> dg.MaterializeResult:
    """Drift of recent predictions from the production model's training data; an error-level shift asks for
    retraining (`drift_retraining_sensor`)."""
    dataset = landing.dataset(context.partition_key).name
    folder = resolve_alias(registry.for_dataset(dataset).model_root)
    bundle = trainer.bundle_folder(folder.name)
    report = monitor_model(lake, folder, bundle, context.partition_key, config.source, config.window)
    checks = checks_per_dataset(dataset, drift_check_results(report, config))
    retrain = any(not c.passed and c.severity == dg.AssetCheckSeverity.ERROR for c in checks)
    if retrain:
        context.log.warning(f"drift beyond the fail thresholds for model {folder.name}: retraining is requested")
    return dg.MaterializeResult(
        metadata=per_dataset(
            dataset,
            {
                "model_version": folder.name,
                "source": config.source,
                **drift_metadata(report),
                "retraining_requested": retrain,
            },
        ),
        check_results=checks,
    )
