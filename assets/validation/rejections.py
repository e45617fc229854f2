"""Why a version's records were rejected, in words a person can act on."""

from __future__ import annotations

import polars as pl


def rejection_summary(rejected: pl.DataFrame, rows_in: int, top: int = 3, samples: int = 3) -> str:
    """The rejected share, the `top` rules with their counts, and `samples` rows with file, row, rule and value."""
    share = rejected.height / rows_in if rows_in else 0.0
    lines = [f"{rejected.height} of {rows_in} records ({share:.1%}) were quarantined"]
    if rejected.is_empty():
        return lines[0]
    counts = rejected.group_by("rule").len().sort(["len", "rule"], descending=[True, False]).head(top)
    lines.append("top rules: " + ", ".join(f"{rule} {count}" for rule, count in counts.iter_rows()))
    for row in rejected.head(samples).iter_rows(named=True):
        value = f" value {row['value']!r}" if row["value"] is not None else ""
        record = (row["record"] or "").replace("\n", " ")[:80]
        lines.append(f"  {row['source']} row {row['source_row']} [{row['rule']}]{value}: {row['reason']} | {record}")
    return "\n".join(lines)
