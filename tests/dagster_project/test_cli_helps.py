"""The CLI around its commands: unknown datasets named with the known ones, --home, output piped to head, and
`refinery ui` stopping everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assets.storage.home import RefineryHome
from dagster_project.cli import main

CHILD = """
import subprocess, sys, time
grandchild = subprocess.Popen(["sleep", "300"])
open(sys.argv[1], "w").write(f"{grandchild.pid}\\n")
time.sleep(300)
"""
PARENT = """
import sys
from dagster_project.cli.tools import run_in_own_group
sys.exit(run_in_own_group([sys.executable, "-c", sys.argv[1], sys.argv[2]]))
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("command", ["status", "models", "predict"])
def test_an_unknown_dataset_exits_non_zero_naming_the_known_ones_and_the_closest(
    home: RefineryHome, command: str, capsys
) -> None:
    (home.datasets / "tickets.yaml").write_text("name: tickets\n")
    (home.datasets / "answers.yaml").write_text("name: answers\n")
    arguments = [command, "--dataset", "tickts"] + (["a text"] if command == "predict" else [])
    assert main(arguments) == 1
    error = capsys.readouterr().err
    assert "no dataset 'tickts' in this home (known: answers, tickets); did you mean 'tickets'?" in error


def test_home_names_the_home_for_the_command_and_what_it_starts(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("REFINERY_HOME", raising=False)
    assert main(["--home", str(tmp_path / "elsewhere"), "status"]) == 0
    assert f"no dataset versions yet in {tmp_path / 'elsewhere'}" in capsys.readouterr().out
    assert os.environ["REFINERY_HOME"] == str(tmp_path / "elsewhere")


def test_output_piped_to_head_ends_quietly(tmp_path: Path) -> None:
    environment = {**os.environ, "REFINERY_HOME": str(tmp_path / "home")}
    command = f"{sys.executable} -m dagster_project.cli rules check --json | head -c 10"
    piped = subprocess.run(command, shell=True, capture_output=True, text=True, env=environment, timeout=120)
    assert piped.stdout.startswith("{") and "BrokenPipeError" not in piped.stderr and "Traceback" not in piped.stderr


def test_sigterm_to_the_launcher_stops_the_process_group_it_started(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    launcher = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, str(pids)])
    deadline = time.monotonic() + 60
    while not (pids.exists() and pids.read_text().endswith("\n")) and time.monotonic() < deadline:
        time.sleep(0.1)
    grandchild = int(pids.read_text())
    assert _alive(grandchild)
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=60) != 0
    deadline = time.monotonic() + 30
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild)


def test_a_flat_run_file_is_nested_for_dagster_and_a_mistyped_setting_is_refused_with_the_closest(
    home: RefineryHome, tmp_path: Path, capsys
) -> None:
    from dagster_project.cli.pipeline import dagster_run_config

    flat = {"fine_tuned_model": {"max_epochs": 2}, "ops": {"model_evaluation": {"config": {"force": True}}}}
    assert dagster_run_config(flat) == {
        "ops": {"model_evaluation": {"config": {"force": True}}, "fine_tuned_model": {"config": {"max_epochs": 2}}}
    }
    drop = tmp_path / "tickets.csv"
    drop.write_text("text,label\n" + "".join(f"printer {i} jams again,hardware\n" for i in range(20)))
    assert main(["ingest", str(drop), "--dataset-version", "v1"]) == 0
    for written, expected in [
        (
            "fine_tuned_model:\n  max_epoch: 2\n",
            "fine_tuned_model has no setting 'max_epoch'; did you mean 'max_epochs'?",
        ),
        ("fine_tune_model:\n  max_epochs: 2\n", "no asset 'fine_tune_model'; did you mean 'fine_tuned_model'?"),
    ]:
        run_file = tmp_path / "run.yaml"
        run_file.write_text(written)
        capsys.readouterr()
        assert main(["run", "--dataset-version", "v1", "--config-file", str(run_file)]) == 1
        assert expected in capsys.readouterr().err
    assert not list(home.models.iterdir())  # refused before anything ran


def test_a_run_config_that_is_no_mapping_or_sets_an_asset_without_settings_is_refused_by_name() -> None:
    from dagster_project.cli import CliError
    from dagster_project.cli.pipeline import check_run_config, dagster_run_config
    from dagster_project.definitions import defs

    with pytest.raises(CliError, match="a mapping of asset names"):
        dagster_run_config(["fine_tuned_model"])
    with pytest.raises(CliError, match="deployed_model has no setting 'force'"):
        check_run_config(dagster_run_config({"deployed_model": {"force": True}}), defs)
    with pytest.raises(CliError, match="section must be a mapping"):
        check_run_config({"ops": {"fine_tuned_model": 2}}, defs)
