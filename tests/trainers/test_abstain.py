"""The abstain label: a confidence threshold fitted on val that costs in-scope accuracy at most its budget."""

import pytest
import torch

from trainers.abstain import apply_abstain, fit_abstain_threshold

# Rows: (probabilities over labels 0, 1 and the abstain label 2), target.
ROWS = [
    ([0.90, 0.05, 0.05], 0),
    ([0.80, 0.10, 0.10], 0),
    ([0.30, 0.60, 0.10], 1),  # correct, low confidence
    ([0.45, 0.40, 0.15], 0),  # correct, lowest confidence
    ([0.70, 0.20, 0.10], 1),  # wrong
    ([0.50, 0.30, 0.20], 2),  # out of scope, confidently misread as 0
    ([0.35, 0.34, 0.31], 2),  # out of scope, unsure
]
PROBABILITIES = torch.tensor([p for p, _ in ROWS])
TARGETS = torch.tensor([t for _, t in ROWS])


def in_scope_accuracy(predicted: torch.Tensor) -> float:
    in_scope = TARGETS != 2
    return float((predicted[in_scope] == TARGETS[in_scope]).float().mean())


def test_a_zero_budget_threshold_abstains_without_losing_an_in_scope_answer() -> None:
    threshold = fit_abstain_threshold(PROBABILITIES, TARGETS, abstain_id=2, budget=0.0)
    predicted = apply_abstain(PROBABILITIES, 2, threshold)
    assert threshold == pytest.approx(0.45)
    assert in_scope_accuracy(predicted) == in_scope_accuracy(PROBABILITIES.argmax(-1))
    assert predicted[6] == 2 and predicted[5] == 0


def test_the_budget_buys_more_abstentions_at_the_cost_it_names() -> None:
    threshold = fit_abstain_threshold(PROBABILITIES, TARGETS, abstain_id=2, budget=0.2)  # 1 of 5 in-scope rows
    predicted = apply_abstain(PROBABILITIES, 2, threshold)
    assert threshold == pytest.approx(0.60)
    assert in_scope_accuracy(PROBABILITIES.argmax(-1)) - in_scope_accuracy(predicted) == pytest.approx(0.2)
    assert predicted[5] == 2 and predicted[6] == 2


def test_a_budget_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="abstain budget"):
        fit_abstain_threshold(PROBABILITIES, TARGETS, abstain_id=2, budget=1.5)
