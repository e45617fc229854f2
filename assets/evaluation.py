"""Evaluation stage: test-split metrics of the fine-tuned model and the promotion gate."""

import dagster as dg

from assets.training import fine_tuned_model
from dagster_project.partitions import dataset_versions
from dagster_project.resources import ModelRegistryResource, TrainerResource
from trainers.registry import update_card

MODEL_EVALUATION = "model_evaluation"
CHECK_EVALUATION_GATE = "check_evaluation_gate"


class EvaluationConfig(dg.Config):
    """The minimums a model must reach on the test split to be deployed."""

    min_accuracy: float = 0.6
    min_macro_f1: float = 0.5


def gate_result(metrics: dict[str, float], config: EvaluationConfig) -> dict[str, object]:
    """Whether the metrics meet the configured minimums, and which fell short."""
    shortfalls = {
        name: {"observed": metrics[name], "minimum": minimum}
        for name, minimum in (("accuracy", config.min_accuracy), ("macro_f1", config.min_macro_f1))
        if metrics[name] < minimum
    }
    return {
        "passed": not shortfalls,
        "shortfalls": shortfalls,
        "minimums": {"accuracy": config.min_accuracy, "macro_f1": config.min_macro_f1},
    }


@dg.asset(
    partitions_def=dataset_versions,
    deps=[fine_tuned_model],
    group_name="train",
    kinds={"pytorch"},
    code_version="1",
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_EVALUATION_GATE,
            asset=MODEL_EVALUATION,
            blocking=True,
            description="test accuracy and macro F1 meet the configured minimums",
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
    from trainers.evaluation import evaluate_model, per_class_markdown  # torch loads in the step, not at import

    version = context.partition_key
    folder = registry.version_folder(version)
    report = evaluate_model(folder, trainer.bundle_folder(version))
    gate = gate_result(report["metrics"], config)
    update_card(folder, test_evaluation=report, evaluation_gate=gate)
    return dg.MaterializeResult(
        metadata={
            **{f"test_{name}": value for name, value in report["metrics"].items()},
            "test_examples": report["examples"],
            "per_class": dg.MetadataValue.md(per_class_markdown(report["per_class"])),
            "model_path": dg.MetadataValue.path(str(folder)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK_EVALUATION_GATE,
                passed=gate["passed"],
                metadata={
                    "shortfalls": dg.MetadataValue.json(gate["shortfalls"]),
                    "minimums": dg.MetadataValue.json(gate["minimums"]),
                },
            )
        ],
    )
