"""raw_documents refuses a partition key that is not a dataset version name, whoever added it."""

import dagster as dg
import pytest

from assets.partitions import DATASET_VERSIONS
from assets.storage.home import RefineryHome
from dagster_project.definitions import build_definitions


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
