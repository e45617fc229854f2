"""Where experiment tracking goes, and what a run's link shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainers.tracking import OFF, TRACKING_URI, local_store, run_link, tracked_run, tracking_environment


def test_a_home_tracks_into_its_own_store_unless_the_setting_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TRACKING_URI, raising=False)
    assert tracking_environment(tmp_path, "tickets")[TRACKING_URI] == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    monkeypatch.setenv(TRACKING_URI, "http://127.0.0.1:5000")
    assert tracking_environment(tmp_path, "tickets") == {
        TRACKING_URI: "http://127.0.0.1:5000",
        "REFINERY_MLFLOW_EXPERIMENT": "tickets",
    }
    monkeypatch.setenv(TRACKING_URI, "off")
    assert tracking_environment(tmp_path, "tickets") == {TRACKING_URI: OFF}
    with tracked_run("m1", {"learning_rate": 1e-3}) as tracking:
        assert tracking is None


def test_a_run_link_names_the_server_without_its_credentials() -> None:
    link = run_link("https://alice:secret@mlflow.internal:8443/base/", "3", "abc")
    assert link == "https://mlflow.internal:8443/base/#/experiments/3/runs/abc"
    assert run_link(local_store(Path("/srv/home")), "3", "abc") is None


def test_a_failed_fine_tune_leaves_its_run_failed_with_its_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    uri = local_store(tmp_path)
    (tmp_path / "mlflow").mkdir()
    monkeypatch.setenv(TRACKING_URI, uri)
    with (
        pytest.raises(RuntimeError, match="out of memory"),
        tracked_run("m1", {"batch_size": 64, "tags": ["a"]}) as run,
    ):
        raise RuntimeError("out of memory")
    finished = MlflowClient(tracking_uri=uri).get_run(run.run_id)
    assert finished.info.status == "FAILED" and finished.data.params == {"batch_size": "64", "tags": '["a"]'}
