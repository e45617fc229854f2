"""The multi-task classifier: one encoder with a head per task a dataset declares, the first task primary."""

from __future__ import annotations

from pathlib import Path

from contracts.model_folder import MULTITASK
from trainers.kinds.classifying import classifier_kind


def train(bundle: Path, output: Path, params, reporter, checkpoints: Path | None = None) -> dict[str, object]:
    """Fine-tune one encoder on every task of the bundle (rank 0)."""
    from trainers.multitask import train_multitask
    from trainers.reporter import global_rank

    return train_multitask(bundle, output, params, reporter) if global_rank() == 0 else {}


def load(folder: Path, card: dict, max_length: int | None = None, quantize: bool = False):
    """The folder's encoder and heads behind a `Classifier` (the primary task's labels are its labels)."""
    from trainers.inference import Classifier
    from trainers.scorers import MultiTaskScorer

    return Classifier(folder, MultiTaskScorer(folder, card, max_length, quantize))


DESCRIPTION = "one encoder with a classification head per task"
KIND = classifier_kind(MULTITASK, DESCRIPTION, continuable=False, train=train, load=load)
