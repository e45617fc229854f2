"""`python -m benchmarks.label_noise [PATH]`: label-error detection on CLINC150 (../shared/data) with planted flips.

Flips a fraction of the in-scope train labels (seeded), once to a uniformly random other intent and once to another
intent of the same domain (clinc150_domains.json: the harder case), screens the train split as `training_examples`
does (TF-IDF out-of-fold probabilities, cleanlab's confident learning), and prints per flip mode the detection's
precision and recall, and the test accuracy of the TF-IDF model fitted on the clean labels, on the noisy labels and
on the noisy labels less the suspects. Targets: precision and recall >= 0.7 on uniform flips; the quarantine
recovers at least half of the accuracy the noise cost (`recovered`).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import polars as pl

from assets.examples.label_issues import LabelIssueSettings, find_label_suspects
from benchmarks.clinc150 import DEFAULT_PATH
from benchmarks.common import result_line
from recipe.words import analyzed_texts
from trainers.selection.candidates import CandidateData, TfidfCandidate


def flipped_labels(labels: list[str], domains: dict[str, list[str]], *, mode: str, fraction: float, seed: int):
    """The labels with `fraction` of them changed (uniform: any other intent; same_domain: one of its domain's)."""
    rng = random.Random(seed)
    domain_of = {intent: domain for domain, intents in domains.items() for intent in intents}
    names = sorted(set(labels))
    chosen = set(rng.sample(range(len(labels)), int(len(labels) * fraction)))
    noisy = list(labels)
    for row in sorted(chosen):
        pool = domains[domain_of[labels[row]]] if mode == "same_domain" else names
        noisy[row] = rng.choice([name for name in pool if name != labels[row]])
    return noisy, chosen


def accuracy_on_test(train: pl.DataFrame, labels: list[str], test: pl.DataFrame, names: list[str]) -> float:
    """Test accuracy of the TF-IDF candidate fitted on `train` with `labels`."""
    index = {name: i for i, name in enumerate(names)}
    model = TfidfCandidate()
    fitted = CandidateData(train["text"].to_list(), train["analyzed"].to_list(), np.array([index[x] for x in labels]))
    model.fit(fitted, len(names))
    truth = np.array([index[x] for x in test["label"]])
    tested = CandidateData(test["text"].to_list(), test["analyzed"].to_list(), truth)
    return float((model.predict_proba(tested).argmax(axis=1) == truth).mean())


def split_frame(rows: list[list[str]], name: str) -> pl.DataFrame:
    texts = [text for text, _ in rows]
    return pl.DataFrame(
        {
            "doc_id": [f"{name}{i}" for i in range(len(rows))],
            "text": texts,
            "label": [label for _, label in rows],
            "split": [name] * len(rows),
            "analyzed": analyzed_texts(texts),
        }
    )


def run_mode(train: pl.DataFrame, test: pl.DataFrame, domains: dict, *, mode: str, args, clean_accuracy: float):
    """One flip mode: detection precision and recall, and the accuracies before and after the quarantine."""
    names = sorted(set(train["label"]))
    noisy, chosen = flipped_labels(train["label"].to_list(), domains, mode=mode, fraction=args.fraction, seed=args.seed)
    examples = train.with_columns(pl.Series("label", noisy))
    started = time.perf_counter()
    screen = find_label_suspects(examples, examples.select("doc_id", "analyzed"), LabelIssueSettings())
    seconds = time.perf_counter() - started
    found = {int(doc_id.removeprefix("train")) for doc_id in screen.issues["doc_id"]}
    hits = len(found & chosen)
    kept = examples.filter(~pl.col("doc_id").is_in(screen.issues["doc_id"].implode()))
    noisy_accuracy = accuracy_on_test(examples, noisy, test, names)
    after = accuracy_on_test(kept, kept["label"].to_list(), test, names)
    cost = clean_accuracy - noisy_accuracy
    return result_line(
        flip=mode,
        precision=round(hits / max(len(found), 1), 4),
        recall=round(hits / len(chosen), 4),
        suspects=len(found),
        flipped=len(chosen),
        acc_clean=round(clean_accuracy, 4),
        acc_noisy=round(noisy_accuracy, 4),
        acc_after_quarantine=round(after, 4),
        recovered=round((after - noisy_accuracy) / cost, 3) if cost > 0 else "n/a",
        screen_s=round(seconds, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--fraction", type=float, default=0.1, help="share of the train labels flipped")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--modes", nargs="+", default=["uniform", "same_domain"])
    args = parser.parse_args()
    data = json.loads(args.path.read_text())
    domains = json.loads(args.path.with_name("clinc150_domains.json").read_text())
    train, test = split_frame(data["train"], "train"), split_frame(data["test"], "test")  # in-scope intents
    clean_accuracy = accuracy_on_test(train, train["label"].to_list(), test, sorted(set(train["label"])))
    print(f"CLINC150 in-scope: {train.height} train, {test.height} test; clean TF-IDF test accuracy {clean_accuracy}")
    for mode in args.modes:
        print(run_mode(train, test, domains, mode=mode, args=args, clean_accuracy=clean_accuracy), flush=True)


if __name__ == "__main__":
    main()
