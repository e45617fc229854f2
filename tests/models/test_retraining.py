"""Retraining only when there is something new to learn."""

from assets.models.retraining import retraining_version


def test_the_newest_version_is_retrained_when_production_has_not_seen_it() -> None:
    version, reason = retraining_version(["v1", "v2", "feedback-1a2b"], {"dataset_versions": ["v1", "v2"]})
    assert version == "feedback-1a2b" and "newer" in reason


def test_retraining_is_skipped_with_the_reason_when_production_saw_everything() -> None:
    version, reason = retraining_version(["v1", "v2"], {"dataset_versions": ["v1", "v2"]})
    assert version is None and reason.startswith("nothing new") and "'v2'" in reason


def test_without_a_production_model_or_versions() -> None:
    assert retraining_version(["v1"], None)[0] == "v1"
    assert retraining_version([], None) == (None, "no dataset version to retrain on")
