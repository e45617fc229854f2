"""model_evaluation: test-split metrics of the fine-tuned model, production on the same split, the promotion gate."""

from dataclasses import fields
from pathlib import Path

import dagster as dg

from assets.configs import config_fields, derived_config
from assets.metadata import checks_per_dataset, embedded_png, per_dataset
from assets.models.evaluation import CandidateEvaluation, evaluate_candidate
from assets.partitions import dataset_versions
from assets.resources import LandingResource, ModelRegistryResource, TrainerResource
from contracts.model_folder import CAUSAL_LM, DOMAIN_LM, MULTITASK, PREFERENCE, TFIDF, TRANSFORMER
from trainers.gates import GateSettings
from trainers.kinds import kind_of
from trainers.registry import model_card
from trainers.reports import confusion_markdown
from trainers.tracking import log_test_metrics

MODEL_EVALUATION = "model_evaluation"
CHECK_EVALUATION_GATE = "check_evaluation_gate"


EvaluationConfig = derived_config(
    "EvaluationConfig",
    "What a model must reach on the test split to be deployed.",
    __name__,
    config_fields(GateSettings),
)


def per_class_table(per_class: dict[str, dict[str, float]]) -> dg.MetadataValue:
    """The per-class precision, recall, F1 and support as a table the UI can sort."""
    columns = (
        [dg.TableColumn("label", "string")]
        + [dg.TableColumn(name, "float") for name in ("precision", "recall", "f1")]
        + [dg.TableColumn("support", "int")]
    )
    records = [dg.TableRecord({"label": label, **row}) for label, row in per_class.items()]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(columns))


def samples_markdown(samples: list[dict[str, str]]) -> str:
    """A causal LM's answers beside the references (and its base model's, when measured), as a table the UI shows."""
    keys = ["prompt", "reference", "answer"] + (["base_answer"] if samples and "base_answer" in samples[0] else [])
    lines = ["| " + " | ".join(k.replace("_", " ") for k in keys) + " |", "|" + "---|" * len(keys)]
    for sample in samples:
        cells = [sample[k][:300].replace("|", "\\|").replace("\n", " ") for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_metadata(evaluation: CandidateEvaluation) -> dict[str, object]:
    """Production's metrics on the same split, and its version."""
    if not evaluation.production_metrics:
        return {}
    comparison = {f"production_{name}": value for name, value in evaluation.production_metrics.items()}
    return {**comparison, "production_version": evaluation.production["version"]}


def generation_metadata(evaluation: CandidateEvaluation) -> dict[str, object]:
    """A causal LM's test perplexity, ROUGE-L and exact match, production's on the same prompts, and samples."""
    report = evaluation.report
    return {
        "model_version": evaluation.model_folder.name,
        **{f"test_{name}": value for name, value in report["metrics"].items()},
        **comparison_metadata(evaluation),
        "test_examples": report["examples"],
        "test_prompts_answered": report["prompts"],
        "samples": dg.MetadataValue.md(samples_markdown(report["samples"])),
        "model_path": dg.MetadataValue.path(str(evaluation.model_folder)),
    }


def summary_metadata(evaluation: CandidateEvaluation, counted: str) -> dict[str, object]:
    """The test metrics beside production's, and how many test items (`counted`: pairs, documents) they are over."""
    report = evaluation.report
    return {
        "model_version": evaluation.model_folder.name,
        **{f"test_{name}": value for name, value in report["metrics"].items()},
        **comparison_metadata(evaluation),
        f"test_{counted}": report[counted],
        "model_path": dg.MetadataValue.path(str(evaluation.model_folder)),
    }


def preference_metadata(evaluation: CandidateEvaluation) -> dict[str, object]:
    """A preference-tuned model's test preference accuracy and reward margin against its base, its base's own
    preference, and production's on the same pairs."""
    return summary_metadata(evaluation, "pairs")


def domain_metadata(evaluation: CandidateEvaluation) -> dict[str, object]:
    """An adapted model's held-out perplexity beside its base's and production's, on the same documents."""
    return summary_metadata(evaluation, "documents")


def evaluation_metadata(evaluation: CandidateEvaluation) -> dict[str, object]:
    """Test metrics, production's metrics on the same split, the per-class table and the pictures."""
    report = evaluation.report
    comparison = comparison_metadata(evaluation)
    confusion, reliability = evaluation.pictures["confusion_matrix"], evaluation.pictures["reliability"]
    return {
        "model_version": evaluation.model_folder.name,
        **{f"test_{name}": value for name, value in report["metrics"].items()},
        **comparison,
        "test_examples": report["examples"],
        **({"test_per_task": dg.MetadataValue.json(report["tasks"])} if report.get("tasks") else {}),
        "per_class": per_class_table(report["per_class"]),
        "confusion_matrix": dg.MetadataValue.md(
            embedded_png(confusion, "confusion matrix")
            + "\n\n"
            + confusion_markdown(report["labels"], report["confusion_matrix"])
        ),
        "reliability_diagram": dg.MetadataValue.md(embedded_png(reliability, "reliability diagram")),
        "confusion_matrix_png": dg.MetadataValue.path(str(confusion)),
        "reliability_png": dg.MetadataValue.path(str(reliability)),
        "model_path": dg.MetadataValue.path(str(evaluation.model_folder)),
    }


METADATA_BY_KIND = {  # what the UI shows of each model kind's evaluation
    TRANSFORMER: evaluation_metadata,
    MULTITASK: evaluation_metadata,
    TFIDF: evaluation_metadata,
    CAUSAL_LM: generation_metadata,
    PREFERENCE: preference_metadata,
    DOMAIN_LM: domain_metadata,
}


def describe(evaluation: CandidateEvaluation) -> dict[str, object]:
    """The evaluation's metadata as its model kind reports it; a kind with no description here is refused."""
    kind = kind_of(evaluation.model_folder).name
    if kind not in METADATA_BY_KIND:
        raise ValueError(f"model_evaluation cannot describe a {kind!r} model (it knows {', '.join(METADATA_BY_KIND)})")
    return METADATA_BY_KIND[kind](evaluation)


def gate_detail(gate: dict[str, object]) -> str:
    """The gate's verdict in a line: each metric below its minimum, each one regressed against production."""
    below = [
        f"{name} {found.get('observed')} is not above the minimum {found.get('minimum')}"
        for name, found in (gate.get("shortfalls") or {}).items()
    ]
    regressed = [
        f"{name} {found.get('observed')} against production's {found.get('production')} "
        f"(tolerance {found.get('tolerance')})"
        for name, found in (gate.get("regressions") or {}).items()
    ]
    if gate["passed"]:
        return "passed" + (" (forced)" if gate.get("forced") else "")
    return "; ".join(below + regressed) or "failed"


def gate_check_result(gate: dict[str, object]) -> dg.AssetCheckResult:
    """The promotion gate as a blocking check."""
    return dg.AssetCheckResult(
        check_name=CHECK_EVALUATION_GATE,
        passed=bool(gate["passed"]),
        metadata={
            "detail": gate_detail(gate),
            "shortfalls": dg.MetadataValue.json(gate["shortfalls"]),
            "regressions": dg.MetadataValue.json(gate["regressions"]),
            "minimums": dg.MetadataValue.json(gate["minimums"]),
            "forced": gate["forced"],
        },
    )


@dg.asset(
    partitions_def=dataset_versions,
    deps=["fine_tuned_model"],
    group_name="train",
    kinds={"pytorch"},
    code_version="3",
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_EVALUATION_GATE,
            asset=MODEL_EVALUATION,
            blocking=True,
            description="the test metrics of the model's kind (a classifier's accuracy and macro F1; a causal LM's "
            "ROUGE-L and perplexity; a preference model's preference accuracy) meet the minimums and do not regress "
            "on production",
        )
    ],
)
def model_evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    registry: ModelRegistryResource,
    trainer: TrainerResource,
    landing: LandingResource,
) -> dg.MaterializeResult:
    """The fine-tuned model on the test split, measured as its kind is: a classifier's accuracy and macro/micro
    precision, recall and F1; a causal LM's ROUGE-L, exact match and perplexity beside its base's; a preference
    model's preference accuracy and reward margin; an adapted LM's held-out perplexity; each beside production's."""
    version = context.partition_key
    settings = GateSettings(**{item.name: getattr(config, item.name) for item in fields(GateSettings)})
    models = registry.for_dataset(landing.dataset(version).name)
    evaluation = evaluate_candidate(models, version, Path(trainer.bundles_root), settings, context.run_id)
    model_version = evaluation.model_folder.name
    if evaluation.gate["forced"]:
        context.log.warning(f"model {model_version} passes its gate only because force=true: {evaluation.gate}")
    metadata = describe(evaluation)
    home, card = Path(trainer.bundles_root).parent, model_card(evaluation.model_folder)
    metadata.update(log_test_metrics(home, card, evaluation.report.get("metrics") or {}))
    dataset = landing.dataset(version).name
    return dg.MaterializeResult(
        metadata=per_dataset(dataset, metadata),
        check_results=checks_per_dataset(dataset, [gate_check_result(evaluation.gate)]),
    )
