"""The landing sensor: complete drops become versions and one run each, never twice."""

import json
import os
from pathlib import Path

import dagster as dg

from assets.partitions import DATASET_VERSIONS
from assets.resources import LandingResource
from assets.storage.home import RefineryHome
from dagster_project.sensors import landing_sensor


def _tick(instance: dg.DagsterInstance, home: RefineryHome, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing": LandingResource(root=str(home.landing))}
    )
    return landing_sensor(context)


def _drop(home: RefineryHome, name: str, marker: bool) -> Path:
    folder = home.landing / name
    folder.mkdir(parents=True)
    (folder / "tickets.csv").write_text("text,label\nvpn is down,vpn\n")
    if marker:
        (folder / "_SUCCESS").touch()
    return folder


def _add_requested_partitions(instance: dg.DagsterInstance, result: dg.SensorResult) -> None:
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(DATASET_VERSIONS, list(request.partition_keys))


def test_a_drop_with_a_success_marker_becomes_a_version_and_one_run(instance, home) -> None:
    _drop(home, "2026-11-01", marker=True)
    result = _tick(instance, home, None)
    assert [(r.run_key, r.partition_key) for r in result.run_requests] == [("2026-11-01", "2026-11-01")]
    assert [list(r.partition_keys) for r in result.dynamic_partitions_requests] == [["2026-11-01"]]
    _add_requested_partitions(instance, result)
    again = _tick(instance, home, result.cursor)
    assert again.run_requests == [] and again.dynamic_partitions_requests == []


def test_a_drop_without_marker_waits_until_its_files_stop_changing(instance, home) -> None:
    folder = _drop(home, "batch-7", marker=False)
    first = _tick(instance, home, None)
    assert first.run_requests == [] and json.loads(first.cursor)["pending"].keys() == {"batch-7"}
    with (folder / "tickets.csv").open("a") as handle:
        handle.write("printer jammed,printer\n")
    os.utime(folder / "tickets.csv", ns=(1, 1))
    growing = _tick(instance, home, first.cursor)
    assert growing.run_requests == []
    stable = _tick(instance, home, growing.cursor)
    assert [r.partition_key for r in stable.run_requests] == ["batch-7"]


def test_invalid_folder_names_and_known_versions_are_skipped(instance, home) -> None:
    _drop(home, "bad name!", marker=True)
    _drop(home, "known", marker=True)
    instance.add_dynamic_partitions(DATASET_VERSIONS, ["known"])
    result = _tick(instance, home, None)
    assert result.run_requests == []


def test_a_drop_with_the_same_content_as_a_registered_version_is_not_registered(instance, home) -> None:
    _drop(home, "first", marker=True)
    first = _tick(instance, home, None)
    _add_requested_partitions(instance, first)
    _drop(home, "copy-of-first", marker=True)
    second = _tick(instance, home, first.cursor)
    assert second.run_requests == [] and second.dynamic_partitions_requests == []


def test_the_service_monitoring_sensor_fires_once_per_new_batch_of_logged_predictions(tmp_path: Path) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    from assets.resources import LakeResource, ModelRegistryResource
    from dagster_project.sensors import service_monitoring_sensor

    models = tmp_path / "models" / "refinery-intent" / "v1-20261125T101500-0a1b"  # a model version of dataset v1
    models.mkdir(parents=True)
    (models / "model_card.json").write_text('{"lineage": {"dataset_version": "v1"}}')
    (models.parent / "aliases.json").write_text('{"production": "v1-20261125T101500-0a1b"}')
    resources = {
        "lake": LakeResource(root=str(tmp_path / "lake")),
        "registry": ModelRegistryResource(root=str(tmp_path / "models")),
    }

    def tick(cursor: str | None):
        return service_monitoring_sensor(dg.build_sensor_context(cursor=cursor, resources=resources))

    assert isinstance(tick(None), dg.SkipReason)  # nothing logged yet
    rows = pa.table({"prediction_id": ["a"], "text": ["vpn down"], "label": ["network"], "score": [0.9]})
    write_deltalake(str(tmp_path / "lake" / "predictions"), rows)
    request = tick(None)
    assert request.partition_key == "v1" and request.run_key == "service-0"
    assert request.run_config["ops"]["model_monitoring"]["config"]["source"] == "service"
    assert isinstance(tick("0"), dg.SkipReason)  # the same Delta version: no second run
