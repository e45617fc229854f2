"""`python -m benchmarks.fewshot [PATH] [--seeds N] [--k K] [--epochs E]`: new CLINC150 intents from k examples,
by prototypes (no gradient step) against the plain way (retrain with the k examples added).

For each seed, 30 of the 150 intents are held out; the embedded MiniLM is fine-tuned on the other 120
(E epochs), meta-trained on episodes of them and given a prototype head. The 30 are then added from k
train examples each with `trainers.add_labels`. The plain way fine-tunes the base MiniLM again on the 120
intents plus the k examples of each new one, same settings, no prototype head. Accuracy is on the official
test split among all 150 intents: `novel` on the 30, `base` on the 120, before and after the addition.
The new rows' biases are calibrated on the 120 intents' val split (known-label accuracy kept within half a
point), as `refinery add-labels` does.
Out-of-scope queries are left out. Prints each seed and the mean and spread over seeds.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
from pathlib import Path

import pyarrow as pa

from benchmarks.clinc150 import DEFAULT_PATH
from benchmarks.common import result_line
from trainers.add_labels import add_labels
from trainers.bundle import BundleManifest, write_bundle
from trainers.kinds import load_classifier
from trainers.params import TrainingParams
from trainers.train import Reporter, train

HELD_OUT = 30


def write_rows(splits: dict[str, list], folder: Path) -> Path:
    labels = sorted({label for _, label in splits["train"]})
    tables = {
        name: pa.table(
            {
                "doc_id": [f"{name}{i}" for i in range(len(rows))],
                "text": [t for t, _ in rows],
                "label": [label for _, label in rows],
            }
        )
        for name, rows in splits.items()
    }
    manifest = BundleManifest(
        {label: i for i, label in enumerate(labels)},
        ["clinc150"],
        "none",
        {name: len(rows) for name, rows in splits.items()},
    )
    return write_bundle(folder, tables, manifest)


def accuracy(folder: Path, rows: list) -> float:
    predicted = [p.label for p in load_classifier(folder).predict([t for t, _ in rows])]
    return 100 * sum(p == gold for p, (_, gold) in zip(predicted, rows, strict=True)) / len(rows)


def run_seed(data: dict, seed: int, k: int, epochs: int, episodes: int, root: Path, model: str) -> dict[str, float]:
    """One held-out draw: both ways of adding the novel intents, and the scores."""
    generator = random.Random(seed)
    novel = set(generator.sample(sorted({label for _, label in data["train"]}), HELD_OUT))
    base = {name: [r for r in data[name] if r[1] not in novel] for name in ("train", "val", "test")}
    novel_test = [r for r in data["test"] if r[1] in novel]
    shuffled = [r for r in data["train"] if r[1] in novel]
    generator.shuffle(shuffled)
    support: dict[str, list[str]] = {}
    for text, label in shuffled:
        if len(support.setdefault(label, [])) < k:
            support[label].append(text)
    settings = {
        "model_name_or_path": model,
        "max_epochs": epochs,
        "max_length": 48,
        "early_stopping_patience": 0,
        "seed": seed,
    }
    with Reporter() as reporter:
        train(
            write_rows(base, root / "base-bundle"),
            root / "base",
            TrainingParams(**settings, meta_episodes=episodes),
            reporter,
        )
        known = ([t for t, _ in base["val"]], [label for _, label in base["val"]])
        added = add_labels(root / "base", support, root / "added", known)
        plain = {**base, "train": base["train"] + [(t, label) for label, texts in support.items() for t in texts]}
        train(write_rows(plain, root / "plain-bundle"), root / "plain", TrainingParams(**settings), reporter)
    return {
        "novel_acc_protonet": accuracy(root / "added", novel_test),
        "novel_acc_finetune": accuracy(root / "plain", novel_test),
        "base_acc_after": accuracy(root / "added", base["test"]),
        "base_acc_before": accuracy(root / "base", base["test"]),
        "add_label_s": added["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="default", help="encoder folder or hub id (default: the embedded MiniLM)")
    parser.add_argument("--episodes", type=int, default=150, help="meta-training episodes (10-way 5-shot)")
    args = parser.parse_args()
    data = json.loads(args.path.read_text())
    runs = []
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as scratch:
            runs.append(run_seed(data, seed, args.k, args.epochs, args.episodes, Path(scratch), args.model))
        print(f"seed {seed}: " + json.dumps({name: round(value, 2) for name, value in runs[-1].items()}), flush=True)
    summary = {}
    for name in runs[0]:
        values = [run[name] for run in runs]
        summary[name] = round(statistics.mean(values), 2)
        summary[f"{name}_spread"] = round(statistics.pstdev(values), 2) if len(values) > 1 else 0.0
    print(result_line(k=args.k, seeds=args.seeds, **summary))


if __name__ == "__main__":
    main()
