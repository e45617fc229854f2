"""Hyperparameter search: a trial budget in an RDB study, pruning per epoch, and a resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import build_tiny_model, write_small_bundle
from trainers.search import SearchSettings, finished_trials, open_study, run_search, trials_table
from trainers.train import Reporter

SPACE = {"learning_rate": {"low": 1e-4, "high": 3e-3, "log": True}, "label_smoothing": {"low": 0.0, "high": 0.2}}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("search")
    source = build_tiny_model(root / "bert", "bert")
    base = {"model_name_or_path": str(source), "max_epochs": 2, "batch_size": 8, "max_length": 32}
    return write_small_bundle(root / "bundle"), base


def test_a_search_runs_its_trial_budget_and_records_each_trial(setup, tmp_path: Path) -> None:
    bundle, base = setup
    settings = SearchSettings(f"sqlite:///{tmp_path / 'study.db'}", "tiny", trials=3)
    study = run_search(bundle, base, SPACE, settings, Reporter())
    assert finished_trials(study) == 3
    rows = trials_table(study)
    assert [row["number"] for row in rows] == [0, 1, 2]
    assert all(
        0 <= row["val_macro_f1"] <= 1 and 1e-4 <= row["learning_rate"] <= 3e-3
        for row in rows
        if row["state"] == "COMPLETE"
    )
    again = run_search(bundle, base, SPACE, settings, Reporter())  # the budget is spent: nothing more runs
    assert len(again.get_trials()) == 3


def test_an_unknown_setting_in_the_space_is_refused_before_any_trial(setup, tmp_path: Path) -> None:
    bundle, base = setup
    settings = SearchSettings(f"sqlite:///{tmp_path / 'study.db'}", "bad", trials=1)
    with pytest.raises(ValueError, match="search space: 'learning_rte' is not a training setting"):
        run_search(bundle, base, {"learning_rte": {"low": 1e-4, "high": 1e-3}}, settings, Reporter())
    with pytest.raises(ValueError, match=r"'learning_rate' needs \{low, high"):
        run_search(bundle, base, {"learning_rate": {"low": 1e-4}}, settings, Reporter())
    assert not (tmp_path / "study.db").exists()


def test_a_search_killed_mid_trial_resumes_to_the_same_number_of_finished_trials(setup, tmp_path: Path) -> None:
    bundle, base = setup
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    command = [
        sys.executable,
        "-m",
        "trainers.search",
        "--bundle",
        str(bundle),
        "--storage",
        storage,
        "--study",
        "killed",
        "--trials",
        "3",
        "--heartbeat",
        "1",
        "--space",
        json.dumps(SPACE),
        "--base",
        json.dumps(base),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    study = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        try:
            study = open_study(SearchSettings(storage, "killed", heartbeat_s=1))
        except Exception:
            continue
        states = [t.state.name for t in study.get_trials(deepcopy=False)]
        if states.count("COMPLETE") + states.count("PRUNED") >= 1 and "RUNNING" in states:
            os.killpg(process.pid, signal.SIGKILL)  # mid-trial: one finished, the next one running
            break
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the search ended before it could be killed mid-trial"
    time.sleep(3)  # past the heartbeat's grace period: the killed trial is stale
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["finished"] == 3
    states = [t.state.name for t in open_study(SearchSettings(storage, "killed", heartbeat_s=1)).get_trials()]
    assert states.count("FAIL") == 1 and sum(s in ("COMPLETE", "PRUNED") for s in states) == 3
