"""Language identification of many texts at once: py3langid's model and algorithm, vectorised over texts.

py3langid walks each text's bytes through a byte n-gram automaton in a Python loop, one text at a time, and
that loop was most of `clean_documents`' time on real prose. Here every text advances one byte per numpy
step, the features reached are counted per text in one pass, and the naive Bayes scores are one sparse
matrix product. Same model, same features, same decision (a test compares both on varied texts).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class LanguageModel:
    """py3langid's shipped model as arrays."""

    next_move: np.ndarray  # state * 256 + byte -> next state
    row_base: np.ndarray  # state -> offset into next_move
    output: np.ndarray  # state -> feature index, -1 for none
    feature_log_probs: np.ndarray  # features x classes
    class_log_priors: np.ndarray  # classes
    classes: list[str]
    alias_pairs: list[tuple[int, int]]  # (first, duplicate) columns of one label


@lru_cache(maxsize=1)
def language_model() -> LanguageModel:
    """Load py3langid's model once per process (it ships inside the package: no download)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return LanguageModel(
        np.asarray(identifier.tk_nextmove, dtype=np.int64),
        np.asarray(identifier._rowbase, dtype=np.int64),
        np.asarray(identifier.tk_output, dtype=np.int64),
        np.asarray(identifier.nb_ptc, dtype=np.float32),
        np.asarray(identifier.nb_pc, dtype=np.float32),
        list(identifier.nb_classes),
        list(identifier._alias_pairs),
    )


def encoded(text: str) -> bytes:
    """The bytes py3langid scores: an all-capitals text lower-cased, NFC, UTF-8."""
    if text.isupper():
        text = text.lower()
    return unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")


def feature_counts(model: LanguageModel, texts: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(text index, feature, count) of every feature the automaton reaches in each text."""
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")  # longest first: the texts still walking are always a prefix
    buffer = np.frombuffer(b"".join(texts[i] for i in order), dtype=np.uint8)
    starts = np.concatenate(([0], np.cumsum(lengths[order])[:-1]))
    sorted_lengths = lengths[order]
    state = np.zeros(len(texts), dtype=np.int64)
    hits_text, hits_feature = [], []
    for position in range(int(sorted_lengths[0]) if len(texts) else 0):
        walking = int(np.searchsorted(-sorted_lengths, -position, side="left"))  # texts longer than `position`
        current = state[:walking]
        current = model.next_move[model.row_base[current] + buffer[starts[:walking] + position]]
        state[:walking] = current
        features = model.output[current]
        reached = np.flatnonzero(features >= 0)
        hits_text.append(order[reached])
        hits_feature.append(features[reached])
    if not hits_text:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    keys = np.concatenate(hits_text) * len(model.feature_log_probs) + np.concatenate(hits_feature)
    unique, counts = np.unique(keys, return_counts=True)
    return unique // len(model.feature_log_probs), unique % len(model.feature_log_probs), counts.astype(np.float32)


def identify(texts: list[str]) -> tuple[list[str], list[float]]:
    """Each text's language and its probability, as py3langid's `classify` with normalised probabilities."""
    from scipy.sparse import csr_matrix

    model = language_model()
    if not texts:
        return [], []
    data = [encoded(t) for t in texts]
    rows, features, counts = feature_counts(model, data)
    matrix = csr_matrix((np.log1p(counts), (rows, features)), shape=(len(texts), len(model.feature_log_probs)))
    scores = np.asarray(matrix @ model.feature_log_probs, dtype=np.float32) + model.class_log_priors
    featureless = np.bincount(rows, minlength=len(texts)) == 0
    scores[featureless] = 0.0
    scores *= (1.0 / np.sqrt(np.maximum([len(d) for d in data], 1))).astype(np.float32)[:, None]
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    scores /= scores.sum(axis=1, keepdims=True)
    for first, duplicate in model.alias_pairs:
        scores[:, first] += scores[:, duplicate]
        scores[:, duplicate] = 0.0
    best = scores.argmax(axis=1)
    return [model.classes[i] for i in best], scores[np.arange(len(texts)), best].astype(float).tolist()
