"""training_examples: split examples, enforce rules/training_examples.yaml, screen labels, account for every record."""

import dagster as dg
import polars as pl
from pydantic import Field

from assets.checks import (
    CHECK_NO_SPLIT_LEAKAGE,
    CHECK_NOTHING_LOST,
    nothing_lost_result,
    rule_check_results,
    rule_check_specs,
    split_leakage_result,
)
from assets.examples.accounting import account_for_records
from assets.examples.build import SplitSettings, build_examples
from assets.examples.label_issues import LabelIssueSettings, screen_version
from assets.examples.splitting import split_counts
from assets.metadata import checks_per_dataset, label_issue_metadata, per_dataset, stage_metadata
from assets.partitions import dataset_versions, earlier_versions
from assets.resources import LakeResource, LandingResource
from assets.storage.catalog import record_validation
from assets.storage.records import latest_earlier_rows, read_version, write_stage
from assets.validation.enforce import VersionContext
from contracts.tables import LABEL_ISSUES, TOKENIZED_DOCUMENTS, TRAINING_EXAMPLES


class SplitConfig(dg.Config):
    """How examples are split; the seed and fractions are recorded in metadata."""

    seed: int = Field(13, description="seed of the split")
    val_fraction: float = Field(0.1, description="share of the examples in the val split")
    test_fraction: float = Field(0.1, description="share of the examples in the test split")
    group_column: str = Field(
        "", description="a carried source column (customer, thread) whose groups stay in one split; '' = none"
    )
    near_duplicate_threshold: float = Field(
        0.8, description="texts at least this similar (MinHash Jaccard) stay in one split"
    )
    label_issue_folds: int = Field(5, description="folds of the out-of-fold model that screens labels")
    label_issue_model: str = Field(
        "tfidf", description="that model: tfidf, or encoder (a logistic regression on a frozen encoder's vectors)"
    )
    label_issue_encoder: str = Field("default", description="the encoder of label_issue_model: encoder (MiniLM)")


@dg.asset(
    partitions_def=dataset_versions,
    deps=[TOKENIZED_DOCUMENTS],
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
    context: dg.AssetExecutionContext, config: SplitConfig, lake: LakeResource, landing: LandingResource
) -> dg.MaterializeResult:
    """Tokenized documents split into train/val/test (stratified, seeded), checked against the data rules."""
    version = context.partition_key
    tokenized = read_version(lake, TOKENIZED_DOCUMENTS, version).sort("source", "source_row")
    dataset = landing.dataset(version)
    # the columns kept beside `label`: other tasks' labels, or a generation or preference dataset's answers and context
    other_tasks = dataset.answer_columns or tuple(task.column for task in dataset.tasks[1:])
    settings = SplitSettings(
        config.seed,
        config.val_fraction,
        config.test_fraction,
        config.group_column or None,
        config.near_duplicate_threshold,
        other_tasks,
    )
    book = landing.rule_book(version)
    result = build_examples(tokenized, book.for_asset(TRAINING_EXAMPLES), settings)
    policy = "off" if dataset.generative else dataset.primary.label_issues
    screening = LabelIssueSettings(
        policy, config.label_issue_folds, config.seed, config.label_issue_model, config.label_issue_encoder
    )
    earlier = landing.of_same_dataset(earlier_versions(context.instance, version), version)
    kept, suspects, screen = screen_version(lake, version, tokenized, result.kept, settings=screening, earlier=earlier)
    rejected = pl.concat([result.rejected, suspects])
    delta_version = write_stage(lake, TRAINING_EXAMPLES, "validate", version, kept, rejected)
    lake.write_version(LABEL_ISSUES, screen.issues, version)
    account = account_for_records(lake, version, kept.height)
    record_validation(lake, version, kept.height, account.rows_quarantined)
    previous = latest_earlier_rows(lake, TRAINING_EXAMPLES, earlier)
    metadata = stage_metadata(lake, TRAINING_EXAMPLES, delta_version, kept, rejected, book.digest)
    metadata["split_seed"] = config.seed
    metadata["split_groups"] = settings.group_column or "near-duplicate clusters"
    metadata["examples_per_split_and_label"] = dg.MetadataValue.json(split_counts(kept))
    metadata.update(label_issue_metadata(screen, policy, lake.uri(LABEL_ISSUES)))
    if policy == "relabel":
        metadata["label_review"] = f"refinery review export --dataset-version {version} -o suspects.csv"
    label_context = {"label_suspects": screen.suspects if screen.scanned else None, "label_scanned": screen.scanned}
    checks = [
        *rule_check_results(
            TRAINING_EXAMPLES, kept, rejected, VersionContext(previous, result.rows_in, **label_context), book
        ),
        nothing_lost_result(account),
        split_leakage_result(result.leakage),
    ]
    return dg.MaterializeResult(
        metadata=per_dataset(dataset.name, metadata), check_results=checks_per_dataset(dataset.name, checks)
    )
