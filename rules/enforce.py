"""Apply compiled rules: quarantine failing rows, evaluate dataset rules."""

from __future__ import annotations

from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

from assets.documents import empty_quarantine, quarantine_documents
from rules.compiler import ROW_LEVEL, DatasetRule, RuleSet


@dataclass(frozen=True)
class DatasetRuleResult:
    """The outcome of one dataset rule on one version."""

    rule: DatasetRule
    passed: bool
    observed: float
    detail: str


BUILTIN_CHECKS = ("not_nullable", "field_uniqueness", "coerce_dtype")
FAILURES_SCHEMA = {"__row": pl.UInt32, "__rule": pl.String, "__reason": pl.String, "__value": pl.String}


def failing_rows(frame: pl.DataFrame, schema: pa.DataFrameSchema, rule_set: RuleSet, severity: str) -> pl.DataFrame:
    """(row, rule, reason, value) of every row that breaks a rule of `schema`, first rule only."""
    try:
        schema.validate(frame, lazy=True)
        return pl.DataFrame(
            schema={"__row": pl.UInt32, "__rule": pl.String, "__reason": pl.String, "__value": pl.String}
        )
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    unplaced = cases.filter(pl.col("index").is_null())
    if unplaced.height:
        problems = unplaced.select("column", "check", "failure_case").rows()
        raise ValueError(f"{rule_set.path}: the data does not match the schema: {problems}")
    builtin = pl.col("check").str.extract(f"^({'|'.join(BUILTIN_CHECKS)})")
    keyed = cases.with_columns(
        pl.col("column").fill_null(ROW_LEVEL).alias("__column"),
        pl.coalesce(builtin, pl.col("check_number").cast(pl.String)).alias("__check"),
    )
    return (
        keyed.join(rule_set.rule_table(severity), on=["__column", "__check"], how="inner")
        .sort("index", "__order")
        .unique("index", keep="first", maintain_order=True)
        .select(
            pl.col("index").cast(pl.UInt32).alias("__row"),
            "__rule",
            "__reason",
            pl.col("failure_case").cast(pl.String).alias("__value"),
        )
    )


def apply_row_rules(frame: pl.DataFrame, rule_set: RuleSet, stage: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a collected frame into rows that pass every `error` row rule and quarantine rows.

    A row failing several rules is quarantined once, under the first rule of the file it broke,
    with the failing value. (Pandera checks only the schema of a LazyFrame: collect first.)
    """
    failing = failing_rows(frame, rule_set.schema, rule_set, "error")
    if failing.is_empty():
        return frame, empty_quarantine()
    indexed = frame.with_row_index("__row")
    rejected = indexed.join(failing, on="__row", how="inner", maintain_order="left")
    quarantine = pl.concat(
        [
            quarantine_documents(group, stage, rule, group["__reason"][0], value=pl.col("__value"))
            for (rule,), group in rejected.group_by("__rule", maintain_order=True)
        ]
    )
    passed = indexed.join(failing, on="__row", how="anti", maintain_order="left").drop("__row")
    return passed, quarantine


def warning_rows(frame: pl.DataFrame, rule_set: RuleSet) -> pl.DataFrame:
    """Rows that break a `warn` row rule: counted and shown, never quarantined."""
    if rule_set.warn_schema is None:
        return pl.DataFrame(schema=FAILURES_SCHEMA)
    return failing_rows(frame, rule_set.warn_schema, rule_set, "warn")


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
