"""Cleaning: Unicode and markup normalisation, e-mail and phone masking, exact-duplicate removal."""

from dataclasses import dataclass

import dagster as dg
import polars as pl

from assets.documents import content_hash, quarantine_documents
from assets.ingestion import RAW_DOCUMENTS, raw_documents
from assets.metadata import write_stage
from dagster_project.partitions import dataset_versions
from dagster_project.resources import LakeResource
from rules import default_rule_book
from rules.enforce import apply_row_rules

CLEAN_DOCUMENTS = "clean_documents"

EMAIL_TOKEN = "<EMAIL>"
PHONE_TOKEN = "<PHONE>"
PLACEHOLDERS = (EMAIL_TOKEN, PHONE_TOKEN)

_TAG = r"<!--.*?-->|</?[A-Za-z][^<>]*>"
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_ENTITIES = {"&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'", "&apos;": "'", "&amp;": "&"}
EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
PHONE_PATTERN = (
    r"\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}"  # international: +44 20 7946 0958
    r"|\(\d{2,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"  # (020) 7946 0958
    r"|\b\d{3}[ .-]\d{3}[ .-]\d{4}\b"  # 555-123-4567
)


@dataclass(frozen=True)
class CleaningOptions:
    """What cleaning does to each text."""

    mask_emails: bool = True
    mask_phones: bool = True
    strip_markup: bool = True


def normalize_text(text: pl.Expr, options: CleaningOptions = CleaningOptions()) -> pl.Expr:
    """NFKC, markup to text, control characters removed, whitespace collapsed, PII masked."""
    text = text.str.normalize("NFKC")
    if options.strip_markup:
        text = text.str.replace_all(_TAG, " ").str.replace_many(list(_ENTITIES), list(_ENTITIES.values()))
    text = text.str.replace_all(_CONTROL, "")
    if options.mask_emails:
        text = text.str.replace_all(EMAIL_PATTERN, EMAIL_TOKEN)
    if options.mask_phones:
        text = text.str.replace_all(PHONE_PATTERN, PHONE_TOKEN)
    return text.str.replace_all(r"\s+", " ").str.strip_chars()


def normalize_documents(raw: pl.DataFrame, options: CleaningOptions = CleaningOptions()) -> pl.DataFrame:
    """Normalise text and labels; the untouched text stays in `original_text` for the audit trail."""
    return raw.with_columns(
        pl.col("text").alias("original_text"),
        normalize_text(pl.col("text"), options).alias("text"),
        pl.col("label").str.strip_chars().replace("", None).alias("label"),
    )


def drop_exact_duplicates(documents: pl.DataFrame, stage: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep the first document of each case-folded text; later copies go to quarantine.

    Quarantined copies name the `doc_id` they duplicate in `duplicate_of`.
    """
    key = content_hash(documents["text"].str.to_lowercase())
    keyed = documents.with_columns(
        pl.col("doc_id").first().over(key).alias("__first"),
        pl.col("label").first().over(key).alias("__first_label"),
        pl.int_range(pl.len()).over(key).alias("__rank"),
    )
    kept = keyed.filter(pl.col("__rank") == 0).drop("__first", "__first_label", "__rank")
    copies = keyed.filter(pl.col("__rank") > 0)
    conflict = pl.col("label").ne_missing(pl.col("__first_label"))
    quarantine = quarantine_documents(
        copies,
        stage,
        "duplicate",
        "exact duplicate of an earlier document",
        value=pl.when(conflict).then(pl.lit("conflicting label: ") + pl.col("__first_label").fill_null("null")),
        duplicate_of=pl.col("__first"),
    )
    return kept, quarantine


class CleaningConfig(dg.Config):
    """What cleaning does to each text."""

    mask_emails: bool = True
    mask_phones: bool = True
    strip_markup: bool = True


@dg.asset(
    partitions_def=dataset_versions,
    deps=[raw_documents],
    group_name="prepare",
    kinds={"polars", "delta"},
    code_version="1",
)
def clean_documents(
    context: dg.AssetExecutionContext, config: CleaningConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """Normalised, PII-masked, de-duplicated documents that pass the row rules of rules/clean_documents.yaml."""
    version = context.partition_key
    raw = lake.scan(RAW_DOCUMENTS, [version]).drop("dataset_version").collect()
    options = CleaningOptions(config.mask_emails, config.mask_phones, config.strip_markup)
    cleaned = normalize_documents(raw, options)
    book = default_rule_book()
    passed, broken = apply_row_rules(cleaned, book.for_asset(CLEAN_DOCUMENTS), "clean")
    kept, duplicates = drop_exact_duplicates(passed, "clean")
    rejected = pl.concat([broken, duplicates])
    masked = {token: int(kept["text"].str.count_matches(token, literal=True).sum()) for token in PLACEHOLDERS}
    metadata = write_stage(lake, CLEAN_DOCUMENTS, "clean", version, kept.drop("original_text"), rejected, book.digest)
    metadata["duplicates_removed"] = duplicates.height
    metadata["masked_pii"] = dg.MetadataValue.json(masked)
    return dg.MaterializeResult(metadata=metadata)
