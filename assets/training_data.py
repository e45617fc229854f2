"""Validation stage: split examples, enforce rules/training_examples.yaml, account for every record."""

import dagster as dg
import polars as pl

from assets.catalog import record_validation
from assets.checks import previous_version_rows, rule_check_results, rule_check_specs
from assets.documents import DOCUMENT_SCHEMA, empty_quarantine
from assets.ingestion import RAW_DOCUMENTS
from assets.metadata import QUARANTINE, write_stage
from assets.splitting import assign_splits, split_counts
from assets.tokenization import TOKENIZED_DOCUMENTS, tokenized_documents
from dagster_project.partitions import dataset_versions, earlier_versions
from dagster_project.resources import LakeResource
from rules import default_rule_book
from rules.enforce import VersionContext, apply_row_rules

TRAINING_EXAMPLES = "training_examples"
CHECK_NOTHING_LOST = "check_nothing_lost"
EXAMPLE_COLUMNS = [*DOCUMENT_SCHEMA, "split", "token_count"]


class SplitConfig(dg.Config):
    """How examples are split; the seed and fractions are recorded in metadata."""

    seed: int = 13
    val_fraction: float = 0.1
    test_fraction: float = 0.1


def record_accounting(lake: LakeResource, version: str, kept: int) -> dg.AssetCheckResult:
    """Records read from the source = rows kept + rows quarantined (duplicates included)."""
    raw = lake.scan(RAW_DOCUMENTS, [version]).select(pl.len()).collect().item()
    quarantine = lake.scan(QUARANTINE, [version]).group_by("stage").len().collect()
    by_stage = dict(zip(quarantine["stage"].to_list(), quarantine["len"].to_list(), strict=True))
    records_read = raw + by_stage.get("ingest", 0)
    quarantined = sum(by_stage.values())
    return dg.AssetCheckResult(
        check_name=CHECK_NOTHING_LOST,
        passed=records_read == kept + quarantined,
        metadata={
            "records_read": records_read,
            "rows_kept": kept,
            "rows_quarantined": quarantined,
            "quarantined_by_stage": dg.MetadataValue.json(by_stage),
            "unaccounted": records_read - kept - quarantined,
        },
    )


@dg.asset(
    partitions_def=dataset_versions,
    deps=[tokenized_documents],
    group_name="validate",
    kinds={"pandera", "polars", "delta"},
    code_version="1",
    check_specs=[
        *rule_check_specs(TRAINING_EXAMPLES),
        dg.AssetCheckSpec(
            CHECK_NOTHING_LOST,
            asset=TRAINING_EXAMPLES,
            blocking=True,
            description="records read from the source = rows kept + rows quarantined",
        ),
    ],
)
def training_examples(
    context: dg.AssetExecutionContext, config: SplitConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """Tokenized documents split into train/val/test (stratified, seeded), checked against the data rules."""
    version = context.partition_key
    tokenized = lake.scan(TOKENIZED_DOCUMENTS, [version]).drop("dataset_version").collect()
    examples = assign_splits(tokenized, config.seed, config.val_fraction, config.test_fraction)
    book = default_rule_book()
    rule_set = book.for_asset(TRAINING_EXAMPLES)
    kept, broken = apply_row_rules(examples, rule_set, "validate") if rule_set else (examples, empty_quarantine())
    kept = kept.select(EXAMPLE_COLUMNS)
    metadata = write_stage(lake, TRAINING_EXAMPLES, "validate", version, kept, broken, book.digest)
    metadata["split_seed"] = config.seed
    metadata["examples_per_split_and_label"] = dg.MetadataValue.json(split_counts(kept))
    previous = previous_version_rows(lake, TRAINING_EXAMPLES, earlier_versions(context.instance, version))
    checks = rule_check_results(TRAINING_EXAMPLES, kept, broken, VersionContext(previous, examples.height))
    accounting = record_accounting(lake, version, kept.height)
    checks.append(accounting)
    record_validation(lake, version, kept.height, int(accounting.metadata["rows_quarantined"].value))
    return dg.MaterializeResult(metadata=metadata, check_results=checks)
