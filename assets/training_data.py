"""Validation stage: split examples, enforce rules/training_examples.yaml, account for every record."""

import dagster as dg
import polars as pl

from assets.storage.catalog import record_validation
from assets.checks import previous_version_rows, rule_check_results, rule_check_specs
from assets.text.dedup import NearDuplicateOptions, near_duplicates, text_keys
from assets.storage.records import DOCUMENT_SCHEMA, empty_quarantine
from assets.ingestion import RAW_DOCUMENTS
from assets.metadata import QUARANTINE, write_stage
from assets.validation.splitting import assign_splits, split_counts
from assets.tokenization import TOKENIZED_DOCUMENTS, tokenized_documents
from assets.partitions import dataset_versions, earlier_versions
from assets.resources import LakeResource
from rules import default_rule_book
from assets.validation.enforce import VersionContext, apply_row_rules

TRAINING_EXAMPLES = "training_examples"
CHECK_NOTHING_LOST = "check_nothing_lost"
EXAMPLE_COLUMNS = [*DOCUMENT_SCHEMA, "split", "token_count"]


CHECK_NO_SPLIT_LEAKAGE = "check_no_split_leakage"


class SplitConfig(dg.Config):
    """How examples are split; the seed and fractions are recorded in metadata."""

    seed: int = 13
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    group_column: str = ""  # e.g. a carried source column such as customer or thread; "" = none
    near_duplicate_threshold: float = 0.8


def near_duplicate_groups(documents: pl.DataFrame, threshold: float) -> pl.Series:
    """The doc_id each document's near-duplicate cluster is named after (itself when alone)."""
    _, near, _ = near_duplicates(documents, "validate", NearDuplicateOptions(threshold=threshold))
    representative = dict(zip(near["doc_id"].to_list(), near["duplicate_of"].to_list(), strict=True))
    return documents["doc_id"].replace_strict(representative, default=documents["doc_id"], return_dtype=pl.String)


def split_leakage(examples: pl.DataFrame, threshold: float, group_column: str | None) -> dg.AssetCheckResult:
    """No exact or near-duplicate text, and no group, in more than one split."""
    ordered = examples.sort(pl.col("split").replace_strict({"train": 0, "val": 1, "test": 2}), "doc_id")
    split_of = dict(zip(ordered["doc_id"].to_list(), ordered["split"].to_list(), strict=True))
    exact = ordered.group_by(text_keys(ordered["text"]).alias("key")).agg(pl.col("split").n_unique().alias("n"))
    _, near, _ = near_duplicates(ordered, "validate", NearDuplicateOptions(threshold=threshold))
    near_leaks = [
        (d, o) for d, o in zip(near["doc_id"], near["duplicate_of"], strict=True) if split_of[d] != split_of[o]
    ]
    group_leaks = 0
    if group_column:
        splits_per_group = examples.drop_nulls(group_column).group_by(group_column).agg(pl.col("split").n_unique())
        group_leaks = int((splits_per_group["split"] > 1).sum())
    exact_leaks = int((exact["n"] > 1).sum())
    return dg.AssetCheckResult(
        check_name=CHECK_NO_SPLIT_LEAKAGE,
        passed=exact_leaks == 0 and not near_leaks and group_leaks == 0,
        metadata={
            "exact_texts_in_several_splits": exact_leaks,
            "near_duplicate_pairs_across_splits": len(near_leaks),
            "groups_in_several_splits": group_leaks,
            "sample_pairs": dg.MetadataValue.json([list(pair) for pair in near_leaks[:5]]),
        },
    )


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
    code_version="2",
    check_specs=[
        *rule_check_specs(TRAINING_EXAMPLES),
        dg.AssetCheckSpec(
            CHECK_NO_SPLIT_LEAKAGE,
            asset=TRAINING_EXAMPLES,
            blocking=True,
            description="no exact or near-duplicate text, and no group, in more than one split",
        ),
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
    tokenized = lake.scan(TOKENIZED_DOCUMENTS, [version]).drop("dataset_version").sort("source", "source_row").collect()
    group = config.group_column or None
    if group is None:  # near-duplicate clusters stay in one split even when cleaning kept them
        tokenized = tokenized.with_columns(
            near_duplicate_groups(tokenized, config.near_duplicate_threshold).alias("__cluster")
        )
    examples = assign_splits(tokenized, config.seed, config.val_fraction, config.test_fraction, group or "__cluster")
    book = default_rule_book()
    rule_set = book.for_asset(TRAINING_EXAMPLES)
    kept, broken = apply_row_rules(examples, rule_set, "validate") if rule_set else (examples, empty_quarantine())
    leakage = split_leakage(kept, config.near_duplicate_threshold, group)
    kept = kept.select(EXAMPLE_COLUMNS + ([group] if group and group not in EXAMPLE_COLUMNS else []))
    metadata = write_stage(lake, TRAINING_EXAMPLES, "validate", version, kept, broken, book.digest)
    metadata["split_seed"] = config.seed
    metadata["split_groups"] = group or "near-duplicate clusters"
    metadata["examples_per_split_and_label"] = dg.MetadataValue.json(split_counts(kept))
    previous = previous_version_rows(lake, TRAINING_EXAMPLES, earlier_versions(context.instance, version))
    checks = rule_check_results(TRAINING_EXAMPLES, kept, broken, VersionContext(previous, examples.height))
    accounting = record_accounting(lake, version, kept.height)
    checks += [accounting, leakage]
    record_validation(lake, version, kept.height, int(accounting.metadata["rows_quarantined"].value))
    return dg.MaterializeResult(metadata=metadata, check_results=checks)
