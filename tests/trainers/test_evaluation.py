"""Evaluation measures and the confusion-matrix picture."""

import pytest


def test_calibration_error_and_confusion_matrix_of_known_predictions() -> None:
    import torch

    from trainers.evaluation import confusion_matrix, expected_calibration_error
    from trainers.reports import confusion_png

    probabilities = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    targets = torch.tensor([0, 1, 1, 0])
    assert confusion_matrix(probabilities.argmax(-1), targets, 2) == [[2, 0], [1, 1]]
    # bins: 0.9 (right), 0.8 (wrong), 0.7 (right), 0.6 (right): |0.9-1| + |0.8-0| + |0.7-1| + |0.6-1|, each 1/4
    assert expected_calibration_error(probabilities, targets) == pytest.approx((0.1 + 0.8 + 0.3 + 0.4) / 4)
    assert confusion_png([[2, 0], [1, 1]]).startswith(b"\x89PNG\r\n\x1a\n")
