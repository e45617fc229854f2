"""The encoder sequence classifier: a pretrained encoder fine-tuned with a classification head.

A prototype head (few-shot labels) and an abstain threshold are options of this kind, not kinds of their own:
the folder and everything that loads it stay the same.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from contracts.model_folder import CLASSIFIER, TRANSFORMER
from trainers.kinds.classifying import classifier_gate, draw_classifier, evaluate_classifier, read_training_params
from trainers.kinds.kind import ModelKind


def train(bundle: Path, output: Path, params, reporter, checkpoints: Path | None = None) -> dict[str, object]:
    """Fine-tune the encoder (every rank), export from rank 0."""
    from trainers.fitting import train_encoder

    return train_encoder(bundle, output, params, reporter, checkpoints)


def load(folder: Path, card: dict, max_length: int | None = None, quantize: bool = False):
    """The folder's sequence classifier behind a `Classifier`."""
    from trainers.inference import Classifier
    from trainers.scorers import TransformerScorer

    return Classifier(folder, TransformerScorer(folder, card, max_length, quantize))


KIND = ModelKind(
    name=TRANSFORMER,
    family=CLASSIFIER,
    description="an encoder sequence classifier (optionally with a prototype head or an abstain label)",
    continuable=True,
    read_params=read_training_params,
    train=train,
    load=load,
    evaluate=partial(evaluate_classifier, load),
    gate=classifier_gate,
    draw=draw_classifier,
)
