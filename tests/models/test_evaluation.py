"""The promotion gate."""

from assets.models.evaluation import GateSettings, gate_result


def test_gate_fails_on_a_regression_beyond_the_tolerance_and_force_is_recorded() -> None:
    production = {"accuracy": 0.90, "macro_f1": 0.88}
    within = gate_result({"accuracy": 0.895, "macro_f1": 0.875}, GateSettings(max_regression=0.01), production)
    assert within["passed"] and not within["regressions"]
    worse = gate_result({"accuracy": 0.85, "macro_f1": 0.88}, GateSettings(max_regression=0.01), production)
    assert not worse["passed"] and set(worse["regressions"]) == {"accuracy"}
    forced = gate_result({"accuracy": 0.85, "macro_f1": 0.88}, GateSettings(force=True), production)
    assert forced["passed"] and forced["forced"]
