"""`python -m benchmarks.ingestion [ROWS]`: Refinery's ingestion path against Polars' native reader and against
pandas, on a generated CSV.

All sides read the same clean CSV of realistic tickets, give every record a content-hash id and the source
row, and write a partitioned Delta table; each runs in its own process so peak memory is its own.
`ratio_to_polars` is Polars' time over Refinery's (1.0: as fast as the native reader). The same records as
NDJSON then go through Refinery and through Polars' `scan_ndjson`: `ratio_to_polars_ndjson`.
"""

from __future__ import annotations

import csv
import hashlib
import random
import shutil
import sys
import tempfile
from pathlib import Path

import polars as pl

from assets.demo.tickets import generate_tickets
from benchmarks.common import measure_in_subprocess, result_line

COLUMNS = ["ticket_id", "body", "category", "priority"]


def write_csv(path: Path, rows: int, seed: int = 11) -> None:
    """A CSV of `rows` tickets: the demo generator's records, recycled with fresh ids."""
    base, _ = generate_tickets(min(rows, 20_000), seed)
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i in range(rows):
            record = base[i % len(base)]
            writer.writerow([f"T{i}", record["body"], record["category"], rng.choice(["low", "normal", "high"])])


def refinery_path(csv_path: str, table: str) -> dict[str, float]:
    """The real ingestion path: DropReader streaming into a Delta table (a CSV or an NDJSON file)."""
    from assets.readers.drop import DropReader
    from assets.readers.mapping import RecordMapping
    from assets.storage.delta import write_version_stream

    reader = DropReader(
        Path(csv_path), RecordMapping(text_column="body", label_column="category", id_column="ticket_id")
    )
    write_version_stream(table, reader.schema, reader.batches(), "bench")
    return {"rows": reader.rows, "rejected": len(reader.rejects)}


def polars_path(csv_path: str, table: str) -> dict[str, float]:
    """The strong alternative: Polars' native reader into the same partitioned Delta table, with the same columns
    (the same stable content-hash id, the source and its row), but no record isolated and no encoding detected."""
    from assets.storage.records import content_hash

    if csv_path.endswith(".ndjson"):
        strings = dict.fromkeys(COLUMNS, pl.String)
        frame = pl.scan_ndjson(csv_path, schema=strings).with_row_index("source_row", offset=1)
    else:
        frame = pl.scan_csv(csv_path, infer_schema=False).with_row_index("source_row", offset=2)
    frame = frame.collect()
    frame = frame.select(
        content_hash(frame["body"]).alias("doc_id"),
        pl.col("ticket_id").alias("source_id"),
        pl.col("body").alias("text"),
        pl.col("category").alias("label"),
        pl.lit(Path(csv_path).name).alias("source"),
        pl.col("source_row").cast(pl.Int64),
        "priority",
        pl.lit("bench").alias("dataset_version"),
    )
    frame.write_delta(table, delta_write_options={"partition_by": ["dataset_version"]})
    return {"rows": frame.height, "rejected": 0}


def pandas_path(csv_path: str, table: str) -> dict[str, float]:
    """What a user would write: pandas.read_csv, then per-row Python for ids and mapping, then Delta."""
    import deltalake
    import pandas as pd

    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, on_bad_lines="skip")
    records = []
    for index, row in frame.iterrows():
        text = row["body"]
        records.append(
            {
                "doc_id": hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
                "source_id": row["ticket_id"],
                "text": text,
                "label": row["category"],
                "source": Path(csv_path).name,
                "source_row": index + 2,
                "priority": row["priority"],
                "dataset_version": "bench",
            }
        )
    deltalake.write_deltalake(table, pd.DataFrame(records), partition_by=["dataset_version"])
    return {"rows": len(records), "rejected": 0}


def main(rows: int = 1_000_000) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="refinery-bench-"))
    try:
        csv_path = scratch / "tickets.csv"
        write_csv(csv_path, rows)
        print(f"generated {rows} rows, {csv_path.stat().st_size / 1e6:.0f} MB", flush=True)
        ours = measure_in_subprocess("benchmarks.ingestion", "refinery_path", str(csv_path), str(scratch / "ours"))
        print(f"refinery: {ours}", flush=True)
        native = measure_in_subprocess("benchmarks.ingestion", "polars_path", str(csv_path), str(scratch / "polars"))
        print(f"polars:   {native}", flush=True)
        baseline = measure_in_subprocess("benchmarks.ingestion", "pandas_path", str(csv_path), str(scratch / "pandas"))
        print(f"pandas:   {baseline}", flush=True)
        assert ours["rows"] == baseline["rows"] == native["rows"] == rows, (ours, baseline, native)
        ndjson = scratch / "tickets.ndjson"
        pl.read_csv(csv_path, infer_schema=False).write_ndjson(ndjson)
        ours_ndjson = measure_in_subprocess("benchmarks.ingestion", "refinery_path", str(ndjson), str(scratch / "on"))
        native_ndjson = measure_in_subprocess("benchmarks.ingestion", "polars_path", str(ndjson), str(scratch / "pn"))
        print(f"ndjson: refinery {ours_ndjson}, polars {native_ndjson}", flush=True)
        assert ours_ndjson["rows"] == native_ndjson["rows"] == rows, (ours_ndjson, native_ndjson)
        rate, baseline_rate = rows / ours["seconds"], rows / baseline["seconds"]
        print(
            result_line(
                rows_per_s=round(rate),
                baseline_rows_per_s=round(baseline_rate),
                speedup=rate / baseline_rate,
                ratio_to_polars=native["seconds"] / ours["seconds"],
                polars_rows_per_s=round(rows / native["seconds"]),
                peak_rss_mb=ours["peak_rss_mb"],
                polars_peak_rss_mb=native["peak_rss_mb"],
                baseline_peak_rss_mb=baseline["peak_rss_mb"],
                ndjson_rows_per_s=round(rows / ours_ndjson["seconds"]),
                ratio_to_polars_ndjson=native_ndjson["seconds"] / ours_ndjson["seconds"],
                ndjson_peak_rss_mb=ours_ndjson["peak_rss_mb"],
                polars_ndjson_peak_rss_mb=native_ndjson["peak_rss_mb"],
            )
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
