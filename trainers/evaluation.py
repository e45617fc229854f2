"""Evaluate an exported model on a bundle's test split."""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from torchmetrics.functional.classification import (
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from trainers.bundle import read_bundle_manifest, read_split, read_task_split
from trainers.inference import Classifier
from trainers.metrics import classification_metrics
from trainers.reports import bins_calibration_error


def evaluate_model(classifier: Classifier, bundle: Path, split: str = "test") -> dict[str, object]:
    """Metrics of a loaded classifier on one split of the bundle, overall and per class."""
    label_map = read_bundle_manifest(bundle).label_map
    texts, targets = read_split(bundle, split, label_map)
    if not texts:
        raise ValueError(f"{bundle}: the {split} split is empty")
    if not set(label_map) <= set(classifier.labels):
        missing = sorted(set(label_map) - set(classifier.labels))
        raise ValueError(f"{classifier.folder}: the model lacks the bundle's labels {missing}")
    probabilities = classifier.probabilities(texts)
    # A label the bundle lacks (one added from a few examples since) is its own class `classes`: always wrong here.
    classes = len(label_map)
    predictions = torch.tensor([label_map.get(p.label, classes) for p in classifier.decide(probabilities)])
    target_tensor = torch.tensor(targets)
    # The model's label order may differ from the bundle's: reorder its columns to the bundle's ids.
    columns = [classifier.labels.index(name) for name in sorted(label_map, key=label_map.__getitem__)]
    probabilities = probabilities[:, columns]
    counted = classes + int(bool((predictions == classes).any()))
    per_class = list(
        zip(
            multiclass_precision(predictions, target_tensor, counted, average=None).tolist()[:classes],
            multiclass_recall(predictions, target_tensor, counted, average=None).tolist()[:classes],
            multiclass_f1_score(predictions, target_tensor, counted, average=None).tolist()[:classes],
            torch.bincount(target_tensor, minlength=classes).tolist(),
            strict=True,
        )
    )
    metrics = classification_metrics(predictions, target_tensor, counted)
    if counted > classes:  # macro averages over the bundle's labels only
        for position, name in enumerate(("precision", "recall", "f1")):
            metrics[f"macro_{name}"] = round(sum(row[position] for row in per_class) / classes, 6)
    names = sorted(label_map, key=label_map.__getitem__)
    return {
        "tasks": task_metrics(classifier, bundle, split),
        "split": split,
        "examples": len(texts),
        "metrics": {
            **metrics,
            "calibration_error": round(expected_calibration_error(probabilities, target_tensor), 6),
            "mean_confidence": round(float(probabilities.max(dim=-1).values.mean()), 6),
        },
        "labels": names,
        # square over the bundle's labels; predictions of labels it lacks are counted in the metrics only
        "confusion_matrix": [row[:classes] for row in confusion_matrix(predictions, target_tensor, counted)[:classes]],
        "calibration_bins": calibration_bins(probabilities, target_tensor),
        "per_class": {
            name: {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": n}
            for name, (p, r, f, n) in zip(names, per_class, strict=True)
        },
    }


def task_metrics(classifier: Classifier, bundle: Path, split: str) -> dict[str, dict[str, float]]:
    """A multi-task model's metrics on each task of a multi-task bundle, over the rows labelled for it; {} else."""
    tasks = read_bundle_manifest(bundle).tasks
    if not tasks or not hasattr(classifier.scorer, "task_probabilities"):
        return {}
    texts, labels = read_task_split(bundle, split, tasks)
    answers = classifier.predict_tasks(texts)
    result = {}
    for index, (task, label_map) in enumerate(tasks.items()):
        rows = [
            (label_map.get(answer[task].label, -1), row[index])
            for answer, row in zip(answers, labels, strict=True)
            if row[index] != -100 and answer[task].label is not None
        ]
        if rows:
            predicted, targets = torch.tensor([p for p, _ in rows]), torch.tensor([t for _, t in rows])
            metrics = classification_metrics(predicted.clamp(min=0), targets, len(label_map))
            result[task] = {"examples": len(rows), "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}
    return result


def calibration_bins(probabilities: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> list[dict[str, float]]:
    """Per confidence bin: its bounds, the examples in it, their mean confidence and their accuracy."""
    confidence, predicted = probabilities.max(dim=-1)
    correct = (predicted == targets).float()
    edges = torch.linspace(0, 1, bins + 1)
    found = []
    for low, high in itertools.pairwise(edges.tolist()):
        inside = (confidence > low) & (confidence <= high)
        count = int(inside.sum())
        found.append(
            {
                "low": round(low, 6),
                "high": round(high, 6),
                "count": count,
                "confidence": float(confidence[inside].mean()) if count else 0.0,
                "accuracy": float(correct[inside].mean()) if count else 0.0,
            }
        )
    return found


def expected_calibration_error(probabilities: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> float:
    """Expected calibration error: the gap between confidence and accuracy, averaged over confidence bins."""
    return bins_calibration_error(calibration_bins(probabilities, targets, bins))


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, classes: int) -> list[list[int]]:
    """Counts: row = true label id, column = predicted label id."""
    flat = torch.bincount(targets * classes + predictions, minlength=classes * classes)
    return flat.reshape(classes, classes).tolist()
