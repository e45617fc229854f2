"""`python -m benchmarks.warmstart [PATH] [--intents N]`: a second version of CLINC150 trained from production
(warm start) and from the base model (cold), at the same stopping rule.

Version 1 is the first half of each intent's train examples; version 2 adds the second half. A model trained
cold on version 1 stands in production; version 2 is then trained twice, from it and from the base MiniLM,
each with early stopping on val macro F1 (patience 2, at most 6 epochs) and its best epoch kept, and both
are scored on the official test split (out-of-scope queries as their own class). `--intents N` keeps the
first N intents for a quicker run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from benchmarks.clinc150 import DEFAULT_PATH
from benchmarks.common import result_line
from trainers.bundle import BundleManifest, write_bundle
from trainers.kinds import load_classifier
from trainers.params import TrainingParams
from trainers.train import Reporter, train


def versions(data: dict, intents: int) -> tuple[dict, dict]:
    """Version 1 (half of each intent's train rows) and version 2 (all of them): splits of (text, label) rows."""
    kept = sorted({label for _, label in data["train"]})[:intents]
    rows = {
        name: [r for r in data[name] + data[f"oos_{name}"] if r[1] in kept or r[1] == "oos"]
        for name in ("train", "val", "test")
    }
    seen: dict[str, int] = {}
    first_half = []
    per_label = {label: sum(1 for _, lab in rows["train"] if lab == label) for label in {*kept, "oos"}}
    for text, label in rows["train"]:
        seen[label] = seen.get(label, 0) + 1
        if seen[label] <= per_label[label] // 2:
            first_half.append((text, label))
    return {**rows, "train": first_half}, rows


def bundle(splits: dict, folder: Path) -> Path:
    labels = sorted({label for rows in splits.values() for _, label in rows})
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


def fit_and_score(bundle_folder: Path, output: Path, source: str, test: list) -> tuple[float, float, int]:
    """Seconds to train, test accuracy in percent, and epochs run."""
    params = TrainingParams(model_name_or_path=source, max_length=48, max_epochs=6, early_stopping_patience=2)
    started = time.perf_counter()
    with Reporter() as reporter:
        train(bundle_folder, output, params, reporter)
    seconds = time.perf_counter() - started
    predicted = [p.label for p in load_classifier(output).predict([t for t, _ in test])]
    accuracy = 100 * sum(p == gold for p, (_, gold) in zip(predicted, test, strict=True)) / len(test)
    epochs = json.loads((output / "model_card.json").read_text())["epochs"]
    return seconds, accuracy, epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--intents", type=int, default=150)
    parser.add_argument("--model", default="default", help="encoder folder or hub id (default: the embedded MiniLM)")
    args = parser.parse_args()
    first, second = versions(json.loads(args.path.read_text()), args.intents)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        v1_s, v1_acc, _ = fit_and_score(bundle(first, root / "v1"), root / "production", args.model, first["test"])
        v2 = bundle(second, root / "v2")
        warm_s, warm_acc, warm_epochs = fit_and_score(v2, root / "warm", str(root / "production"), second["test"])
        cold_s, cold_acc, cold_epochs = fit_and_score(v2, root / "cold", args.model, second["test"])
    print(
        f"version 1: {len(first['train'])} train rows, {v1_s:.0f}s, test accuracy {v1_acc:.2f}%; version 2: "
        f"{len(second['train'])} train rows; warm {warm_epochs} epochs, cold {cold_epochs} epochs"
    )
    print(
        result_line(
            warm_s=round(warm_s, 1),
            cold_s=round(cold_s, 1),
            warm_acc=round(warm_acc, 2),
            cold_acc=round(cold_acc, 2),
            intents=args.intents,
        )
    )


if __name__ == "__main__":
    main()
