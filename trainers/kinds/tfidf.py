"""The TF-IDF linear classifier: word and character n-grams into a logistic regression (no GPU, seconds)."""

from __future__ import annotations

from pathlib import Path

from contracts.model_folder import TFIDF
from trainers.kinds.classifying import classifier_kind


def train(bundle: Path, output: Path, params, reporter, checkpoints: Path | None = None) -> dict[str, object]:
    """Fit on the bundle's primary task (rank 0; nothing to shard)."""
    from trainers.reporter import global_rank
    from trainers.tfidf import train_tfidf

    return train_tfidf(bundle, output, params, reporter) if global_rank() == 0 else {}


def load(folder: Path, card: dict, max_length: int | None = None, quantize: bool = False):
    """The folder's TF-IDF pipeline behind a `Classifier` (length and quantization do not apply)."""
    from trainers.inference import Classifier
    from trainers.scorers import TfidfScorer

    return Classifier(folder, TfidfScorer(folder, card))


KIND = classifier_kind(TFIDF, "a TF-IDF linear classifier", continuable=False, train=train, load=load)
