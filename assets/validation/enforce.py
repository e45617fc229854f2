"""Apply compiled rules: quarantine failing rows, evaluate dataset rules."""

from __future__ import annotations

from collections.abc import Callable
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
                    {
                        "__row": broken.cast(pl.UInt32),
                        "__rule": rule.name,
                        "__reason": rule.description,
                        "__value": frame[column].gather(broken).cast(pl.String),
                    }
                )
            )
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
    label_suspects: int | None = None  # suspected label errors among `label_scanned` examples (None: not screened)
    label_scanned: int = 0


def population_stability_index(current: pl.Series, previous: pl.Series, floor: float = 1e-4) -> float:
    """PSI between two categorical distributions: sum over categories of (p - q) * ln(p / q)."""
    p = current.value_counts(normalize=True, name="p").rename({current.name: "category"})
    q = previous.value_counts(normalize=True, name="q").rename({previous.name: "category"})
    both = p.join(q, on="category", how="full", coalesce=True).fill_null(0.0)
    both = both.with_columns(pl.col("p").clip(lower_bound=floor), pl.col("q").clip(lower_bound=floor))
    return float(both.select(((pl.col("p") - pl.col("q")) * (pl.col("p") / pl.col("q")).log()).sum()).item())


def _rate_result(rule: DatasetRule, count: int, rows: int, detail: str) -> DatasetRuleResult:
    """A rule that bounds the share of rows with some property."""
    observed = count / rows if rows else 0.0
    return DatasetRuleResult(rule, observed <= rule.threshold, observed, detail)


def min_rows(frame: pl.DataFrame, rule: DatasetRule, context: VersionContext) -> DatasetRuleResult:
    """At least `threshold` rows."""
    rows = frame.height
    return DatasetRuleResult(rule, rows >= rule.threshold, float(rows), f"{rows} rows, need {rule.threshold:g}")


def max_missing_rate(frame: pl.DataFrame, rule: DatasetRule, context: VersionContext) -> DatasetRuleResult:
    """At most `threshold` of the rows lack the column (null or empty)."""
    column = frame[rule.column]
    missing = column.is_null().sum() + (column.cast(pl.String) == "").sum()
    return _rate_result(rule, missing, frame.height, f"{missing} of {frame.height} rows lack {rule.column}")


def max_duplicate_rate(frame: pl.DataFrame, rule: DatasetRule, context: VersionContext) -> DatasetRuleResult:
    """At most `threshold` of the rows repeat an earlier row's value of the column."""
    duplicated = frame.height - frame[rule.column].n_unique()
    return _rate_result(rule, duplicated, frame.height, f"{duplicated} repeated values of {rule.column}")


def label_set(frame: pl.DataFrame, rule: DatasetRule, context: VersionContext) -> DatasetRuleResult:
    """The column holds exactly the declared labels: none unexpected, none absent."""
    seen = set(frame[rule.column].drop_nulls().unique().to_list())
    unexpected, absent = sorted(seen - set(rule.threshold)), sorted(set(rule.threshold) - seen)
    detail = f"unexpected: {unexpected or 'none'}; absent: {absent or 'none'}"
    return DatasetRuleResult(rule, not unexpected and not absent, float(len(unexpected) + len(absent)), detail)


def text_length(frame: pl.DataFrame, rule: DatasetRule, context: VersionContext) -> DatasetRuleResult:
    """The column's median and 95th-percentile lengths stay inside the declared bounds."""
    lengths = frame[rule.column].str.len_chars()
    median, p95 = float(lengths.median() or 0), float(lengths.quantile(0.95) or 0)
    bounds = rule.threshold
    observed = {"min_median": median, "max_median": median, "max_p95": p95}
    broken = [
        f"{bound} {bounds[bound]:g} (median {median:g}, p95 {p95:g})"
        for bound, value in observed.items()
        if bound in bounds and (value < bounds[bound] if bound.startswith("min") else value > bounds[bound])
    ]
    return DatasetRuleResult(rule, not broken, median, "; ".join(broken) or f"median {median:g}, p95 {p95:g}")


def max_label_psi(frame: pl.DataFrame, rule: DatasetRule, context: VersionContext) -> DatasetRuleResult:
    """The column's distribution moved at most `threshold` (PSI) from the previous version's."""
    if context.previous is None or context.previous.is_empty():
        return DatasetRuleResult(rule, True, 0.0, "no previous version to compare with")
    observed = population_stability_index(frame[rule.column], context.previous[rule.column])
    return DatasetRuleResult(
        rule, observed <= rule.threshold, observed, f"PSI of {rule.column} against the previous version"
    )


def max_length_shift(frame: pl.DataFrame, rule: DatasetRule, context: VersionContext) -> DatasetRuleResult:
    """The column's median length moved at most `threshold` (relative) from the previous version's."""
    if context.previous is None or context.previous.is_empty():
        return DatasetRuleResult(rule, True, 0.0, "no previous version to compare with")
    now = float(frame[rule.column].str.len_chars().median() or 0)
    before = float(context.previous[rule.column].str.len_chars().median() or 0)
    observed = abs(now - before) / before if before else 0.0
    return DatasetRuleResult(rule, observed <= rule.threshold, observed, f"median length {before:g} -> {now:g}")


def max_rejected_rate(frame: pl.DataFrame, rule: DatasetRule, context: VersionContext) -> DatasetRuleResult:
    """At most `threshold` of the stage's input rows were quarantined."""
    rows_in = context.rows_in if context.rows_in is not None else frame.height
    rejected = rows_in - frame.height
    return _rate_result(rule, rejected, rows_in, f"{rejected} of {rows_in} rows quarantined")


def min_examples_per_label(frame: pl.DataFrame, rule: DatasetRule, context: VersionContext) -> DatasetRuleResult:
    """Every label of the column has at least `threshold` rows."""
    counts = frame.group_by(rule.column).len()
    observed = float(counts["len"].min() or 0)
    scarce = counts.filter(pl.col("len") < rule.threshold).sort("len")
    detail = ", ".join(f"{r[rule.column]}={r['len']}" for r in scarce.iter_rows(named=True)) or "every label"
    return DatasetRuleResult(rule, observed >= rule.threshold, observed, f"below {rule.threshold:g}: {detail}")


def max_imbalance_ratio(frame: pl.DataFrame, rule: DatasetRule, context: VersionContext) -> DatasetRuleResult:
    """The largest label has at most `threshold` times the rows of the smallest."""
    counts = frame.group_by(rule.column).len()
    largest, smallest = counts["len"].max() or 0, counts["len"].min() or 0
    observed = float(largest / smallest) if smallest else float("inf")
    detail = f"largest/smallest label = {largest}/{smallest}"
    return DatasetRuleResult(rule, observed <= rule.threshold, observed, detail)


def max_label_issue_rate(frame: pl.DataFrame, rule: DatasetRule, context: VersionContext) -> DatasetRuleResult:
    """At most `threshold` of the screened examples have a label the out-of-fold model doubts."""
    if context.label_suspects is None or not context.label_scanned:
        return DatasetRuleResult(rule, True, 0.0, "labels not screened")
    detail = f"{context.label_suspects} of {context.label_scanned} examples' labels look wrong (label_issues table)"
    return _rate_result(rule, context.label_suspects, context.label_scanned, detail)


DatasetRuleEvaluator = Callable[[pl.DataFrame, DatasetRule, VersionContext], DatasetRuleResult]
DATASET_RULE_EVALUATORS: dict[str, DatasetRuleEvaluator] = {
    evaluator.__name__: evaluator
    for evaluator in (
        min_rows,
        max_missing_rate,
        max_duplicate_rate,
        label_set,
        text_length,
        max_label_psi,
        max_length_shift,
        max_rejected_rate,
        min_examples_per_label,
        max_imbalance_ratio,
        max_label_issue_rate,
    )
}


def evaluate_dataset_rule(
    frame: pl.DataFrame, rule: DatasetRule, context: VersionContext | None = None
) -> DatasetRuleResult:
    """Evaluate one dataset rule on a collected frame; a rule kind with no evaluator is refused by name."""
    evaluator = DATASET_RULE_EVALUATORS.get(rule.kind)
    if evaluator is None:
        known = ", ".join(sorted(DATASET_RULE_EVALUATORS))
        raise ValueError(f"dataset rule {rule.name!r}: no evaluator for kind {rule.kind!r} (known: {known})")
    return evaluator(frame, rule, context or VersionContext())
