"""Cleaning: normalisation, reply and signature removal, PII masking, row rules, quality and language
filters, and exact and near-duplicate removal within a version and against earlier versions."""

from dataclasses import dataclass

import dagster as dg
import polars as pl

from assets.dedup import NearDuplicateOptions, exact_duplicates, near_duplicates
from assets.documents import empty_quarantine
from assets.ingestion import RAW_DOCUMENTS, raw_documents
from assets.metadata import write_stage
from assets.pii import PiiPolicy, mask_pii, placeholder_counts
from assets.quality import apply_quality_filters
from dagster_project.partitions import dataset_versions, earlier_versions
from dagster_project.resources import LakeResource
from rules import default_rule_book
from rules.enforce import apply_row_rules

CLEAN_DOCUMENTS = "clean_documents"
DEDUP_INDEX = "dedup_index"

_BLOCK_TAG = r"(?i)</?(?:p|div|br|li|tr|h[1-6]|blockquote)\b[^<>]*>"
_TAG = r"<!--.*?-->|</?[A-Za-z][^<>]*>"
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_ENTITIES = {"&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'", "&apos;": "'", "&amp;": "&"}
# Everything from these markers on is quoted history or a signature, not the message.
_REPLY_MARKERS = (
    r"(?ims)^[ \t]*-{2,}[ \t]*(?:original message|forwarded message)[ \t]*-{2,}.*",
    r"(?ims)^[ \t]*on [^\n]{1,200}wrote:[ \t]*$.*",
    r"(?ims)^[ \t]*from:[^\n]*\n[ \t]*(?:sent|date):.*",
    r"(?m)^[ \t]*>.*$",
)
_SIGNATURE_MARKERS = (r"(?ms)^-- ?$.*", r"(?im)^[ \t]*sent from my [^\n]*$")


@dataclass(frozen=True)
class CleaningOptions:
    """What cleaning does to each text."""

    strip_markup: bool = True
    strip_replies: bool = True
    strip_signatures: bool = True
    mask_pii: bool = True


def normalize_text(text: pl.Expr, options: CleaningOptions = CleaningOptions()) -> pl.Expr:
    """NFKC, markup to text, quoted replies and signatures removed, control characters dropped,
    whitespace collapsed (PII masking is separate: `mask_pii`)."""
    text = text.str.normalize("NFKC").str.replace_all("\r\n?", "\n")
    if options.strip_markup:
        text = text.str.replace_all(_BLOCK_TAG, "\n").str.replace_all(_TAG, " ")
        text = text.str.replace_many(list(_ENTITIES), list(_ENTITIES.values()))
    markers = (_REPLY_MARKERS if options.strip_replies else ()) + (
        _SIGNATURE_MARKERS if options.strip_signatures else ()
    )
    for marker in markers:
        text = text.str.replace_all(marker, "")
    text = text.str.replace_all(_CONTROL, "")
    return text.str.replace_all(r"\s+", " ").str.strip_chars()


DEFAULT_PII = PiiPolicy()


def normalize_documents(
    raw: pl.DataFrame, options: CleaningOptions = CleaningOptions(), pii: PiiPolicy = DEFAULT_PII
) -> pl.DataFrame:
    """Normalise text and labels and mask PII; the untouched text stays in `original_text`."""
    cleaned = raw.with_columns(
        pl.col("text").alias("original_text"),
        normalize_text(pl.col("text"), options).alias("text"),
        pl.col("label").str.strip_chars().replace("", None).alias("label"),
    )
    if options.mask_pii:
        cleaned = cleaned.with_columns(mask_pii(cleaned["text"], pii).alias("text"))
    return cleaned


def drop_exact_duplicates(documents: pl.DataFrame, stage: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Exact duplicates within one frame (see `assets.dedup.exact_duplicates`)."""
    kept, quarantine = exact_duplicates(documents, stage)
    return kept.drop("text_key"), quarantine


class CleaningConfig(dg.Config):
    """Cleaning switches, and the near-duplicate threshold."""

    strip_markup: bool = True
    strip_replies: bool = True
    strip_signatures: bool = True
    mask_pii: bool = True
    dedup_against_earlier_versions: bool = True
    near_duplicate_threshold: float = 0.8
    near_duplicate_shingle_words: int = 5


def earlier_dedup_state(lake: LakeResource, versions: list[str]) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """Text keys and near-duplicate index rows of earlier versions (None when there are none)."""
    if not versions or not lake.exists(CLEAN_DOCUMENTS):
        return None, None
    keys = lake.scan(CLEAN_DOCUMENTS, versions).select("text_key", "doc_id").collect()
    index = lake.scan(DEDUP_INDEX, versions).collect() if lake.exists(DEDUP_INDEX) else None
    return keys, index


@dg.asset(
    partitions_def=dataset_versions,
    deps=[raw_documents],
    group_name="prepare",
    kinds={"polars", "pandera", "delta"},
    code_version="2",
)
def clean_documents(
    context: dg.AssetExecutionContext, config: CleaningConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """Normalised, PII-masked documents that pass rules/clean_documents.yaml, without exact or near duplicates."""
    version = context.partition_key
    book = default_rule_book()
    rules = book.for_asset(CLEAN_DOCUMENTS)
    # Delta returns rows in no set order; "the first copy" must not depend on it.
    raw = lake.scan(RAW_DOCUMENTS, [version]).drop("dataset_version").sort("source", "source_row").collect()
    options = CleaningOptions(config.strip_markup, config.strip_replies, config.strip_signatures, config.mask_pii)
    pii = rules.pii if rules and rules.pii else PiiPolicy()
    cleaned = normalize_documents(raw, options, pii)
    passed, broken = apply_row_rules(cleaned, rules, "clean") if rules else (cleaned, empty_quarantine())
    passed, low_quality = apply_quality_filters(passed, rules.quality if rules else {}, "clean")
    earlier = earlier_versions(context.instance, version) if config.dedup_against_earlier_versions else []
    earlier_keys, earlier_index = earlier_dedup_state(lake, earlier)
    unique, exact = exact_duplicates(passed, "clean", earlier_keys)
    near_options = NearDuplicateOptions(config.near_duplicate_threshold, config.near_duplicate_shingle_words)
    kept, near, index = near_duplicates(unique, "clean", near_options, earlier_index)
    lake.write_version(DEDUP_INDEX, index, version)
    rejected = pl.concat([broken, low_quality, exact, near])
    metadata = write_stage(lake, CLEAN_DOCUMENTS, "clean", version, kept.drop("original_text"), rejected, book.digest)
    metadata["duplicates_removed"] = exact.height
    metadata["near_duplicates_removed"] = near.height
    metadata["compared_with_versions"] = dg.MetadataValue.json(earlier)
    metadata["masked_pii"] = dg.MetadataValue.json(placeholder_counts(kept["text"], pii))
    return dg.MaterializeResult(metadata=metadata)
