"""Classification metrics shared by training, evaluation and monitoring."""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)


def classification_metrics(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Accuracy and macro/micro precision, recall and F1 of predicted class ids."""
    metrics = {"accuracy": multiclass_accuracy(predictions, targets, num_classes, average="micro")}
    for average in ("macro", "micro"):
        metrics[f"{average}_precision"] = multiclass_precision(predictions, targets, num_classes, average=average)
        metrics[f"{average}_recall"] = multiclass_recall(predictions, targets, num_classes, average=average)
        metrics[f"{average}_f1"] = multiclass_f1_score(predictions, targets, num_classes, average=average)
    return {name: round(float(value), 6) for name, value in metrics.items()}
