"""Drift measures: PSI, length buckets, out-of-vocabulary shift, confidence and live accuracy."""

import pytest

from assets.models.drift import drift_report, length_bucket, oov_rate, population_stability_index, shares


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_moved_one() -> None:
    assert population_stability_index({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}) == 0.0
    moved = population_stability_index({"a": 0.9, "b": 0.1}, {"a": 0.1, "b": 0.9})
    assert moved == pytest.approx(2 * 0.8 * 2.1972, rel=1e-3)
    assert population_stability_index({"a": 1.0}, {"b": 1.0}) > 10  # disjoint buckets


def test_lengths_fall_in_word_count_buckets_and_oov_counts_unseen_words() -> None:
    assert [length_bucket("one two"), length_bucket("w " * 12), length_bucket("w " * 500)] == ["0-5", "10-20", "320+"]
    assert oov_rate(["printer jam", "printer fire"], {"printer", "jam"}) == 0.25
    assert shares(["a", "a", "b", "c"]) == {"a": 0.5, "b": 0.25, "c": 0.25}


def test_a_report_on_shifted_texts_shows_every_shift() -> None:
    train = [f"my vpn drops every {n} minutes on the office wifi" for n in ("five", "ten", "few")] * 20
    labels = ["network"] * 60
    same = drift_report(train, labels, 0.9, train[:20], ["network"] * 20, [0.9] * 20, [("network", "network")])
    assert same.label_psi == 0 and same.length_psi == 0 and same.oov_shift <= 0 and same.live_accuracy == 1.0
    shifted_texts = ["quarterly revenue forecast spreadsheet " * 30] * 20
    shifted = drift_report(train, labels, 0.9, shifted_texts, ["billing"] * 20, [0.4] * 20, [("billing", "network")])
    assert shifted.label_psi > 1 and shifted.length_psi > 1 and shifted.oov_shift > 0.9
    assert shifted.confidence_drop == pytest.approx(0.5) and shifted.live_accuracy == 0.0
