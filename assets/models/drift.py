"""Drift between the texts a model learned from and the texts it now sees: pure functions over lists."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

LENGTH_EDGES = (5, 10, 20, 40, 80, 160, 320)  # words; the last bucket is everything longer
WORD = re.compile(r"[a-z]+")


def population_stability_index(expected: dict[str, float], actual: dict[str, float], floor: float = 1e-4) -> float:
    """PSI = Σ (a - e) · ln(a / e) over the union of buckets; shares below `floor` count as `floor`."""
    psi = 0.0
    for bucket in set(expected) | set(actual):
        e, a = max(expected.get(bucket, 0.0), floor), max(actual.get(bucket, 0.0), floor)
        psi += (a - e) * math.log(a / e)
    return psi


def shares(values: list[str]) -> dict[str, float]:
    """Each distinct value's share of the list."""
    counts = Counter(values)
    total = sum(counts.values()) or 1
    return {value: count / total for value, count in counts.items()}


def length_bucket(text: str) -> str:
    """The word-count bucket of a text, e.g. '10-20'."""
    words = len(text.split())
    low = 0
    for edge in LENGTH_EDGES:
        if words < edge:
            return f"{low}-{edge}"
        low = edge
    return f"{low}+"


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def oov_rate(texts: list[str], vocabulary: set[str]) -> float:
    """Share of word tokens in `texts` that the vocabulary lacks."""
    tokens = [w for text in texts for w in words(text)]
    return sum(w not in vocabulary for w in tokens) / len(tokens) if tokens else 0.0


@dataclass
class DriftReport:
    """How recent predictions differ from the training data, and live accuracy where feedback exists."""

    label_psi: float
    length_psi: float
    train_oov_rate: float
    recent_oov_rate: float
    reference_confidence: float
    recent_confidence: float
    live_accuracy: float | None
    feedback_count: int
    recent_count: int

    @property
    def oov_shift(self) -> float:
        return self.recent_oov_rate - self.train_oov_rate

    @property
    def confidence_drop(self) -> float:
        return self.reference_confidence - self.recent_confidence


def drift_report(
    train_texts: list[str],
    train_labels: list[str],
    reference_confidence: float,
    recent_texts: list[str],
    recent_labels: list[str],
    recent_scores: list[float],
    feedback: list[tuple[str, str]] | None = None,
) -> DriftReport:
    """Compare recent predictions (texts, predicted labels, scores) with the training split.

    The training OOV rate is measured on its last fifth against a vocabulary of the rest, so both
    rates count words unseen by the same-sized vocabulary rather than 0 for the training texts.
    `feedback` pairs (predicted, true) labels for live accuracy.
    """
    if not recent_texts:
        raise ValueError("no recent predictions to compare with the training data")
    split = max(1, len(train_texts) * 4 // 5)
    held_vocabulary = {w for text in train_texts[:split] for w in words(text)}
    vocabulary = held_vocabulary | {w for text in train_texts[split:] for w in words(text)}
    feedback = feedback or []
    return DriftReport(
        label_psi=population_stability_index(shares(train_labels), shares(recent_labels)),
        length_psi=population_stability_index(
            shares([length_bucket(t) for t in train_texts]), shares([length_bucket(t) for t in recent_texts])
        ),
        train_oov_rate=oov_rate(train_texts[split:], held_vocabulary),
        recent_oov_rate=oov_rate(recent_texts, vocabulary),
        reference_confidence=reference_confidence,
        recent_confidence=sum(recent_scores) / len(recent_scores),
        live_accuracy=sum(p == t for p, t in feedback) / len(feedback) if feedback else None,
        feedback_count=len(feedback),
        recent_count=len(recent_texts),
    )
