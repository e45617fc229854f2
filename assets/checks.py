"""Dataset rules from rules/*.yaml as Dagster asset checks, with counts and failing-row samples."""

import dagster as dg
import polars as pl

from assets.storage.records import reason_counts
from assets.resources import LakeResource
from rules import default_rule_book
from rules.compiler import DatasetRule
from assets.validation.enforce import VersionContext, evaluate_dataset_rule


def check_name(rule: DatasetRule) -> str:
    return f"check_{rule.name}"


def dataset_rules(asset: str) -> list[DatasetRule]:
    rule_set = default_rule_book().for_asset(asset)
    return rule_set.dataset_rules if rule_set else []


def rule_check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    """One blocking check per dataset rule: an `error` rule that fails stops everything downstream."""
    return [
        dg.AssetCheckSpec(check_name(r), asset=asset, blocking=True, description=r.description)
        for r in dataset_rules(asset)
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
    asset: str, frame: pl.DataFrame, rejected: pl.DataFrame, context: VersionContext
) -> list[dg.AssetCheckResult]:
    """Evaluate the asset's dataset rules on the kept rows; `warn` rules never block."""
    results = []
    for rule in dataset_rules(asset):
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
        results.append(
            dg.AssetCheckResult(
                check_name=check_name(rule),
                passed=outcome.passed,
                severity=dg.AssetCheckSeverity.ERROR if rule.severity == "error" else dg.AssetCheckSeverity.WARN,
                metadata=metadata,
            )
        )
    return results


def previous_version_rows(lake: LakeResource, table: str, earlier: list[str]) -> pl.DataFrame | None:
    """The rows of the latest earlier version present in `table`, for drift rules."""
    if not earlier or not lake.exists(table):
        return None
    present = set(lake.scan(table, earlier).select("dataset_version").unique().collect()["dataset_version"])
    for version in reversed(earlier):
        if version in present:
            return lake.scan(table, [version]).collect()
    return None
