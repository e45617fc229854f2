"""raw_documents refuses a partition key that is not a dataset version name, whoever added it, and reads a large
drop in shards."""

import dagster as dg
import pytest

from assets.demo.tickets import write_demo_declaration, write_demo_drop
from assets.partitions import DATASET_VERSIONS
from assets.storage.delta import Lake
from assets.storage.home import RefineryHome
from dagster_project.definitions import build_definitions
from dagster_project.versions import register_drop


@pytest.mark.parametrize("key", ["../../outside", "v1\n", ".hidden"])
def test_a_partition_key_added_by_hand_that_is_not_a_version_name_fails_clearly(
    home: RefineryHome, instance: dg.DagsterInstance, key: str
) -> None:
    outside = home.root / "outside"
    outside.mkdir()
    (outside / "secrets.csv").write_text("text,label\nroot password is hunter2,vpn_access\n")
    instance.add_dynamic_partitions(DATASET_VERSIONS, [key])  # as the UI's "Add a partition" does, unchecked
    job = (
        build_definitions(home)
        .resolve_implicit_global_asset_job_def()
        .get_subset(asset_selection={dg.AssetKey("raw_documents")})
    )
    result = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "invalid dataset version" in failure.event_specific_data.error.message
    assert not (home.lake / "raw_documents").exists()


def test_a_drop_over_the_shard_size_is_ingested_in_shards_with_the_same_rows_and_counts(
    home: RefineryHome, instance: dg.DagsterInstance
) -> None:
    write_demo_declaration(home.datasets)
    write_demo_drop(home.root / "incoming", rows=400, seed=3)  # a CSV and an NDJSON file: two shards
    register_drop(instance, home, home.root / "incoming", "v1")
    job = (
        build_definitions(home)
        .resolve_implicit_global_asset_job_def()
        .get_subset(asset_selection={dg.AssetKey("raw_documents")})
    )
    lake = Lake(str(home.lake))
    metadata, rows, quarantined = [], [], []
    for config in ({}, {"shard_bytes": 1, "workers": 2}):  # the re-run in shards replaces the partition
        run_config = {"ops": {"raw_documents": {"config": config}}}
        result = job.execute_in_process(partition_key="v1", instance=instance, run_config=run_config)
        metadata.append(result.asset_materializations_for_node("raw_documents")[0].metadata)
        rows.append(lake.scan("raw_documents", ["v1"]).collect().sort("source", "source_row"))
        quarantined.append(lake.scan("quarantine", ["v1"]).collect().height)

    assert [m["shards"].value for m in metadata] == [1, 2]
    for key in ("records_read", "quarantined", "dagster/row_count", "files"):
        assert metadata[0][key] == metadata[1][key]
    assert rows[0].equals(rows[1])
    assert quarantined[0] == quarantined[1] == metadata[0]["quarantined"].value > 0
