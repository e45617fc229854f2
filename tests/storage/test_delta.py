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
