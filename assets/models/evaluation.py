"""Evaluating a candidate model: test metrics, the production model on the same split, and the promotion gate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainers.gates import GateSettings
from trainers.kinds import ModelKind, kind_of
from trainers.registry import ModelRegistry, read_card, update_card


def production_report(registry: ModelRegistry, kind: ModelKind, bundle: Path) -> dict | None:
    """The production model's report on the candidate's test split (None when nothing is in production); not
    comparable when it is of another family than the candidate's or knows other labels."""
    current = registry.aliases().get("production")
    if current is None:
        return None
    folder = registry.version_folder(current)
    production_kind = kind_of(folder)
    if production_kind.family != kind.family:
        return {
            "version": current,
            "not_comparable": f"production is a {production_kind.name} model, not a {kind.family}",
        }
    try:
        return {"version": current, **production_kind.evaluate(folder, bundle)}
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
    it, and record both in its model card; its kind says how."""
    folder = registry.model_for(version, run_id)  # this run's model; the newest one when this run trained none
    # every trained model version has its own bundle; one grown from a few examples is judged on its source's
    card = read_card(folder)
    bundle = bundles_root / ((card.get("lineage") or {}).get("evaluation_bundle") or folder.name)
    kind = kind_of(folder)
    report = kind.evaluate(folder, bundle)
    production = production_report(registry, kind, bundle)
    gate = kind.gate(report, settings, production.get("metrics") if production else None)
    pictures = kind.draw(folder, report)
    update_card(folder, test_evaluation=report, evaluation_gate=gate, production_comparison=production)
    return CandidateEvaluation(folder, report, production, gate, pictures)
