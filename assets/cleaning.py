"""Cleaning: normalisation, reply and signature removal, PII masking, row rules, quality and language
filters, and exact and near-duplicate removal within a version and against earlier versions."""

from dataclasses import dataclass

import dagster as dg
import polars as pl

from assets.checks import rule_check_results, rule_check_specs
from assets.text.dedup import NearDuplicateOptions, exact_duplicates, near_duplicates
from assets.storage.records import empty_quarantine
from assets.ingestion import RAW_DOCUMENTS, raw_documents
from assets.metadata import write_stage
from assets.text.pii import PiiPolicy, mask_pii, placeholder_counts
from assets.text.quality import apply_quality_filters
from assets.partitions import dataset_versions, earlier_versions
from assets.resources import LakeResource
from rules import RuleSet, default_rule_book
from assets.validation.enforce import VersionContext, apply_row_rules, warning_rows

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


def where_matching(texts: pl.Series, pattern: str, transform) -> pl.Series:
    """Apply `transform` (Series -> Series) only to the texts that contain `pattern`; the rest are untouched.

    Most tickets are plain one-line ASCII: skipping them is most of the speed of this stage.
    """
    rows = texts.str.contains(pattern).fill_null(False).arg_true()
    if rows.is_empty():
        return texts
    return texts.scatter(rows, transform(texts.gather(rows)))


def normalize_text(texts: pl.Series, options: CleaningOptions = CleaningOptions()) -> pl.Series:
    """NFKC, markup to text, quoted replies and signatures removed, control characters dropped,
    whitespace collapsed (PII masking is separate: `mask_pii`)."""
    texts = where_matching(texts, r"[^\x00-\x7F]", lambda t: t.str.normalize("NFKC"))
    texts = where_matching(texts, "\r", lambda t: t.str.replace_all("\r\n?", "\n"))
    if options.strip_markup:
        texts = where_matching(
            texts,
            "[<&]",
            lambda t: (
                t.str.replace_all(_BLOCK_TAG, "\n")
                .str.replace_all(_TAG, " ")
                .str.replace_many(list(_ENTITIES), list(_ENTITIES.values()))
            ),
        )
    markers = (_REPLY_MARKERS if options.strip_replies else ()) + (
        _SIGNATURE_MARKERS if options.strip_signatures else ()
    )
    if markers:
        texts = where_matching(texts, "\n", lambda t: _remove_all(t, markers))
    texts = where_matching(texts, _CONTROL, lambda t: t.str.replace_all(_CONTROL, ""))
    return where_matching(texts, r"\s\s|[\t\n\v\f]|^\s|\s$", lambda t: t.str.replace_all(r"\s+", " ").str.strip_chars())


def _remove_all(texts: pl.Series, patterns: tuple[str, ...]) -> pl.Series:
    for pattern in patterns:
        texts = texts.str.replace_all(pattern, "")
    return texts


DEFAULT_PII = PiiPolicy()


def normalize_documents(
    raw: pl.DataFrame, options: CleaningOptions = CleaningOptions(), pii: PiiPolicy = DEFAULT_PII
) -> pl.DataFrame:
    """Normalise text and labels and mask PII; the untouched text stays in `original_text`."""
    cleaned = raw.with_columns(
        pl.col("text").alias("original_text"),
        normalize_text(raw["text"], options).alias("text"),
        pl.col("label").str.strip_chars().replace("", None).alias("label"),
    )
    if options.mask_pii:
        cleaned = cleaned.with_columns(mask_pii(cleaned["text"], pii).alias("text"))
    return cleaned


class CleaningConfig(dg.Config):
    """Cleaning switches, and the near-duplicate threshold."""

    strip_markup: bool = True
    strip_replies: bool = True
    strip_signatures: bool = True
    mask_pii: bool = True
    dedup_against_earlier_versions: bool = True
    near_duplicate_threshold: float = 0.8
    near_duplicate_shingle_words: int = 5


@dataclass
class CleanedVersion:
    """What cleaning one version produced."""

    kept: pl.DataFrame
    rejected: pl.DataFrame
    dedup_index: pl.DataFrame
    duplicates: int
    near_duplicates: int


def clean_version(
    raw: pl.DataFrame,
    rules: RuleSet | None,
    options: CleaningOptions = CleaningOptions(),
    near: NearDuplicateOptions | None = None,
    earlier_keys: pl.DataFrame | None = None,
    earlier_index: pl.DataFrame | None = None,
) -> CleanedVersion:
    """Normalise and mask, enforce row rules and quality filters, then drop exact and near duplicates."""
    cleaned = normalize_documents(raw, options, rules.pii if rules and rules.pii else DEFAULT_PII)
    passed, broken = apply_row_rules(cleaned, rules, "clean") if rules else (cleaned, empty_quarantine())
    passed, low_quality = apply_quality_filters(passed, rules.quality if rules else {}, "clean")
    unique, exact = exact_duplicates(passed, "clean", earlier_keys)
    kept, near_copies, index = near_duplicates(unique, "clean", near or NearDuplicateOptions(), earlier_index)
    rejected = pl.concat([broken, low_quality, exact, near_copies])
    return CleanedVersion(kept.drop("original_text"), rejected, index, exact.height, near_copies.height)


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
    check_specs=rule_check_specs(CLEAN_DOCUMENTS),
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
    earlier = earlier_versions(context.instance, version) if config.dedup_against_earlier_versions else []
    result = clean_version(
        raw,
        rules,
        CleaningOptions(config.strip_markup, config.strip_replies, config.strip_signatures, config.mask_pii),
        NearDuplicateOptions(config.near_duplicate_threshold, config.near_duplicate_shingle_words),
        *earlier_dedup_state(lake, earlier),
    )
    lake.write_version(DEDUP_INDEX, result.dedup_index, version)
    metadata = write_stage(lake, CLEAN_DOCUMENTS, "clean", version, result.kept, result.rejected, book.digest)
    metadata["duplicates_removed"] = result.duplicates
    metadata["near_duplicates_removed"] = result.near_duplicates
    metadata["compared_with_versions"] = dg.MetadataValue.json(earlier)
    pii = rules.pii if rules and rules.pii else DEFAULT_PII
    metadata["masked_pii"] = dg.MetadataValue.json(placeholder_counts(result.kept["text"], pii))
    if rules is not None:
        warnings = warning_rows(result.kept, rules)
        metadata["warn_rule_rows"] = dg.MetadataValue.json(dict(warnings.group_by("__rule").len().iter_rows()))
    checks = rule_check_results(CLEAN_DOCUMENTS, result.kept, result.rejected, VersionContext(rows_in=raw.height))
    return dg.MaterializeResult(metadata=metadata, check_results=checks)
