"""The CLI reads the registered versions from the home's SQLite index as Dagster itself would, or asks Dagster."""

from __future__ import annotations

import subprocess
import sys

import pytest

from assets.storage.home import DAGSTER_POSTGRES_URL, RefineryHome
from contracts.datasets import DATASET_VERSIONS
from dagster_project.cli.common import indexed_versions, open_instance, registered_versions


def test_the_index_holds_the_versions_in_the_order_and_with_the_removals_dagster_reports(
    home: RefineryHome,
) -> None:
    instance = open_instance(home)
    instance.add_dynamic_partitions(DATASET_VERSIONS, ["v-b", "v-a", "v-c"])
    instance.delete_dynamic_partition(DATASET_VERSIONS, "v-a")
    instance.add_dynamic_partitions(DATASET_VERSIONS, ["v-a"])
    assert indexed_versions(home) == list(instance.get_dynamic_partitions(DATASET_VERSIONS)) == ["v-b", "v-c", "v-a"]
    assert registered_versions(home) == ["v-b", "v-c", "v-a"]


def test_a_home_whose_storage_is_not_refinerys_sqlite_is_asked_through_dagster(
    home: RefineryHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert indexed_versions(home) is None  # no instance yet: Dagster creates it
    open_instance(home).add_dynamic_partitions(DATASET_VERSIONS, ["v1"])
    assert indexed_versions(home) == ["v1"]
    monkeypatch.setenv(DAGSTER_POSTGRES_URL, "postgresql://refinery@127.0.0.1:5432/dagster")
    assert indexed_versions(home) is None
    monkeypatch.delenv(DAGSTER_POSTGRES_URL)
    config = home.dagster / "dagster.yaml"
    config.write_text(config.read_text() + "# tuned by hand\n")
    assert indexed_versions(home) is None
    assert registered_versions(home) == ["v1"]


def test_status_reads_the_versions_without_loading_dagster(home: RefineryHome) -> None:
    open_instance(home).add_dynamic_partitions(DATASET_VERSIONS, ["v1"])
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from assets.storage.home import RefineryHome\n"
        "from dagster_project.cli.common import registered_versions\n"
        f"print(registered_versions(RefineryHome(Path({str(home.root)!r}))), 'dagster' in sys.modules)"
    )
    answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert answer.split() == ["['v1']", "False"]
