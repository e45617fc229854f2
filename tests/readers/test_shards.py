"""A drop over the shard size is read by parallel processes, one Delta commit per shard, and nothing is lost."""

from __future__ import annotations

import csv
from pathlib import Path

import deltalake
import polars as pl
import pytest

from assets.readers.drop import DropReader
from assets.readers.shards import ShardedRead, ShardSettings, ingest_version, plan_shards
from assets.storage.delta import Lake

TABLE = "raw_documents"


def write_drop(folder: Path, files: int, rows: int) -> Path:
    """`files` CSVs of `rows` (+10 per file number) tickets each, every file ending in one unterminated field
    (a reject)."""
    folder.mkdir(parents=True)
    for number in range(files):
        with (folder / f"part-{number:02d}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            for row in range(rows + number * 10):
                writer.writerow([f"file {number} ticket {row}: the printer on floor {row % 9} jams", f"l{row % 4}"])
            handle.write('"an unterminated field,l0\n')
    return folder


def lake_rows(lake: Lake, version: str) -> pl.DataFrame:
    return lake.scan(TABLE, [version]).collect().sort("source", "source_row")


def test_files_are_grouped_into_size_balanced_shards_in_drop_order(tmp_path: Path) -> None:
    sizes = {"a": 500, "b": 100, "c": 400, "d": 100, "e": 300}
    paths = []
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
        paths.append(tmp_path / name)
    shards = plan_shards(paths, shard_bytes=500)
    assert [[p.name for p in shard] for shard in shards] == [["a"], ["b", "e"], ["c", "d"]]  # 500, 400, 500
    assert plan_shards(paths, shard_bytes=10_000) == [paths]
    assert len(plan_shards(paths, shard_bytes=1)) == len(paths)  # never more shards than files


def test_a_sharded_read_writes_what_one_process_writes_with_one_commit_per_shard(tmp_path: Path) -> None:
    drop = write_drop(tmp_path / "drop", files=4, rows=300)
    whole, sharded = Lake(str(tmp_path / "whole")), Lake(str(tmp_path / "sharded"))

    one, _ = ingest_version(whole, TABLE, DropReader(drop), "v1", ShardSettings())
    many, _ = ingest_version(sharded, TABLE, DropReader(drop), "v1", ShardSettings(shard_bytes=20_000, workers=2))

    assert isinstance(many, ShardedRead) and many.shards == 4
    assert lake_rows(sharded, "v1").equals(lake_rows(whole, "v1"))
    assert many.rows == one.rows == 4 * 300 + 60
    assert many.records_read == one.records_read == many.rows + 4
    assert many.quarantine().sort("source").equals(one.quarantine().sort("source"))
    assert many.files == one.files
    operations = [entry["operation"] for entry in deltalake.DeltaTable(sharded.uri(TABLE)).history()]
    assert operations.count("WRITE") == 1 + 4  # the clearing commit, then one append per shard


def test_a_rerun_in_shards_replaces_the_partition_and_leaves_other_versions(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    ingest_version(lake, TABLE, DropReader(write_drop(tmp_path / "other", files=1, rows=5)), "v0", ShardSettings())
    ingest_version(lake, TABLE, DropReader(write_drop(tmp_path / "big", files=3, rows=200)), "v1", ShardSettings())
    smaller = write_drop(tmp_path / "smaller", files=2, rows=100)

    result, _ = ingest_version(lake, TABLE, DropReader(smaller), "v1", ShardSettings(shard_bytes=1, workers=2))

    assert lake_rows(lake, "v1").height == result.rows == 2 * 100 + 10
    assert lake_rows(lake, "v0").height == 5


def test_a_failing_shard_leaves_the_partition_the_version_had_before(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    drop = write_drop(tmp_path / "drop", files=3, rows=100)
    ingest_version(lake, TABLE, DropReader(drop), "v1", ShardSettings())
    ingest_version(lake, TABLE, DropReader(write_drop(tmp_path / "other", files=1, rows=7)), "v0", ShardSettings())
    before = lake_rows(lake, "v1")
    reader = DropReader(drop)
    (drop / "part-02.csv").unlink()  # becomes unreadable between the reader's start and its shard's read
    (drop / "part-02.csv").mkdir()

    with pytest.raises(IsADirectoryError, match=r"part-02\.csv"):
        ingest_version(lake, TABLE, reader, "v1", ShardSettings(shard_bytes=1, workers=2))

    assert lake_rows(lake, "v1").equals(before)  # not empty, not half of the new drop
    assert lake_rows(lake, "v0").height == 7


def test_a_failing_first_ingest_in_shards_leaves_the_version_empty(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    drop = write_drop(tmp_path / "drop", files=2, rows=50)
    reader = DropReader(drop)
    (drop / "part-01.csv").unlink()
    (drop / "part-01.csv").mkdir()

    with pytest.raises(IsADirectoryError):
        ingest_version(lake, TABLE, reader, "v1", ShardSettings(shard_bytes=1, workers=1))

    assert lake_rows(lake, "v1").height == 0


def test_shard_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="shard_bytes"):
        ShardSettings(shard_bytes=0)
    assert ShardSettings(workers=8).processes(shards=3) == 3


KILLED_AFTER_FIRST_SHARD = """
import os, signal, sys
from pathlib import Path
from assets.readers import shards
from assets.readers.drop import DropReader
from assets.storage.delta import Lake

committed = shards.read_shard

def read_then_die(*args, **kwargs):
    outcome = committed(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)  # no exception, no finally: the node is gone

shards.read_shard = read_then_die
lake, drop = Lake(sys.argv[1]), Path(sys.argv[2])
shards.ingest_version(lake, "raw_documents", DropReader(drop), "v1", shards.ShardSettings(shard_bytes=1, workers=1))
"""


def test_a_rerun_killed_after_its_first_shard_is_undone_by_the_next_write_of_the_version(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    lake = Lake(str(tmp_path / "lake"))
    drop = write_drop(tmp_path / "drop", files=3, rows=100)
    ingest_version(lake, TABLE, DropReader(drop), "v1", ShardSettings())
    before = lake_rows(lake, "v1")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_FIRST_SHARD, str(tmp_path / "lake"), str(drop)], timeout=120, check=False
    )
    assert killed.returncode == -signal.SIGKILL
    assert 0 < lake_rows(lake, "v1").height < before.height  # one shard of three: what a kill leaves
    reader = DropReader(drop)
    (drop / "part-02.csv").unlink()  # the next re-run fails too, and gives back what the version had
    (drop / "part-02.csv").mkdir()
    with pytest.raises(IsADirectoryError):
        ingest_version(lake, TABLE, reader, "v1", ShardSettings(shard_bytes=1, workers=1))
    assert lake_rows(lake, "v1").equals(before)  # the rows before the killed re-run, not its first shard
