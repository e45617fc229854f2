"""Apply compiled rules: quarantine failing rows, evaluate dataset rules."""

from __future__ import annotations

from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

from assets.storage.records import empty_quarantine, quarantine_documents
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
        # frame-level checks report the schema's name as their column
        pl.when(pl.col("schema_context") == "DataFrameSchema")
        .then(pl.lit(ROW_LEVEL))
        .otherwise(pl.col("column"))
        .alias("__column"),
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


def coerce_columns(frame: pl.DataFrame, rule_set: RuleSet) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cast the `coerce: true` columns; a value that does not convert fails `<column>_dtype` on its row."""
    failures = []
    for column, dtype in rule_set.coerce.items():
        if column not in frame.columns:
            continue
        converted = frame[column].cast(dtype, strict=False)
        broken = (converted.is_null() & frame[column].is_not_null()).arg_true()
        if not broken.is_empty():
            rule = rule_set.row_rules[(column, "coerce_dtype", "error")]
            failures.append(
                pl.DataFrame(
                    {"__row": broken.cast(pl.UInt32), "__rule": rule.name, "__reason": rule.description,
                     "__value": frame[column].gather(broken).cast(pl.String)}
                )
            )  # fmt: skip
        frame = frame.with_columns(converted.alias(column))
    return frame, pl.concat(failures) if failures else pl.DataFrame(schema=FAILURES_SCHEMA)


def apply_row_rules(frame: pl.DataFrame, rule_set: RuleSet, stage: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a collected frame into rows that pass every `error` row rule and quarantine rows.

    A row failing several rules is quarantined once, under the first rule of the file it broke,
    with the failing value. (Pandera checks only the schema of a LazyFrame: collect first.)
    """
    frame, uncoercible = coerce_columns(frame, rule_set)
    checked = failing_rows(frame, rule_set.schema, rule_set, "error")
    failing = pl.concat([uncoercible, checked]).unique("__row", keep="first", maintain_order=True)
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


@dataclass(frozen=True)
class VersionContext:
    """What a dataset rule may compare with: the previous version's frame and the stage's input size."""

    previous: pl.DataFrame | None = None
    rows_in: int | None = None


def population_stability_index(current: pl.Series, previous: pl.Series, floor: float = 1e-4) -> float:
    """PSI between two categorical distributions: sum over categories of (p - q) * ln(p / q)."""
    p = current.value_counts(normalize=True, name="p").rename({current.name: "category"})
    q = previous.value_counts(normalize=True, name="q").rename({previous.name: "category"})
    both = p.join(q, on="category", how="full", coalesce=True).fill_null(0.0)
    both = both.with_columns(pl.col("p").clip(lower_bound=floor), pl.col("q").clip(lower_bound=floor))
    return float(both.select(((pl.col("p") - pl.col("q")) * (pl.col("p") / pl.col("q")).log()).sum()).item())


def evaluate_dataset_rule(
    frame: pl.DataFrame, rule: DatasetRule, context: VersionContext | None = None
) -> DatasetRuleResult:
    """Evaluate one dataset rule on a collected frame."""
    context = context or VersionContext()
    kind, limit, column = rule.kind, rule.threshold, rule.column
    rows = frame.height
    if kind == "min_rows":
        return DatasetRuleResult(rule, rows >= limit, float(rows), f"{rows} rows, need {limit:g}")
    if kind == "max_missing_rate":
        missing = frame[column].is_null().sum() + (frame[column].cast(pl.String) == "").sum()
        observed = missing / rows if rows else 0.0
        return DatasetRuleResult(rule, observed <= limit, observed, f"{missing} of {rows} rows lack {column}")
    if kind == "max_duplicate_rate":
        duplicated = rows - frame[column].n_unique()
        observed = duplicated / rows if rows else 0.0
        return DatasetRuleResult(rule, observed <= limit, observed, f"{duplicated} repeated values of {column}")
    if kind == "label_set":
        seen = set(frame[column].drop_nulls().unique().to_list())
        unexpected, absent = sorted(seen - set(limit)), sorted(set(limit) - seen)
        detail = f"unexpected: {unexpected or 'none'}; absent: {absent or 'none'}"
        return DatasetRuleResult(rule, not unexpected and not absent, float(len(unexpected) + len(absent)), detail)
    if kind == "text_length":
        lengths = frame[column].str.len_chars()
        median, p95 = float(lengths.median() or 0), float(lengths.quantile(0.95) or 0)
        broken = [
            f"{bound} {limit[bound]:g} (median {median:g}, p95 {p95:g})"
            for bound, value in (("min_median", median), ("max_median", median), ("max_p95", p95))
            if bound in limit and (value < limit[bound] if bound.startswith("min") else value > limit[bound])
        ]
        return DatasetRuleResult(rule, not broken, median, "; ".join(broken) or f"median {median:g}, p95 {p95:g}")
    if kind in ("max_label_psi", "max_length_shift"):
        if context.previous is None or context.previous.is_empty():
            return DatasetRuleResult(rule, True, 0.0, "no previous version to compare with")
        if kind == "max_label_psi":
            observed = population_stability_index(frame[column], context.previous[column])
            return DatasetRuleResult(rule, observed <= limit, observed, f"PSI of {column} against the previous version")
        now = float(frame[column].str.len_chars().median() or 0)
        before = float(context.previous[column].str.len_chars().median() or 0)
        observed = abs(now - before) / before if before else 0.0
        return DatasetRuleResult(rule, observed <= limit, observed, f"median length {before:g} -> {now:g}")
    if kind == "max_rejected_rate":
        rows_in = context.rows_in if context.rows_in is not None else rows
        observed = (rows_in - rows) / rows_in if rows_in else 0.0
        return DatasetRuleResult(rule, observed <= limit, observed, f"{rows_in - rows} of {rows_in} rows quarantined")
    counts = frame.group_by(column).len()
    if kind == "min_examples_per_label":
        observed = float(counts["len"].min() or 0)
        scarce = counts.filter(pl.col("len") < limit).sort("len")
        detail = ", ".join(f"{r[column]}={r['len']}" for r in scarce.iter_rows(named=True)) or "every label"
        return DatasetRuleResult(rule, observed >= limit, observed, f"below {limit:g}: {detail}")
    largest, smallest = counts["len"].max() or 0, counts["len"].min() or 0
    observed = float(largest / smallest) if smallest else float("inf")
    return DatasetRuleResult(rule, observed <= limit, observed, f"largest/smallest label = {largest}/{smallest}")
