"""The promotion gate: what a candidate's test report must reach, and whether it falls behind production."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from contracts.settings import setting

GATED_METRICS = ("accuracy", "macro_f1")


@dataclass(frozen=True)
class GateSettings:
    """What a model must reach on the test split to be deployed (the `model_evaluation` config derives from it)."""

    min_accuracy: float = setting(0.6, "a classifier's least test accuracy")
    min_macro_f1: float = setting(0.5, "a classifier's least test macro F1")
    max_regression: float = setting(0.01, "how far below the production model's gated metrics it may fall")
    force: bool = setting(False, "pass the gate anyway; recorded in the model card")
    min_rouge_l: float = setting(0.2, "a causal LM's least test ROUGE-L of its greedy answers against the references")
    max_perplexity: float = setting(0.0, "a causal LM's most test perplexity of the references; 0 = no limit")
    min_gain_over_base: float = setting(
        0.0, "a causal LM's ROUGE-L must beat its base model's (zero-shot, same prompts) by more than this; -1 = off"
    )
    min_preference_accuracy: float = setting(
        0.6, "a preference-tuned model's least share of test pairs whose chosen answer its reward ranks first"
    )
    min_perplexity_gain: float = setting(
        0.0, "an adapted model's held-out perplexity must fall below its base's by more than this fraction; -1 = off"
    )


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


def generation_shortfalls(metrics: Mapping, settings: GateSettings) -> tuple[dict, dict]:
    """A causal LM's minimums and where its test ROUGE-L (and perplexity, when limited) fall short of them."""
    minimums = {
        "rouge_l": settings.min_rouge_l,
        **({"max_perplexity": settings.max_perplexity} if settings.max_perplexity else {}),
    }
    shortfalls = {}
    if metrics["rouge_l"] < settings.min_rouge_l:
        shortfalls["rouge_l"] = {"observed": metrics["rouge_l"], "minimum": settings.min_rouge_l}
    if settings.max_perplexity and metrics["perplexity"] > settings.max_perplexity:
        shortfalls["perplexity"] = {"observed": metrics["perplexity"], "maximum": settings.max_perplexity}
    return minimums, shortfalls


def generation_regressions(metrics: Mapping, settings: GateSettings, production: dict | None) -> dict:
    """Where a causal LM's ROUGE-L falls below production's beyond the tolerance."""
    if not production or metrics["rouge_l"] >= production["rouge_l"] - settings.max_regression:
        return {}
    return {
        "rouge_l": {
            "observed": metrics["rouge_l"],
            "production": production["rouge_l"],
            "tolerance": settings.max_regression,
        }
    }


def classifier_gate(report: Mapping, settings: GateSettings, production: dict | None) -> dict[str, object]:
    """A classifier's gate on its test report: accuracy and macro F1 (each task's too), against production's."""
    return gate_result(report["metrics"], settings, production, report.get("tasks"))


def generator_gate(report: Mapping, settings: GateSettings, production: dict | None) -> dict[str, object]:
    """A generator's gate on its test report: ROUGE-L and perplexity, its gain over the base model it was
    fine-tuned from, and no regression against production's."""
    metrics = report["metrics"]
    minimums, shortfalls = generation_shortfalls(metrics, settings)
    base_not_measured = None
    if settings.min_gain_over_base >= 0:
        minimums["gain_over_base"] = settings.min_gain_over_base
        if "gain_over_base" not in metrics:  # the base could not be loaded here: said so, not counted against it
            base_not_measured = (report.get("base") or {}).get("not_measured", "no base model measured")
        elif metrics["gain_over_base"] <= settings.min_gain_over_base:
            shortfalls["gain_over_base"] = {
                "observed": metrics["gain_over_base"],
                "minimum": settings.min_gain_over_base,
                "rouge_l": metrics["rouge_l"],
                "base_rouge_l": metrics["base_rouge_l"],
            }
    verdict = gate_verdict(shortfalls, generation_regressions(metrics, settings, production), minimums, settings)
    if base_not_measured:
        verdict["base_not_measured"] = base_not_measured
    return verdict


def preference_gate(report: Mapping, settings: GateSettings, production: dict | None) -> dict[str, object]:
    """A preference-tuned model's gate: its test preference accuracy, no regression against production's, and, when
    it started from an SFT model, ROUGE-L on that dataset's test prompts no more than `max_regression` below it."""
    metrics = report["metrics"]
    minimums = {"preference_accuracy": settings.min_preference_accuracy}
    shortfalls = {}
    if metrics["preference_accuracy"] < settings.min_preference_accuracy:
        shortfalls["preference_accuracy"] = {
            "observed": metrics["preference_accuracy"],
            "minimum": settings.min_preference_accuracy,
        }
    regressions = {}
    known = production and "preference_accuracy" in production
    if known and metrics["preference_accuracy"] < production["preference_accuracy"] - settings.max_regression:
        regressions["preference_accuracy"] = {
            "observed": metrics["preference_accuracy"],
            "production": production["preference_accuracy"],
            "tolerance": settings.max_regression,
        }
    if "sft_rouge_l" in metrics and metrics["sft_rouge_l"] < metrics["base_sft_rouge_l"] - settings.max_regression:
        regressions["sft_rouge_l"] = {  # the answers of the SFT model it tuned, on that dataset's test prompts
            "observed": metrics["sft_rouge_l"],
            "production": metrics["base_sft_rouge_l"],
            "tolerance": settings.max_regression,
        }
    return gate_verdict(shortfalls, regressions, minimums, settings)


def domain_gate(report: Mapping, settings: GateSettings, production: dict | None) -> dict[str, object]:
    """An adapted model's gate: held-out perplexity below its base's by more than `min_perplexity_gain` (a
    fraction), and no more than `max_regression` (a fraction) above production's on the same documents."""
    metrics = report["metrics"]
    minimums = {"perplexity_gain": settings.min_perplexity_gain}
    shortfalls = {}
    if settings.min_perplexity_gain > -1 and metrics["perplexity_gain"] <= settings.min_perplexity_gain:
        shortfalls["perplexity_gain"] = {
            "observed": metrics["perplexity_gain"],
            "minimum": settings.min_perplexity_gain,
            "perplexity": metrics["perplexity"],
            "base_perplexity": metrics["base_perplexity"],
        }
    regressions = {}
    known = production and "perplexity" in production
    if known and metrics["perplexity"] > production["perplexity"] * (1 + settings.max_regression):
        regressions["perplexity"] = {
            "observed": metrics["perplexity"],
            "production": production["perplexity"],
            "tolerance": settings.max_regression,
        }
    return gate_verdict(shortfalls, regressions, minimums, settings)
