"""Evaluating a candidate model: test metrics, the production model on the same split, and the promotion gate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainers.registry import CAUSAL_LM, ModelRegistry, read_card, update_card

GATED_METRICS = ("accuracy", "macro_f1")


@dataclass(frozen=True)
class GateSettings:
    """What a model must reach on the test split to be deployed."""

    min_accuracy: float = 0.6
    min_macro_f1: float = 0.5
    max_regression: float = 0.01  # how far below the production model's accuracy or macro F1 it may fall
    force: bool = False  # pass the gate anyway; recorded in the model card
    min_rouge_l: float = 0.2  # a causal LM's test ROUGE-L against the references
    max_perplexity: float = 0.0  # a causal LM's test perplexity of the references; 0: no limit


def gate_verdict(shortfalls: dict, regressions: dict, minimums: dict, settings: GateSettings) -> dict[str, object]:
    """The gate's record: passed when nothing falls short or regresses (or forced), and why."""
    met = not shortfalls and not regressions
    return {
        "passed": met or settings.force,
        "forced": settings.force and not met,
        "shortfalls": shortfalls,
        "regressions": regressions,
        "minimums": minimums,
        "max_regression": settings.max_regression,
    }


def gate_result(
    metrics: dict[str, float],
    settings: GateSettings,
    production: dict[str, float] | None = None,
    tasks: dict[str, dict[str, float]] | None = None,
) -> dict[str, object]:
    """Whether the metrics (and each task's, for a multi-task model) meet the minimums and do not regress on
    production beyond the tolerance."""
    minimums = {"accuracy": settings.min_accuracy, "macro_f1": settings.min_macro_f1}
    shortfalls = {
        name: {"observed": metrics[name], "minimum": minimum}
        for name, minimum in minimums.items()
        if metrics[name] < minimum
    }
    for task, task_metrics in (tasks or {}).items():
        shortfalls.update(
            {
                f"{task}.{name}": {"observed": task_metrics[name], "minimum": minimum}
                for name, minimum in minimums.items()
                if task_metrics[name] < minimum
            }
        )
    regressions = {
        name: {"observed": metrics[name], "production": production[name], "tolerance": settings.max_regression}
        for name in GATED_METRICS
        if production and metrics[name] < production[name] - settings.max_regression
    }
    return gate_verdict(shortfalls, regressions, minimums, settings)


def generation_gate(metrics: dict[str, float], settings: GateSettings, production: dict | None) -> dict[str, object]:
    """Whether a causal LM's test ROUGE-L (and perplexity, when limited) meet the minimums and its ROUGE-L does not
    regress on production's beyond the tolerance."""
    minimums = {
        "rouge_l": settings.min_rouge_l,
        **({"max_perplexity": settings.max_perplexity} if settings.max_perplexity else {}),
    }
    shortfalls = {}
    if metrics["rouge_l"] < settings.min_rouge_l:
        shortfalls["rouge_l"] = {"observed": metrics["rouge_l"], "minimum": settings.min_rouge_l}
    if settings.max_perplexity and metrics["perplexity"] > settings.max_perplexity:
        shortfalls["perplexity"] = {"observed": metrics["perplexity"], "maximum": settings.max_perplexity}
    regressions = {}
    if production and metrics["rouge_l"] < production["rouge_l"] - settings.max_regression:
        regressions["rouge_l"] = {
            "observed": metrics["rouge_l"],
            "production": production["rouge_l"],
            "tolerance": settings.max_regression,
        }
    return gate_verdict(shortfalls, regressions, minimums, settings)


def evaluate_generation_candidate(
    registry: ModelRegistry, folder: Path, bundle: Path, settings: GateSettings
) -> CandidateEvaluation:
    """A causal LM's report on its bundle's test split, production's on the same prompts (when it is a causal LM
    too), and the gate; both recorded in its card."""
    from trainers.generative.evaluation import evaluate_causal_lm

    report = evaluate_causal_lm(folder, bundle)
    production = None
    current = registry.aliases().get("production")
    if current is not None:
        current_folder = registry.version_folder(current)
        if read_card(current_folder).get("model_kind") == CAUSAL_LM:
            production = {"version": current, **evaluate_causal_lm(current_folder, bundle)}
        else:
            production = {"version": current, "not_comparable": "production is not a causal language model"}
    gate = generation_gate(report["metrics"], settings, production.get("metrics") if production else None)
    update_card(folder, test_evaluation=report, evaluation_gate=gate, production_comparison=production)
    return CandidateEvaluation(folder, report, production, gate, {})


def production_report(registry: ModelRegistry, candidate: Path, bundle: Path) -> dict | None:
    """The production model's evaluation on the candidate's test split (None when nothing is in production)."""
    from trainers.evaluation import evaluate_model  # torch loads in the step, not when the code location loads

    current = registry.aliases().get("production")
    if current is None:
        return None
    try:
        return {"version": current, **evaluate_model(registry.version_folder(current), bundle)}
    except ValueError as error:  # a different label set: the two are not comparable on these examples
        return {"version": current, "not_comparable": str(error)}


@dataclass
class CandidateEvaluation:
    """A candidate's test report, production's report on the same split, the gate, and the pictures drawn."""

    model_folder: Path
    report: dict
    production: dict | None
    gate: dict[str, object]
    pictures: dict[str, Path]  # confusion_matrix, reliability: PNG files in the model folder

    @property
    def production_metrics(self) -> dict[str, float] | None:
        return self.production.get("metrics") if self.production else None


def evaluate_candidate(
    registry: ModelRegistry, version: str, bundles_root: Path, settings: GateSettings, run_id: str = ""
) -> CandidateEvaluation:
    """Evaluate the newest model of dataset version `version` on its bundle's test split against production, gate
    it, and record both in its model card."""
    from trainers.evaluation import evaluate_model
    from trainers.reports import confusion_png, reliability_png

    folder = registry.model_for(version, run_id)  # this run's model; the newest one when this run trained none
    # every trained model version has its own bundle; one grown from a few examples is judged on its source's
    card = read_card(folder)
    bundle = bundles_root / ((card.get("lineage") or {}).get("evaluation_bundle") or folder.name)
    if card.get("model_kind") == CAUSAL_LM:
        return evaluate_generation_candidate(registry, folder, bundle, settings)
    report = evaluate_model(folder, bundle)
    production = production_report(registry, folder, bundle)
    gate = gate_result(
        report["metrics"], settings, production.get("metrics") if production else None, report.get("tasks")
    )
    pictures = {"confusion_matrix": folder / "confusion_matrix.png", "reliability": folder / "reliability.png"}
    pictures["confusion_matrix"].write_bytes(confusion_png(report["confusion_matrix"], report["labels"]))
    pictures["reliability"].write_bytes(reliability_png(report["calibration_bins"]))
    update_card(folder, test_evaluation=report, evaluation_gate=gate, production_comparison=production)
    return CandidateEvaluation(folder, report, production, gate, pictures)
