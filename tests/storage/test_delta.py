"""The lake: one partition per version, replaced atomically on re-run."""

from pathlib import Path

import deltalake
import polars as pl
import pytest

from assets.storage.delta import scan_versions, write_version


def test_rerun_of_a_version_replaces_its_partition_and_leaves_others(tmp_path: Path) -> None:
    uri = str(tmp_path / "docs")
    write_version(uri, pl.DataFrame({"text": ["a", "b"]}), "v1")
    write_version(uri, pl.DataFrame({"text": ["c"]}), "v2")
    version = write_version(uri, pl.DataFrame({"text": ["a2"]}), "v1")
    rows = scan_versions(uri).sort("dataset_version", "text").collect().rows()
    assert rows == [("a2", "v1"), ("c", "v2")]
    assert version == deltalake.DeltaTable(uri).version() == 2
    assert deltalake.DeltaTable(uri).metadata().partition_columns == ["dataset_version"]


def test_scoped_write_replaces_only_its_stage_and_an_empty_write_clears_it(tmp_path: Path) -> None:
    uri = str(tmp_path / "quarantine")
    write_version(uri, pl.DataFrame({"stage": ["ingest"], "rule": ["r1"]}), "v1", {"stage": "ingest"})
    write_version(uri, pl.DataFrame({"stage": ["clean", "clean"], "rule": ["r2", "r3"]}), "v1", {"stage": "clean"})
    write_version(uri, pl.DataFrame(schema={"stage": pl.String, "rule": pl.String}), "v1", {"stage": "clean"})
    assert scan_versions(uri, ["v1"]).collect()["rule"].to_list() == ["r1"]


def test_scoped_write_refuses_rows_outside_its_scope(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="stage='clean'"):
        write_version(str(tmp_path / "q"), pl.DataFrame({"stage": ["ingest"]}), "v1", {"stage": "clean"})


def test_version_names_are_validated_before_reaching_a_predicate(tmp_path: Path) -> None:
    write_version(str(tmp_path / "t"), pl.DataFrame({"x": [1]}), "v1")
    with pytest.raises(ValueError, match="invalid dataset version"):
        write_version(str(tmp_path / "t"), pl.DataFrame({"x": [1]}), "v1' OR '1'='1")


def _write_after(lake_root: str, barrier, rows: int) -> None:
    from assets.storage.delta import Lake

    barrier.wait()
    Lake(lake_root).write_version("raw_documents", pl.DataFrame({"text": [f"t{i}" for i in range(rows)]}), "v1")


def test_two_runs_writing_the_same_version_at_once_leave_it_once(tmp_path: Path) -> None:
    import multiprocessing

    from assets.storage.delta import Lake

    context = multiprocessing.get_context("spawn")  # polars and deltalake threads do not survive a fork
    barrier = context.Barrier(3)
    writers = [context.Process(target=_write_after, args=(str(tmp_path), barrier, 1000)) for _ in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
    assert [writer.exitcode for writer in writers] == [0, 0, 0]
    rows = Lake(str(tmp_path)).scan("raw_documents", ["v1"]).collect()
    assert rows.height == 1000 and rows["text"].n_unique() == 1000


def test_maintenance_compacts_and_vacuums_and_keeps_every_live_row(tmp_path: Path) -> None:
    from assets.storage.delta import Lake
    from assets.storage.maintenance import lake_tables, maintain_table

    lake = Lake(str(tmp_path))
    for attempt in range(6):  # re-runs of the same versions leave replaced files behind
        for version in ("v1", "v2"):
            rows = [f"{version}-{attempt}-{i}" for i in range(200)]
            lake.write_version("docs", pl.DataFrame({"text": rows}), version)
    files_before = len(list((tmp_path / "docs").rglob("*.parquet")))
    assert lake_tables(lake) == ["docs"]
    done = maintain_table(lake, "docs", retention_hours=0)
    assert done.files_vacuumed >= 10 and done.bytes_after < done.bytes_before
    assert len(list((tmp_path / "docs").rglob("*.parquet"))) < files_before
    rows = lake.scan("docs").sort("text").collect()
    assert rows.height == 400 and set(rows["text"].str.slice(0, 4)) == {"v1-5", "v2-5"}


def test_maintenance_keeps_a_week_of_history_by_default(tmp_path: Path) -> None:
    from assets.storage.delta import Lake
    from assets.storage.maintenance import maintain_table

    lake = Lake(str(tmp_path))
    for attempt in range(3):
        lake.write_version("docs", pl.DataFrame({"text": [f"a{attempt}"]}), "v1")
    assert maintain_table(lake, "docs").files_vacuumed == 0  # the replaced files are younger than a week


def test_a_new_home_queues_runs_one_per_dataset_version(tmp_path: Path) -> None:
    import dagster as dg

    from assets.storage.home import RefineryHome

    home = RefineryHome(tmp_path / "home").ensure()
    instance = dg.DagsterInstance.from_config(str(home.dagster))
    try:
        limits = instance.run_coordinator.get_run_queue_config().tag_concurrency_limits
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert limits == [{"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    finally:
        instance.dispose()
