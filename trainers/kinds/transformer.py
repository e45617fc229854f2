"""The encoder sequence classifier: a pretrained encoder fine-tuned with a classification head.

A prototype head (few-shot labels) and an abstain threshold are options of this kind, not kinds of their own:
the folder and everything that loads it stay the same.
"""

from __future__ import annotations

from pathlib import Path

from contracts.model_folder import TRANSFORMER
from trainers.kinds.classifying import classifier_kind


def train(bundle: Path, output: Path, params, reporter, checkpoints: Path | None = None) -> dict[str, object]:
    """Fine-tune the encoder (every rank), export from rank 0."""
    from trainers.fitting import train_encoder

    return train_encoder(bundle, output, params, reporter, checkpoints)


def load(folder: Path, card: dict, max_length: int | None = None, quantize: bool = False):
    """The folder's sequence classifier behind a `Classifier`."""
    from trainers.inference import Classifier
    from trainers.scorers import TransformerScorer

    return Classifier(folder, TransformerScorer(folder, card, max_length, quantize))


DESCRIPTION = "an encoder sequence classifier (optionally with a prototype head or an abstain label)"
KIND = classifier_kind(TRANSFORMER, DESCRIPTION, continuable=True, train=train, load=load)
