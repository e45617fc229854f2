"""Apply compiled rules: quarantine failing rows, evaluate dataset rules."""

from __future__ import annotations

from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

from assets.documents import empty_quarantine, quarantine_documents
from rules.compiler import DatasetRule, RuleSet


@dataclass(frozen=True)
class DatasetRuleResult:
    """The outcome of one dataset rule on one version."""

    rule: DatasetRule
    passed: bool
    observed: float
    detail: str


def apply_row_rules(frame: pl.DataFrame, rule_set: RuleSet, stage: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a collected frame into rows that pass every row rule and quarantine rows.

    A row failing several rules is quarantined once, under the first rule it broke.
    """
    try:
        rule_set.schema.validate(frame, lazy=True)
        return frame, empty_quarantine()
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    row_cases = cases.filter(pl.col("index").is_not_null())
    if row_cases.height < cases.height:
        schema_level = cases.filter(pl.col("index").is_null())
        raise ValueError(f"{rule_set.path}: frame does not match the schema: {schema_level.to_dicts()}")
    failures = {}
    for row in row_cases.sort("index").iter_rows(named=True):
        if row["index"] in failures:
            continue
        number = None if row["check"] == "not_nullable" else row["check_number"]
        failures[row["index"]] = (rule_set.rule_for(row["column"], number), row["failure_case"])
    indexed = frame.with_row_index("__row")
    failing = pl.DataFrame(
        {
            "__row": list(failures),
            "__rule": [rule.name for rule, _ in failures.values()],
            "__reason": [rule.description for rule, _ in failures.values()],
            "__value": [None if value is None else str(value) for _, value in failures.values()],
        },
        schema={"__row": pl.UInt32, "__rule": pl.String, "__reason": pl.String, "__value": pl.String},
    )
    rejected = indexed.join(failing, on="__row", how="inner", maintain_order="left")
    quarantine = pl.concat(
        [
            quarantine_documents(group, stage, rule, group["__reason"][0], value=pl.col("__value"))
            for (rule,), group in rejected.group_by("__rule", maintain_order=True)
        ]
        or [empty_quarantine()]
    )
    passed = indexed.join(failing, on="__row", how="anti", maintain_order="left").drop("__row")
    return passed, quarantine


def evaluate_dataset_rule(frame: pl.DataFrame, rule: DatasetRule) -> DatasetRuleResult:
    """Evaluate one dataset rule on a collected frame."""
    if rule.kind == "min_rows":
        observed = float(frame.height)
        return DatasetRuleResult(
            rule, observed >= rule.threshold, observed, f"{frame.height} rows, need {rule.threshold:g}"
        )
    counts = frame.group_by(rule.column).len()
    if rule.kind == "min_examples_per_label":
        observed = float(counts["len"].min() or 0)
        scarce = counts.filter(pl.col("len") < rule.threshold).sort("len")
        detail = ", ".join(f"{r[rule.column]}={r['len']}" for r in scarce.iter_rows(named=True)) or "every label"
        return DatasetRuleResult(rule, observed >= rule.threshold, observed, f"below {rule.threshold:g}: {detail}")
    largest, smallest = counts["len"].max() or 0, counts["len"].min() or 0
    observed = float(largest / smallest) if smallest else float("inf")
    return DatasetRuleResult(
        rule, observed <= rule.threshold, observed, f"largest/smallest label = {largest}/{smallest}"
    )
