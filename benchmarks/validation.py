"""`python -m benchmarks.validation [ROWS]`: the compiled default rules against pandas + Pandera.

Both validate the same generated documents frame with the row rules of rules/clean_documents.yaml
(required text of 3-2000 characters, a label from the label set) and split it into passing rows and
failing rows with the rule they broke: Refinery through its compiler and `apply_row_rules` on Polars,
the baseline through a hand-written pandas Pandera schema and its failure cases.
"""

from __future__ import annotations

import random
import sys

import polars as pl

from assets.demo.tickets import LABELS, generate_tickets
from benchmarks.common import result_line, timed


def build_frame(rows: int, seed: int = 5) -> pl.DataFrame:
    """Documents with about 4% rule failures: stray labels, missing labels, too short or missing text."""
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
            "label": pa.Column(str, checks=[pa.Check.isin(sorted(LABELS))], nullable=False),
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


def main(rows: int = 1_000_000) -> None:
    frame = build_frame(rows)
    refinery(frame.head(1000))  # compile the rules once, outside the timings
    ours, (passed, failed) = timed(refinery, frame)
    print(f"refinery: {ours:.2f}s, {passed} passed, {failed} quarantined", flush=True)
    baseline, (base_passed, base_failed) = timed(pandas_pandera, frame)
    print(f"pandas + pandera: {baseline:.2f}s, {base_passed} passed, {base_failed} failing", flush=True)
    assert (passed, failed) == (base_passed, base_failed), "both sides must find the same failures"
    print(
        result_line(rows_per_s=round(rows / ours), baseline_rows_per_s=round(rows / baseline), speedup=baseline / ours)
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
