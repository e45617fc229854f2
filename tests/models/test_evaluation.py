"""The promotion gate."""

from trainers.gates import GateSettings, gate_result


def test_gate_fails_on_a_regression_beyond_the_tolerance_and_force_is_recorded() -> None:
    production = {"accuracy": 0.90, "macro_f1": 0.88}
    within = gate_result({"accuracy": 0.895, "macro_f1": 0.875}, GateSettings(max_regression=0.01), production)
    assert within["passed"] and not within["regressions"]
    worse = gate_result({"accuracy": 0.85, "macro_f1": 0.88}, GateSettings(max_regression=0.01), production)
    assert not worse["passed"] and set(worse["regressions"]) == {"accuracy"}
    forced = gate_result({"accuracy": 0.85, "macro_f1": 0.88}, GateSettings(force=True), production)
    assert forced["passed"] and forced["forced"]


def generated(rouge_l: float, base_rouge_l: float) -> dict:
    gain = round(rouge_l - base_rouge_l, 6)
    return {"metrics": {"rouge_l": rouge_l, "perplexity": 3.0, "base_rouge_l": base_rouge_l, "gain_over_base": gain}}


def test_a_fine_tune_that_does_not_beat_its_base_is_refused_and_one_that_does_passes() -> None:
    from trainers.gates import GateSettings, generator_gate

    settings = GateSettings(min_rouge_l=0.2)
    same = generator_gate(generated(0.9, 0.9), settings, None)  # a base already perfect on the prompts
    assert not same["passed"] and same["shortfalls"]["gain_over_base"]["base_rouge_l"] == 0.9
    better = generator_gate(generated(0.6, 0.3), settings, None)
    assert better["passed"] and better["minimums"]["gain_over_base"] == 0.0
    demanding = generator_gate(generated(0.6, 0.55), GateSettings(min_gain_over_base=0.1), None)
    assert not demanding["passed"] and "gain_over_base" in demanding["shortfalls"]
    assert generator_gate(generated(0.6, 0.6), GateSettings(min_gain_over_base=-1), None)["passed"]
    forced = generator_gate(generated(0.6, 0.6), GateSettings(force=True), None)
    assert forced["passed"] and forced["forced"]


def test_a_base_that_could_not_be_measured_is_said_so_in_the_gate() -> None:
    from trainers.gates import GateSettings, generator_gate

    report = {"metrics": {"rouge_l": 0.5, "perplexity": 3.0}, "base": {"not_measured": "base model x does not load"}}
    verdict = generator_gate(report, GateSettings(), None)
    assert verdict["passed"] and verdict["base_not_measured"] == "base model x does not load"
