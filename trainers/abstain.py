"""An abstain label (out of scope, "other"): answered when the model's confidence is below a threshold.

The threshold is fitted on the validation split: the highest one that costs the in-scope examples at
most `budget` of their accuracy. Raising it only ever turns answers into abstentions, so the in-scope
rows lost are exactly the correct ones whose confidence falls below it.
"""

from __future__ import annotations

import torch


def fit_abstain_threshold(probabilities: torch.Tensor, targets: torch.Tensor, abstain_id: int, budget: float) -> float:
    """The highest confidence threshold whose in-scope accuracy loss on these rows is at most `budget`."""
    if not 0.0 <= budget < 1.0:
        raise ValueError(f"abstain budget must be in [0, 1), not {budget}")
    confidence, predicted = probabilities.max(dim=-1)
    in_scope = targets != abstain_id
    if not bool(in_scope.any()):
        raise ValueError("no in-scope rows to fit the abstain threshold on")
    kept = torch.sort(confidence[in_scope & (predicted == targets)]).values
    if kept.numel() == 0:
        return 0.0
    allowed = int(budget * int(in_scope.sum()))
    return float(kept[min(allowed, kept.numel() - 1)])


def apply_abstain(probabilities: torch.Tensor, abstain_id: int, threshold: float) -> torch.Tensor:
    """Predicted ids: the most probable label, or the abstain label where confidence is below the threshold."""
    confidence, predicted = probabilities.max(dim=-1)
    return torch.where(confidence < threshold, torch.full_like(predicted, abstain_id), predicted)
