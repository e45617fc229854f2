"""clean_documents: normalised, PII-masked documents that pass the row rules, without duplicates."""

from dataclasses import fields

import dagster as dg
import pydantic

from assets.checks import rule_check_results, rule_check_specs
from assets.configs import config_fields, derived_config
from assets.datasets.resolve import label_set_rules
from assets.metadata import checks_per_dataset, per_dataset, stage_metadata
from assets.partitions import dataset_versions, earlier_versions
from assets.resources import LakeResource, LandingResource
from assets.storage.catalog import record_recipe
from assets.storage.records import read_version, write_stage
from assets.text.cleaning import clean_version, earlier_dedup_state, recipe_for
from assets.text.dedup import NearDuplicateOptions
from assets.validation.enforce import VersionContext, warning_rows
from assets.validation.labels import LabelSetError
from contracts.tables import CLEAN_DOCUMENTS, DEDUP_INDEX, RAW_DOCUMENTS
from recipe.normalize import CleaningOptions
from recipe.pii import placeholder_counts

DEDUP_HELP = "also drop texts already kept in earlier versions of the same dataset"
THRESHOLD_HELP = "estimated Jaccard similarity of word shingles from which two texts are near duplicates"
SHINGLE_HELP = "words per shingle in the near-duplicate comparison"
NEAR = NearDuplicateOptions()
CleaningConfig = derived_config(
    "CleaningConfig",
    "Cleaning switches, and the near-duplicate threshold.",
    __name__,
    {
        **config_fields(CleaningOptions),
        "dedup_against_earlier_versions": (bool, pydantic.Field(True, description=DEDUP_HELP)),
        "near_duplicate_threshold": (float, pydantic.Field(NEAR.threshold, description=THRESHOLD_HELP)),
        "near_duplicate_shingle_words": (int, pydantic.Field(NEAR.shingle_size, description=SHINGLE_HELP)),
    },
)


def cleaning_options(config: dg.Config) -> CleaningOptions:
    """The text recipe's switches a run's config sets."""
    return CleaningOptions(**{item.name: getattr(config, item.name) for item in fields(CleaningOptions)})


@dg.asset(
    partitions_def=dataset_versions,
    deps=[RAW_DOCUMENTS],
    group_name="prepare",
    kinds={"polars", "pandera", "delta"},
    code_version="3",
    check_specs=rule_check_specs(CLEAN_DOCUMENTS),
)
def clean_documents(
    context: dg.AssetExecutionContext, config: CleaningConfig, lake: LakeResource, landing: LandingResource
) -> dg.MaterializeResult:
    """Normalised, PII-masked documents that pass the rules and label sets of the version's dataset, without
    exact or near duplicates."""
    version = context.partition_key
    dataset = landing.dataset(version)
    book = landing.rule_book(version)
    rules = book.for_asset(CLEAN_DOCUMENTS)
    # Delta returns rows in no set order; "the first copy" must not depend on it.
    raw = read_version(lake, RAW_DOCUMENTS, version).sort("source", "source_row")
    same_dataset = landing.of_same_dataset(earlier_versions(context.instance, version), version)
    earlier = same_dataset if config.dedup_against_earlier_versions else []
    options = cleaning_options(config)
    recipe = recipe_for(rules, options, book.digest)
    try:
        result = clean_version(
            raw,
            rules,
            recipe,
            near=NearDuplicateOptions(config.near_duplicate_threshold, config.near_duplicate_shingle_words),
            earlier=earlier_dedup_state(lake, earlier),
            label_sets=label_set_rules(dataset, lake, same_dataset),
            answer_columns=dataset.answer_columns,
        )
    except LabelSetError as error:
        raise dg.Failure(f"dataset {dataset.name!r}, version {version}: {error}") from error
    lake.write_version(DEDUP_INDEX, result.dedup_index, version)
    delta_version = write_stage(lake, CLEAN_DOCUMENTS, "clean", version, result.kept, result.rejected)
    metadata = stage_metadata(lake, CLEAN_DOCUMENTS, delta_version, result.kept, result.rejected, book.digest)
    metadata["duplicates_removed"] = result.duplicates
    metadata["near_duplicates_removed"] = result.near_duplicates
    metadata["compared_with_versions"] = dg.MetadataValue.json(earlier)
    metadata["masked_pii"] = dg.MetadataValue.json(placeholder_counts(result.kept["text"], recipe.pii))
    metadata["text_recipe_hash"] = recipe.digest
    metadata["dataset"] = dataset.name
    metadata["unseen_labels"] = dg.MetadataValue.json(result.unseen_labels)
    record_recipe(lake, version, recipe.to_dict())
    if rules is not None:
        warnings = warning_rows(result.kept, rules)
        metadata["warn_rule_rows"] = dg.MetadataValue.json(dict(warnings.group_by("__rule").len().iter_rows()))
    checks = rule_check_results(CLEAN_DOCUMENTS, result.kept, result.rejected, VersionContext(rows_in=raw.height), book)
    return dg.MaterializeResult(
        metadata=per_dataset(dataset.name, metadata), check_results=checks_per_dataset(dataset.name, checks)
    )
