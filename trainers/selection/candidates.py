"""The candidates a selection matrix compares: a classic TF-IDF model and a frozen encoder with a linear head.

Both fit in seconds to minutes on a CPU, so a user learns whether a cheap model is enough before paying
for a fine-tune; the fine-tuned transformer itself is measured by `fine_tuned_model` and its evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contracts.model_folder import TFIDF_FILE
from trainers.sklearn_files import save_estimator


@dataclass(frozen=True)
class CandidateData:
    """One split as every candidate sees it: texts, their lemmas and stems as words, and label ids."""

    texts: list[str]
    analyzed: list[str]  # "lemma lemma ... stem stem ...": the NLP stage's output, for word n-grams
    labels: np.ndarray


class TfidfCandidate:
    """TF-IDF of lemma and stem word n-grams and of character n-grams, with a multinomial logistic regression."""

    name = "tfidf-logreg"

    def __init__(self, c: float = 20.0, max_features: int = 200_000, seed: int = 13) -> None:
        self.c, self.max_features, self.seed = c, max_features, seed
        self.model, self.classes = None, 0

    def _features(self):
        from sklearn.compose import ColumnTransformer
        from sklearn.feature_extraction.text import TfidfVectorizer

        words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=self.max_features)
        chars = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(2, 5),
            sublinear_tf=True,
            min_df=2,
            max_features=self.max_features,
            lowercase=True,
        )
        return ColumnTransformer([("words", words, 0), ("chars", chars, 1)])

    def fit(self, data: CandidateData, classes: int, val: CandidateData | None = None) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        self.classes = classes
        classifier = LogisticRegression(C=self.c, max_iter=300, random_state=self.seed)
        self.model = make_pipeline(self._features(), classifier)
        self.model.fit(_columns(data), data.labels)

    def predict_proba(self, data: CandidateData) -> np.ndarray:
        return _full_proba(self.model.predict_proba(_columns(data)), self.model.classes_, self.classes)

    def parameters(self) -> int:
        return int(self.model[-1].coef_.size + self.model[-1].intercept_.size)

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        save_estimator(self.model, folder / TFIDF_FILE)
        return folder


class FrozenEncoderCandidate:
    """A pretrained encoder left as it is (mean-pooled sentence vectors) with a trained logistic-regression head."""

    name = "encoder-frozen-logreg"

    def __init__(
        self, model_source: str, max_length: int = 64, batch_size: int = 64, seed: int = 13, name: str = ""
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.name = name or self.name
        self.source, self.max_length, self.batch_size, self.seed = model_source, max_length, batch_size, seed
        self.tokenizer = AutoTokenizer.from_pretrained(model_source)
        self.encoder = AutoModel.from_pretrained(model_source).eval()
        self.head = None
        self.classes = 0

    def embed(self, texts: list[str], encoder=None) -> np.ndarray:
        import torch

        vectors = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    texts[start : start + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = (encoder or self.encoder)(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                vectors.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(vectors) if vectors else np.zeros((0, self.encoder.config.hidden_size))

    def fit(self, data: CandidateData, classes: int, val: CandidateData | None = None) -> None:
        from sklearn.linear_model import LogisticRegression

        self.classes = classes
        self.head = LogisticRegression(C=50.0, max_iter=500, random_state=self.seed)
        self.head.fit(self.embed(data.texts), data.labels)

    def predict_proba(self, data: CandidateData, encoder=None) -> np.ndarray:
        probabilities = self.head.predict_proba(self.embed(data.texts, encoder))
        return _full_proba(probabilities, self.head.classes_, self.classes)

    def quantized(self):
        """Prediction with the encoder's Linear layers in int8, as the service runs on CPU."""
        from trainers.export import quantize_linear_layers

        int8 = quantize_linear_layers(self.encoder)
        return lambda data: self.predict_proba(data, int8)

    def parameters(self) -> int:
        body = sum(p.numel() for p in self.encoder.parameters())
        return int(body + self.head.coef_.size + self.head.intercept_.size)

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(folder / "encoder")
        self.tokenizer.save_pretrained(folder / "encoder")
        save_estimator(self.head, folder / "head.skops")
        return folder


def _columns(data: CandidateData) -> np.ndarray:
    return np.array([data.analyzed, data.texts], dtype=object).T


def _full_proba(probabilities: np.ndarray, seen: np.ndarray, classes: int) -> np.ndarray:
    """Probabilities over every label id, zero for labels the train split lacked."""
    full = np.zeros((probabilities.shape[0], max(classes, int(seen.max()) + 1)))
    full[:, seen] = probabilities
    return full
