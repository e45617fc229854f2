"""What every classifier kind shares: its params, its test report, its gate and its pictures."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from contracts.model_folder import CLASSIFIER
from trainers.bundle import CLASSIFICATION
from trainers.gates import classifier_gate
from trainers.kinds.kind import ModelKind
from trainers.params import TrainingParams
from trainers.registry import model_card

__all__ = ["classifier_kind", "draw_classifier", "evaluate_classifier", "read_training_params"]


def read_training_params(text: str) -> TrainingParams:
    """A classifier's params from JSON."""
    return TrainingParams.from_json(text)


def evaluate_classifier(load, folder: Path, bundle: Path) -> dict[str, object]:
    """The test report of the classifier `load(folder, card)` loads."""
    from trainers.evaluation import evaluate_model  # torch loads in the step, not when the code location loads

    return evaluate_model(load(folder, model_card(folder)), bundle)


def draw_classifier(folder: Path, report: Mapping) -> dict[str, Path]:
    """The confusion matrix and the reliability diagram of a test report, as PNG files in the model folder."""
    from trainers.reports import confusion_png, reliability_png

    pictures = {"confusion_matrix": folder / "confusion_matrix.png", "reliability": folder / "reliability.png"}
    pictures["confusion_matrix"].write_bytes(confusion_png(report["confusion_matrix"], report["labels"]))
    pictures["reliability"].write_bytes(reliability_png(report["calibration_bins"]))
    return pictures


def classifier_kind(name: str, description: str, *, continuable: bool, train: Callable, load: Callable) -> ModelKind:
    """A classifier kind: its own training and loading, the shared params, report, gate and pictures."""
    return ModelKind(
        name=name,
        family=CLASSIFIER,
        trains_on=CLASSIFICATION,
        description=description,
        continuable=continuable,
        read_params=read_training_params,
        train=train,
        load=load,
        evaluate=partial(evaluate_classifier, load),
        gate=classifier_gate,
        draw=draw_classifier,
    )
