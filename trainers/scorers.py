"""What turns prepared texts into class probabilities inside a `Classifier`: an encoder, a multi-task encoder or a
TF-IDF model (`trainers.kinds` picks one per model folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from contracts.model_folder import LEGACY_TFIDF_FILE, TFIDF_FILE
from trainers.export import class_probabilities, pooled_embeddings, quantize_linear_layers
from trainers.registry import read_label_map
from trainers.sklearn_files import UnsafeModelFileError, load_estimator


class Scorer(Protocol):
    """What a `Classifier` asks of its model: class probabilities of prepared texts, their precision, and the
    model's own vector of each text (what its evidence index searches)."""

    precision: str

    def probabilities(self, texts: list[str], batch_size: int = 64) -> torch.Tensor: ...

    def embeddings(self, texts: list[str], batch_size: int = 64): ...


class TransformerScorer:
    """A transformers sequence classifier, its tokenizer and the length and truncation it was trained with."""

    def __init__(self, folder: Path, card: dict, max_length: int | None = None, quantize: bool = False) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        self.precision = "float32"
        if quantize:
            self.model, self.precision = quantize_linear_layers(self.model), "int8-dynamic"
        trained = card.get("hyperparameters", {})
        self.max_length = max_length or int(trained.get("max_length", 128))
        self.truncation = trained.get("truncation", "head")

    def probabilities(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """Class probabilities of prepared texts."""
        return class_probabilities(self.model, self.tokenizer, texts, self.max_length, self.truncation, batch_size)

    def embeddings(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """The encoder's mean-pooled vector of each prepared text."""
        encoder = self.model.base_model
        return pooled_embeddings(encoder, self.tokenizer, texts, self.max_length, self.truncation, batch_size).numpy()


class TfidfScorer:
    """A scikit-learn TF-IDF pipeline over each text's lemmas and stems (word n-grams) and its characters, read
    from a skops file whose every type is trusted (`trainers.sklearn_files`)."""

    precision = "float64-sparse"

    def __init__(self, folder: Path, card: dict) -> None:
        if not (folder / TFIDF_FILE).exists() and (folder / LEGACY_TFIDF_FILE).exists():
            raise UnsafeModelFileError(
                f"{folder / LEGACY_TFIDF_FILE}: a pickle from an older export; Refinery no longer loads pickles "
                "from model folders (one could run any code): train this model again"
            )
        self.pipeline = load_estimator(folder / TFIDF_FILE)
        self.language = card.get("hyperparameters", {}).get("analyzer_language", "en")
        self.classes = len(read_label_map(folder))

    def probabilities(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """Class probabilities of prepared texts (every label id, zero for any the train split lacked)."""
        if not texts:
            return torch.empty((0, self.classes))
        seen = self.pipeline.classes_
        full = np.zeros((len(texts), self.classes))
        full[:, seen] = self.pipeline.predict_proba(self._columns(texts))
        return torch.from_numpy(full).float()

    def _columns(self, texts: list[str]) -> np.ndarray:
        from recipe.words import analyzed_texts

        return np.array([analyzed_texts(texts, self.language), texts], dtype=object).T

    def embeddings(self, texts: list[str], batch_size: int = 64):
        """Each prepared text's TF-IDF features (a sparse matrix): the vectors its linear model reads."""
        return self.pipeline[:-1].transform(self._columns(texts))


class MultiTaskScorer:
    """A shared encoder with one head per task: every task's probabilities from one forward pass."""

    def __init__(self, folder: Path, card: dict, max_length: int | None = None, quantize: bool = False) -> None:
        from trainers.multitask import load_multitask

        self.net, self.tokenizer, self.tasks = load_multitask(folder)
        self.precision = "float32"
        if quantize:
            self.net, self.precision = quantize_linear_layers(self.net), "int8-dynamic"
        trained = card.get("hyperparameters", {})
        self.max_length = max_length or int(trained.get("max_length", 128))
        self.truncation = trained.get("truncation", "head")

    @torch.inference_mode()
    def task_probabilities(self, texts: list[str], batch_size: int = 64) -> dict[str, torch.Tensor]:
        """Each task's class probabilities of prepared texts."""
        from trainers.encoding import encode

        result = {task: torch.empty((len(texts), len(labels))) for task, labels in self.tasks.items()}
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids = encode(self.tokenizer, [texts[i] for i in chunk], self.max_length, self.truncation)
            batch = self.tokenizer.pad({"input_ids": ids}, return_tensors="pt")
            for task, logits in self.net(batch["input_ids"], batch["attention_mask"]).items():
                result[task][chunk] = torch.softmax(logits.float(), dim=-1)
        return result

    def probabilities(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """The primary (first) task's probabilities, for consumers of one task."""
        return next(iter(self.task_probabilities(texts, batch_size).values()))

    def embeddings(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """The shared encoder's mean-pooled vector of each prepared text: what every head reads."""
        encoder = self.net.encoder
        return pooled_embeddings(encoder, self.tokenizer, texts, self.max_length, self.truncation, batch_size).numpy()
