"""`python -m benchmarks.validation [ROWS]`: the compiled default rules against Pandera, on pandas and on Polars.

All three validate the same generated documents frame with the row rules of rules/clean_documents.yaml
(required text of 3-2000 characters, a required label) and split it into passing rows and
failing rows with the rule they broke: Refinery through its compiler and `apply_row_rules` on Polars,
the baselines through the same rules written by hand as a Pandera schema (its pandas backend, and its Polars
backend on the Polars frame itself) and their failure cases. Refinery also keeps each failing row's whole record
(as JSON) in the quarantine; Pandera's sides stop at the failure cases. The Polars sides report the median of
three runs after a warm-up.
"""

from __future__ import annotations

import random
import statistics
import sys

import polars as pl

from assets.demo.tickets import generate_tickets
from benchmarks.common import result_line, timed


def build_frame(rows: int, seed: int = 5) -> pl.DataFrame:
    """Documents with a few % rule failures: missing labels, too short or missing text."""
    base, _ = generate_tickets(20_000, seed)
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(rows):
        record = base[i % len(base)]
        texts.append(record["body"] or None)
        labels.append(record["category"] or None)
    for i in rng.sample(range(rows), rows // 50):
        labels[i] = rng.choice(["misc", "URGENT", None])
    return pl.DataFrame(
        {
            "doc_id": [f"d{i}" for i in range(rows)],
            "text": texts,
            "label": labels,
            "source": ["bench.csv"] * rows,
            "source_row": list(range(2, rows + 2)),
        }
    )


def refinery(frame: pl.DataFrame) -> tuple[int, int]:
    from assets.validation.enforce import apply_row_rules
    from rules import load_rule_book

    rule_set = load_rule_book().for_asset("clean_documents")
    passed, quarantine = apply_row_rules(frame, rule_set, "clean")
    return passed.height, quarantine.height


def pandas_pandera(frame: pl.DataFrame) -> tuple[int, int]:
    import pandera.pandas as pa

    data = frame.to_pandas()
    schema = pa.DataFrameSchema(
        {
            "text": pa.Column(str, checks=[pa.Check.str_length(3, 2000)], nullable=False),
            "label": pa.Column(str, nullable=False),
        }
    )
    try:
        schema.validate(data, lazy=True)
        return len(data), 0
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases.dropna(subset=["index"]).sort_values("index")
        first = cases.drop_duplicates("index")
    failing = data.loc[first["index"].astype(int)].assign(
        rule=first["check"].to_numpy(), value=first["failure_case"].to_numpy()
    )
    passed = data.drop(index=first["index"].astype(int))
    return len(passed), len(failing)


def polars_pandera(frame: pl.DataFrame) -> tuple[int, int]:
    import pandera.polars as pa

    schema = pa.DataFrameSchema(
        {
            "text": pa.Column(str, checks=[pa.Check.str_length(3, 2000)], nullable=False),
            "label": pa.Column(str, nullable=False),
        }
    )
    try:
        schema.validate(frame, lazy=True)
        return frame.height, 0
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases.filter(pl.col("index").is_not_null())
    first = cases.sort("index").unique("index", keep="first", maintain_order=True)
    indexed = frame.with_row_index("index").with_columns(pl.col("index").cast(pl.Int64))
    failing = indexed.join(first.select(pl.col("index").cast(pl.Int64), "check", "failure_case"), on="index")
    passed = indexed.join(first.select(pl.col("index").cast(pl.Int64)), on="index", how="anti")
    return passed.height, failing.height


def median_timed(function, frame: pl.DataFrame, repeats: int = 3) -> tuple[float, tuple[int, int]]:
    """The median seconds of `repeats` calls after one untimed warm-up (Polars' thread pool, compiled rules)."""
    function(frame)
    runs = [timed(function, frame) for _ in range(repeats)]
    return statistics.median(seconds for seconds, _ in runs), runs[0][1]


def main(rows: int = 1_000_000) -> None:
    frame = build_frame(rows)
    ours, (passed, failed) = median_timed(refinery, frame)
    print(f"refinery: {ours:.2f}s, {passed} passed, {failed} quarantined", flush=True)
    baseline, (base_passed, base_failed) = timed(pandas_pandera, frame)  # once: it takes seconds
    print(f"pandas + pandera: {baseline:.2f}s, {base_passed} passed, {base_failed} failing", flush=True)
    assert (passed, failed) == (base_passed, base_failed), "both sides must find the same failures"
    strong, (strong_passed, strong_failed) = median_timed(polars_pandera, frame)
    print(f"pandera on polars: {strong:.2f}s, {strong_passed} passed, {strong_failed} failing", flush=True)
    assert (passed, failed) == (strong_passed, strong_failed), "both sides must find the same failures"
    rates = {"rows_per_s": round(rows / ours), "baseline_rows_per_s": round(rows / baseline)}
    print(
        result_line(
            **rates,
            speedup=baseline / ours,
            pandera_polars_rows_per_s=round(rows / strong),
            ratio_to_pandera_polars=strong / ours,
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
