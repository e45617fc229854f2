"""`python -m benchmarks.sharding [ROWS] [FILES]`: a large drop ingested by one process against the same drop read in
shards by two worker processes, each shard its own Delta commit.

The drop is ROWS generated tickets (default 3,000,000) over FILES CSV files (default 8), every file ending in one
malformed line. Both sides run in fresh processes; accounting is checked exactly on each: rows in the lake plus
rows in quarantine equal the records written, and both lakes hold the same rows.
`peak_rss_mb_per_worker` is the largest peak of one shard process (the parent's own is `parent_peak_rss_mb`).
"""

from __future__ import annotations

import csv
import random
import resource
import sys
import tempfile
from pathlib import Path

import polars as pl

from assets.demo.tickets import generate_tickets
from assets.readers.mapping import MAPPING_FILE
from benchmarks.common import measure_in_subprocess, result_line

MAPPING = "text_column: body\nlabel_column: category\nid_column: ticket_id\n"


def write_drop(folder: Path, rows: int, files: int, seed: int = 5) -> int:
    """ROWS tickets over FILES CSVs, each ending in a line with an unterminated quote; returns the records written."""
    base, _ = generate_tickets(20_000, seed)
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    (folder / MAPPING_FILE).write_text(MAPPING)
    per_file = -(-rows // files)
    for number, start in enumerate(range(0, rows, per_file)):
        with (folder / f"tickets-{number:03d}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["ticket_id", "body", "category", "priority"])
            for i in range(start, min(rows, start + per_file)):
                record = base[i % len(base)]
                writer.writerow([f"T{i}", record["body"], record["category"], rng.choice(["low", "normal", "high"])])
            handle.write(f'T-bad-{number},"an unterminated body,billing,low\n')
    return rows + files


def ingest(drop: str, lake_root: str, shard_bytes: str, workers: str) -> dict[str, float]:
    """One side: the drop through `ingest_version` into a fresh lake; its counts and the lake's."""
    from assets.readers.drop import DropReader
    from assets.readers.shards import ShardedRead, ShardSettings, ingest_version
    from assets.storage.delta import Lake

    lake = Lake(lake_root)
    reader, _ = ingest_version(
        lake, "raw_documents", DropReader(Path(drop)), "big", ShardSettings(int(shard_bytes), int(workers))
    )
    lake.write_version("quarantine", reader.quarantine(), "big")
    return {
        "rows": reader.rows,
        "records_read": reader.records_read,
        "shards": reader.shards if isinstance(reader, ShardedRead) else 1,
        "lake_rows": lake.scan("raw_documents").select(pl.len()).collect().item(),
        "lake_quarantined": lake.scan("quarantine").select(pl.len()).collect().item(),
        "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def same_rows(first: str, second: str) -> bool:
    """Whether two lakes hold the same documents (ignoring order)."""
    from assets.storage.delta import Lake

    columns = ["doc_id", "source", "source_row", "text", "label"]
    frames = [
        Lake(root).scan("raw_documents").select(columns).collect().sort("source", "source_row")
        for root in (first, second)
    ]
    return frames[0].equals(frames[1])


def main(rows: int, files: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        drop = Path(tmp) / "drop"
        written = write_drop(drop, rows, files)
        size = sum(path.stat().st_size for path in drop.glob("*.csv"))
        print(f"drop: {written} records in {files} files, {size / 1e6:.0f} MB")
        one = measure_in_subprocess("benchmarks.sharding", "ingest", str(drop), f"{tmp}/one", str(size + 1), "1")
        print("one process:", one)
        shard_bytes = -(-size // 2)  # two shards of about half the drop each
        two = measure_in_subprocess("benchmarks.sharding", "ingest", str(drop), f"{tmp}/two", str(shard_bytes), "2")
        print("two workers:", two)
        for side in (one, two):
            if not side["records_read"] == side["lake_rows"] + side["lake_quarantined"] == written:
                raise SystemExit(f"accounting is not exact: {side} against {written} records written")
        if not same_rows(f"{tmp}/one", f"{tmp}/two"):
            raise SystemExit("the sharded lake does not hold the same documents as the one-process lake")
        print(
            result_line(
                rows=int(two["rows"]),
                quarantined=int(two["lake_quarantined"]),
                shards=int(two["shards"]),
                one_worker_s=one["seconds"],
                two_workers_s=two["seconds"],
                speedup=one["seconds"] / two["seconds"],
                peak_rss_mb_per_worker=two["children_peak_rss_mb"],
                parent_peak_rss_mb=two["peak_rss_mb"],
                one_worker_peak_rss_mb=one["peak_rss_mb"],
                exact_accounting=True,
            )
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3_000_000, int(sys.argv[2]) if len(sys.argv) > 2 else 8)
