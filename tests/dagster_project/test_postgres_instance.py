"""Dagster on PostgreSQL: one setting puts a home's runs, event logs and schedules there, pool limit included; a
daemon and its run workers process two versions at once there, the landing sensor asking for each exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from assets.demo.tickets import write_demo_declaration, write_demo_drop
from assets.storage.catalog import catalog_entry
from assets.storage.delta import Lake
from assets.storage.home import (
    DAGSTER_POSTGRES_PASSWORD,
    DAGSTER_POSTGRES_URL,
    PROJECT_ROOT,
    RefineryHome,
    dagster_yaml,
)
from contracts.datasets import DATASET_VERSIONS, TRAINER_POOL
from tests.servers import postgres_bin, running_postgres


def test_a_password_in_the_postgres_url_is_refused_naming_the_variable_to_use() -> None:
    with pytest.raises(ValueError, match=DAGSTER_POSTGRES_PASSWORD):
        dagster_yaml("postgresql://refinery:secret@127.0.0.1:5432/dagster")


def test_a_hand_written_dagster_yaml_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = RefineryHome(tmp_path)
    (tmp_path / "dagster").mkdir(parents=True)
    (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    monkeypatch.setenv(DAGSTER_POSTGRES_URL, "postgresql://refinery@127.0.0.1:5432/dagster")
    home.ensure()
    assert (tmp_path / "dagster" / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"


def test_a_home_on_postgres_stays_there_when_a_later_command_lacks_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DAGSTER_POSTGRES_URL, "postgresql://refinery@db.internal:5432/dagster?sslmode=require")
    home = RefineryHome(tmp_path).ensure()
    written = (tmp_path / "dagster" / "dagster.yaml").read_text()
    assert "sslmode: require" in written and "postgresql+psycopg2" in written
    monkeypatch.delenv(DAGSTER_POSTGRES_URL)
    home.ensure()  # a shell without the variable must not move a shared home's runs back to SQLite
    assert (tmp_path / "dagster" / "dagster.yaml").read_text() == written


@pytest.mark.slow
def test_a_home_on_postgres_keeps_its_runs_partitions_and_trainer_pool_there(tmp_path: Path) -> None:
    if postgres_bin() is None and not os.environ.get("CI"):
        pytest.skip("PostgreSQL server binaries not installed here (.ci/run installs them)")
    data = tmp_path / "export.csv"
    data.write_text("body,queue\nmy vpn keeps dropping at home,vpn_access\nthe printer on floor 3 jams,printer\n")
    with running_postgres() as server:
        environment = {
            **os.environ,
            "REFINERY_HOME": str(tmp_path / "home"),
            DAGSTER_POSTGRES_URL: server.uri,
            DAGSTER_POSTGRES_PASSWORD: server.password,
        }
        environment.pop("DAGSTER_HOME", None)
        for args in (
            ["ingest", str(data), "--version", "v1", "--text-column", "body", "--label-column", "queue"],
            ["run", "--version", "v1", "--select", "raw_documents"],
        ):
            done = subprocess.run(
                [sys.executable, "-m", "dagster_project.cli", *args],
                env=environment,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, done.stderr[-3000:]
        config = (tmp_path / "home" / "dagster" / "dagster.yaml").read_text()
        assert "postgres_db:" in config and server.password not in config
        os.environ[DAGSTER_POSTGRES_PASSWORD] = server.password
        try:
            instance = dg.DagsterInstance.from_config(str(tmp_path / "home" / "dagster"))
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert instance.get_dynamic_partitions("dataset_versions") == ["v1"]
            (run,) = instance.get_runs()
            assert run.is_success and run.tags["dagster/partition"] == "v1"
            assert instance.event_log_storage.get_concurrency_info(TRAINER_POOL).slot_count == 1
            instance.dispose()
        finally:
            del os.environ[DAGSTER_POSTGRES_PASSWORD]


def wait_for(condition: Callable[[], object], timeout: float, what: str, log: Path) -> object:
    """Poll `condition` until it returns something truthy; fail naming `what` with the daemon's log tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(1.0)
    raise AssertionError(f"no {what} within {timeout:.0f} s; daemon log:\n{log.read_text()[-4000:]}")


def write_workspace(path: Path) -> Path:
    """A workspace loading the data-stages code location from this checkout."""
    location = {"module_name": "tests.dagster_project.prepare_location", "working_directory": str(PROJECT_ROOT)}
    path.write_text(yaml.safe_dump({"load_from": [{"python_module": location}]}))
    return path


@contextmanager
def running_daemon(workspace: Path, log: Path) -> Iterator[None]:
    """`dagster-daemon run` in its own process group, with the landing sensor started; stopped (killed if it
    lingers) after."""
    bin_dir = Path(sys.executable).parent
    with log.open("w") as output:
        daemon = subprocess.Popen(
            [bin_dir / "dagster-daemon", "run", "-w", workspace],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        started = subprocess.run(
            [bin_dir / "dagster", "sensor", "start", "landing_sensor", "-w", workspace],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert started.returncode == 0, started.stderr[-3000:]
        yield
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()


def two_finished_runs(instance: dg.DagsterInstance, log: Path) -> list[dg.RunRecord]:
    def finished() -> list[dg.RunRecord]:
        records = instance.get_run_records()
        return records if len(records) == 2 and all(r.dagster_run.is_finished for r in records) else []

    return wait_for(finished, 600, "two finished runs", log)


def sensor_ticks_after(instance: dg.DagsterInstance, moment: float, log: Path) -> list:
    """The landing sensor's ticks, once one has run after `moment`."""
    (state,) = [s for s in instance.all_instigator_state() if s.instigator_name == "landing_sensor"]

    def ticks() -> list:
        found = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=100)
        later = [t for t in found if t.timestamp > moment and t.status.value in ("SKIPPED", "SUCCESS")]
        return found if later else []

    return wait_for(ticks, 120, "a sensor tick after the runs", log)


def check_version_counts(lake: Lake, version: str) -> None:
    """records read = raw + quarantined at ingest = training examples + quarantine, for one version."""
    entry = catalog_entry(lake, version)
    examples = lake.scan("training_examples", [version]).select(pl.len()).collect().item()
    quarantined = lake.scan("quarantine", [version]).select(pl.len()).collect().item()
    raw = lake.scan("raw_documents", [version]).select(pl.len()).collect().item()
    assert entry["records_read"] == raw + entry["quarantined_at_ingest"] == examples + quarantined
    assert examples > 250


@pytest.mark.slow
def test_two_versions_run_at_once_on_postgres_through_the_daemon_and_its_run_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if postgres_bin() is None and not os.environ.get("CI"):
        pytest.skip("PostgreSQL server binaries not installed here (.ci/run installs them)")
    home, log = RefineryHome(tmp_path / "home"), tmp_path / "daemon.log"
    with running_postgres() as server:
        for name, value in {
            "REFINERY_HOME": str(home.root),
            "DAGSTER_HOME": str(home.dagster),
            DAGSTER_POSTGRES_URL: server.uri,
            DAGSTER_POSTGRES_PASSWORD: server.password,
        }.items():
            monkeypatch.setenv(name, value)
        home.ensure()
        write_demo_declaration(home.datasets)
        instance = dg.DagsterInstance.get()
        with running_daemon(write_workspace(tmp_path / "workspace.yaml"), log):
            for version, seed in (("v1", 1), ("v2", 2)):
                write_demo_drop(home.landing / version, rows=400, seed=seed)
                (home.landing / version / "_SUCCESS").touch()
            records = two_finished_runs(instance, log)
            ticks = sensor_ticks_after(instance, max(r.end_time for r in records), log)
        assert all(record.dagster_run.is_success for record in records), log.read_text()[-4000:]
        assert sorted(r.dagster_run.tags["dagster/partition"] for r in records) == ["v1", "v2"]
        first, second = sorted(records, key=lambda r: r.start_time)
        assert second.start_time < first.end_time  # the two run workers overlapped
        requested = [key for tick in ticks for key in tick.run_keys]
        assert sorted(requested) == ["v1", "v2"]  # exactly once: no tick asked for a version again
        assert len(instance.get_run_records()) == 2
        state = next(s for s in instance.all_instigator_state() if s.instigator_name == "landing_sensor")
        assert json.loads(state.instigator_data.cursor) == {"pending": {}}
        assert sorted(instance.get_dynamic_partitions(DATASET_VERSIONS)) == ["v1", "v2"]
        instance.dispose()
    for version in ("v1", "v2"):
        check_version_counts(Lake(str(home.lake)), version)
