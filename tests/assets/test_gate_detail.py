"""The gate's verdict in one line that names each metric that fell short or regressed, as `refinery run` prints it."""

from __future__ import annotations

from assets.evaluation import gate_detail


def test_a_refused_model_names_each_shortfall_and_regression_with_its_figures() -> None:
    gate = {
        "passed": False,
        "forced": False,
        "shortfalls": {"preference_accuracy": {"observed": 0.5, "minimum": 0.6}},
        "regressions": {"sft_rouge_l": {"observed": 0.2176, "production": 0.5083, "tolerance": 0.01}},
    }
    assert gate_detail(gate) == (
        "preference_accuracy 0.5 is not above the minimum 0.6; "
        "sft_rouge_l 0.2176 against production's 0.5083 (tolerance 0.01)"
    )


def test_a_passed_gate_says_so_and_whether_it_was_forced() -> None:
    assert gate_detail({"passed": True, "forced": False, "shortfalls": {}, "regressions": {}}) == "passed"
    assert gate_detail({"passed": True, "forced": True, "shortfalls": {"macro_f1": {}}}) == "passed (forced)"
