"""Asset check specs and results: dataset rules from rules/*.yaml, leakage and the nothing-lost accounting."""

import dagster as dg
import polars as pl

from assets.examples.accounting import RecordAccount
from assets.examples.leakage import LeakageReport
from assets.storage.records import reason_counts
from assets.validation.enforce import VersionContext, evaluate_dataset_rule
from assets.validation.rejections import rejection_summary
from rules import RuleBook, default_rule_book
from rules.compiler import KIND_RULES, DatasetRule, default_rules_dir

CHECK_NOTHING_LOST = "check_nothing_lost"
CHECK_NO_SPLIT_LEAKAGE = "check_no_split_leakage"


def check_name(rule: DatasetRule) -> str:
    return f"check_{rule.name}"


def dataset_rules(asset: str, book: RuleBook | None = None) -> list[DatasetRule]:
    """The asset's dataset rules in `book` (a dataset's), or in the shipped rules, which declare the checks."""
    rule_set = (book or default_rule_book()).for_asset(asset)
    return rule_set.dataset_rules if rule_set else []


def declared_rules(asset: str) -> list[DatasetRule]:
    """The asset's dataset rules over the shipped books of every dataset kind (by name, classification first): the
    asset checks a code location declares."""
    rules = list(dataset_rules(asset))  # a copy: the cached book's own list must not grow
    for kind, folder in KIND_RULES.items():
        if folder and (default_rules_dir() / folder).is_dir():  # a rules folder of one's own may hold only some kinds
            rules = [*rules, *dataset_rules(asset, default_rule_book(kind))]
    first: dict[str, DatasetRule] = {}
    for rule in rules:
        first.setdefault(rule.name, rule)
    return list(first.values())


def rule_check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    """One blocking check per dataset rule: an `error` rule that fails stops everything downstream."""
    return [
        dg.AssetCheckSpec(check_name(r), asset=asset, blocking=True, description=r.description)
        for r in declared_rules(asset)
    ]


def failing_rows_markdown(quarantine: pl.DataFrame, rows: int = 5) -> str:
    """A markdown sample of quarantined rows: rule, where they came from, the failing value, the text."""
    if quarantine.is_empty():
        return "no failing rows"
    sample = quarantine.group_by("rule", maintain_order=True).head(2).head(rows)
    lines = ["| rule | source | row | value | record |", "|---|---|---|---|---|"]
    for row in sample.iter_rows(named=True):
        cells = [row["rule"], row["source"], row["source_row"], row["value"], (row["record"] or "")[:100]]
        lines.append("| " + " | ".join(str(c).replace("|", "\\\\|").replace("\\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def rule_check_results(
    asset: str, frame: pl.DataFrame, rejected: pl.DataFrame, context: VersionContext, book: RuleBook | None = None
) -> list[dg.AssetCheckResult]:
    """Evaluate the asset's dataset rules (of the version's dataset) on the kept rows; `warn` rules never block. A
    declared check that is no rule of this dataset's kind passes, saying that it does not apply."""
    rules = dataset_rules(asset, book)
    applying = {rule.name for rule in rules}
    results = [
        dg.AssetCheckResult(
            check_name=check_name(rule),
            passed=True,
            metadata={"applies": False, "detail": "not a rule of this dataset's kind"},
        )
        for rule in declared_rules(asset)
        if rule.name not in applying
    ]
    for rule in rules:
        outcome = evaluate_dataset_rule(frame, rule, context)
        metadata: dict[str, object] = {
            "observed": outcome.observed,
            "threshold": rule.threshold if isinstance(rule.threshold, float) else dg.MetadataValue.json(rule.threshold),
            "detail": outcome.detail,
            "severity": rule.severity,
        }
        if rule.kind == "max_rejected_rate":
            metadata["quarantined_by_rule"] = dg.MetadataValue.json(reason_counts(rejected))
            metadata["failing_rows_sample"] = dg.MetadataValue.md(failing_rows_markdown(rejected))
            if not outcome.passed:
                metadata["detail"] = rejection_summary(rejected, context.rows_in or frame.height)
        results.append(
            dg.AssetCheckResult(
                check_name=check_name(rule),
                passed=outcome.passed,
                severity=dg.AssetCheckSeverity.ERROR if rule.severity == "error" else dg.AssetCheckSeverity.WARN,
                metadata=metadata,
            )
        )
    return results


def nothing_lost_result(account: RecordAccount) -> dg.AssetCheckResult:
    """Records read from the source = rows kept + rows quarantined."""
    return dg.AssetCheckResult(
        check_name=CHECK_NOTHING_LOST,
        passed=account.unaccounted == 0,
        metadata={
            "records_read": account.records_read,
            "rows_kept": account.rows_kept,
            "rows_quarantined": account.rows_quarantined,
            "quarantined_by_stage": dg.MetadataValue.json(account.quarantined_by_stage),
            "unaccounted": account.unaccounted,
        },
    )


def split_leakage_result(report: LeakageReport) -> dg.AssetCheckResult:
    """No exact or near-duplicate text, and no group, in more than one split."""
    pairs = report.near_duplicate_pairs_across_splits
    return dg.AssetCheckResult(
        check_name=CHECK_NO_SPLIT_LEAKAGE,
        passed=report.passed,
        metadata={
            "exact_texts_in_several_splits": report.exact_texts_in_several_splits,
            "near_duplicate_pairs_across_splits": len(pairs),
            "groups_in_several_splits": report.groups_in_several_splits,
            "sample_pairs": dg.MetadataValue.json([list(pair) for pair in pairs[:5]]),
        },
    )
