"""Evaluate an exported model on a bundle's test split."""

from __future__ import annotations

from pathlib import Path

import torch
from torchmetrics.functional.classification import (
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from trainers.bundle import read_manifest, read_split
from trainers.export import Classifier
from trainers.metrics import classification_metrics


def evaluate_model(model_folder: Path, bundle: Path, split: str = "test") -> dict[str, object]:
    """Metrics of the model on one split of the bundle, overall and per class."""
    classifier = Classifier(model_folder)
    label_map = read_manifest(bundle).label_map
    texts, targets = read_split(bundle, split, label_map)
    if not texts:
        raise ValueError(f"{bundle}: the {split} split is empty")
    if set(classifier.labels) != set(label_map):
        raise ValueError(
            f"{model_folder}: model labels {classifier.labels} differ from the bundle's {sorted(label_map)}"
        )
    predictions = torch.tensor([label_map[p.label] for p in classifier.predict(texts)])
    target_tensor = torch.tensor(targets)
    classes = len(label_map)
    per_class = zip(
        multiclass_precision(predictions, target_tensor, classes, average=None).tolist(),
        multiclass_recall(predictions, target_tensor, classes, average=None).tolist(),
        multiclass_f1_score(predictions, target_tensor, classes, average=None).tolist(),
        torch.bincount(target_tensor, minlength=classes).tolist(),
        strict=True,
    )
    names = sorted(label_map, key=label_map.__getitem__)
    return {
        "split": split,
        "examples": len(texts),
        "metrics": classification_metrics(predictions, target_tensor, classes),
        "per_class": {
            name: {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": n}
            for name, (p, r, f, n) in zip(names, per_class, strict=True)
        },
    }


def per_class_markdown(per_class: dict[str, dict[str, float]]) -> str:
    """The per-class table as markdown."""
    lines = ["| label | precision | recall | f1 | support |", "|---|---|---|---|---|"]
    for label, row in per_class.items():
        lines.append(f"| {label} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    return "\n".join(lines)
