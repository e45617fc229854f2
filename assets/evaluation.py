"""Evaluation stage: test-split metrics of the fine-tuned model and the promotion gate."""

import base64

import dagster as dg

from assets.training import fine_tuned_model
from assets.partitions import dataset_versions
from assets.resources import ModelRegistryResource, TrainerResource
from trainers.registry import update_card

MODEL_EVALUATION = "model_evaluation"
CHECK_EVALUATION_GATE = "check_evaluation_gate"


class EvaluationConfig(dg.Config):
    """What a model must reach on the test split to be deployed."""

    min_accuracy: float = 0.6
    min_macro_f1: float = 0.5
    max_regression: float = 0.01  # how far below the production model's accuracy or macro F1 it may fall
    force: bool = False  # pass the gate anyway; recorded in the model card


GATED_METRICS = ("accuracy", "macro_f1")


def gate_result(
    metrics: dict[str, float], config: EvaluationConfig, production: dict[str, float] | None = None
) -> dict[str, object]:
    """Whether the metrics meet the minimums and do not regress on production beyond the tolerance."""
    minimums = {"accuracy": config.min_accuracy, "macro_f1": config.min_macro_f1}
    shortfalls = {
        name: {"observed": metrics[name], "minimum": minimum}
        for name, minimum in minimums.items()
        if metrics[name] < minimum
    }
    regressions = {
        name: {"observed": metrics[name], "production": production[name], "tolerance": config.max_regression}
        for name in GATED_METRICS
        if production and metrics[name] < production[name] - config.max_regression
    }
    met = not shortfalls and not regressions
    return {
        "passed": met or config.force,
        "forced": config.force and not met,
        "shortfalls": shortfalls,
        "regressions": regressions,
        "minimums": minimums,
        "max_regression": config.max_regression,
    }


def production_report(registry: ModelRegistryResource, version: str, bundle) -> dict | None:
    """The production model's evaluation on this version's test split, when another model is in production."""
    from trainers.evaluation import evaluate_model

    current = registry.aliases().get("production")
    if current is None or current == version:
        return None
    try:
        return {"version": current, **evaluate_model(registry.version_folder(current), bundle)}
    except ValueError as error:  # a different label set: the two are not comparable on these examples
        return {"version": current, "not_comparable": str(error)}


@dg.asset(
    partitions_def=dataset_versions,
    deps=[fine_tuned_model],
    group_name="train",
    kinds={"pytorch"},
    code_version="2",
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_EVALUATION_GATE,
            asset=MODEL_EVALUATION,
            blocking=True,
            description="test accuracy and macro F1 meet the minimums and do not regress on production",
        )
    ],
)
def model_evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    registry: ModelRegistryResource,
    trainer: TrainerResource,
) -> dg.MaterializeResult:
    """Accuracy and macro/micro precision, recall and F1 of the fine-tuned model on the test split."""
    from trainers.evaluation import (  # torch loads in the step, not at import
        confusion_markdown,
        confusion_png,
        evaluate_model,
        per_class_markdown,
    )

    version = context.partition_key
    folder = registry.version_folder(version)
    bundle = trainer.bundle_folder(version)
    report = evaluate_model(folder, bundle)
    production = production_report(registry, version, bundle)
    production_metrics = production["metrics"] if production and "metrics" in production else None
    gate = gate_result(report["metrics"], config, production_metrics)
    image, png = folder / "confusion_matrix.png", confusion_png(report["confusion_matrix"])
    image.write_bytes(png)
    update_card(folder, test_evaluation=report, evaluation_gate=gate, production_comparison=production)
    if gate["forced"]:
        context.log.warning(f"model {version} passes its gate only because force=true: {gate}")
    comparison = {}
    if production_metrics:
        comparison = {f"production_{name}": value for name, value in production_metrics.items()}
        comparison["production_version"] = production["version"]
    return dg.MaterializeResult(
        metadata={
            **{f"test_{name}": value for name, value in report["metrics"].items()},
            **comparison,
            "test_examples": report["examples"],
            "per_class": dg.MetadataValue.md(per_class_markdown(report["per_class"])),
            "confusion_matrix": dg.MetadataValue.md(
                f"![confusion matrix](data:image/png;base64,{base64.b64encode(png).decode()})\n\n"
                + confusion_markdown(report["labels"], report["confusion_matrix"])
            ),
            "confusion_matrix_png": dg.MetadataValue.path(str(image)),
            "model_path": dg.MetadataValue.path(str(folder)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK_EVALUATION_GATE,
                passed=gate["passed"],
                metadata={
                    "shortfalls": dg.MetadataValue.json(gate["shortfalls"]),
                    "regressions": dg.MetadataValue.json(gate["regressions"]),
                    "minimums": dg.MetadataValue.json(gate["minimums"]),
                    "forced": gate["forced"],
                },
            )
        ],
    )
