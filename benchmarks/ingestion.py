"""`python -m benchmarks.ingestion [ROWS]`: Refinery's ingestion path against Polars' native reader and against
pandas, on a generated CSV.

All sides read the same clean CSV of realistic tickets, give every record a content-hash id and the source
row, and write a partitioned Delta table; each runs in its own process so peak memory is its own.
`ratio_to_polars` is Polars' time over Refinery's (1.0: as fast as the native reader). The same records as
NDJSON then go through Refinery and through Polars' `scan_ndjson`: `ratio_to_polars_ndjson`.

Then as a user runs it: the CSV is registered with `refinery ingest` in a fresh home and `refinery run --select
raw_documents` materializes it; `step_s` is the step's own time from the run's step stats, `run_s` the whole
command's wall time and `run_peak_rss_mb` its peak, against the plainest Polars load, `pl.scan_csv(...).collect()`
and `write_delta(partition_by=dataset_version)` (no ids, no source rows): `step_ratio_to_plain_polars`.
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


def plain_polars_path(csv_path: str, table: str) -> dict[str, float]:
    """The plainest load: Polars' reader and a partitioned Delta write, nothing added."""
    frame = pl.scan_csv(csv_path, infer_schema=False).collect().with_columns(dataset_version=pl.lit("bench"))
    frame.write_delta(table, delta_write_options={"partition_by": ["dataset_version"]})
    return {"rows": frame.height}


def refinery_step(csv_path: Path, home: Path) -> dict[str, float]:
    """`refinery ingest` then `refinery run --select raw_documents` on a fresh home: the step's own seconds (from
    the run's step stats), the run command's wall seconds and its peak RSS."""
    import os
    import subprocess
    import time

    import dagster as dg

    environment = {**os.environ, "REFINERY_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    refinery = [sys.executable, "-m", "dagster_project.cli"]
    columns = ["--text-column", "body", "--label-column", "category", "--id-column", "ticket_id"]
    ingest = [*refinery, "ingest", str(csv_path), *columns, "--dataset-version", "bench"]
    subprocess.run(ingest, env=environment, check=True, capture_output=True)
    started = time.perf_counter()
    run = [*refinery, "run", "--dataset-version", "bench", "--select", "raw_documents"]
    process = subprocess.Popen(run, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak, not the other measured processes'
    run_seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(run)} exited {process.returncode}")
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        (record,) = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": "bench"}))
        (step,) = [s for s in instance.get_run_step_stats(record.dagster_run.run_id) if s.step_key == "raw_documents"]
    return {
        "step_s": step.end_time - step.start_time,
        "run_s": run_seconds,
        "run_peak_rss_mb": usage.ru_maxrss / 1024,
    }


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
        plain = measure_in_subprocess("benchmarks.ingestion", "plain_polars_path", str(csv_path), str(scratch / "pp"))
        step = refinery_step(csv_path, scratch / "home")
        print(f"as a user runs it: {step}; plain polars {plain}", flush=True)
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
                step_s=step["step_s"],
                run_s=step["run_s"],
                plain_polars_s=plain["seconds"],
                step_ratio_to_plain_polars=plain["seconds"] / step["step_s"],
                run_peak_rss_mb=step["run_peak_rss_mb"],
                plain_polars_peak_rss_mb=plain["peak_rss_mb"],
            )
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
