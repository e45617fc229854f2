"""Dagster on PostgreSQL: one setting puts a home's runs, event logs and schedules there, pool limit included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from assets.partitions import TRAINER_POOL
from assets.storage.home import DAGSTER_POSTGRES_PASSWORD, DAGSTER_POSTGRES_URL, RefineryHome, dagster_yaml
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
        environment = {**os.environ, "REFINERY_HOME": str(tmp_path / "home"), DAGSTER_POSTGRES_URL: server.uri,
                       DAGSTER_POSTGRES_PASSWORD: server.password}  # fmt: skip
        environment.pop("DAGSTER_HOME", None)
        for args in (["ingest", str(data), "--version", "v1", "--text-column", "body", "--label-column", "queue"],
                     ["run", "--version", "v1", "--select", "raw_documents"]):  # fmt: skip
            done = subprocess.run([sys.executable, "-m", "dagster_project.cli", *args], env=environment,
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
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
