"""Cleaning: normalisation, reply and signature removal, PII masking, row rules, quality and language
filters, and exact and near-duplicate removal within a version and against earlier versions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from assets.storage.delta import Lake
from assets.storage.records import empty_quarantine
from assets.storage.tables import CLEAN_DOCUMENTS, DEDUP_INDEX
from assets.text.dedup import NearDuplicateOptions, exact_duplicates, near_duplicates
from assets.text.pii import DEFAULT_POLICY, mask_pii
from assets.text.quality import apply_quality_filters
from assets.validation.enforce import apply_row_rules
from rules import RuleSet
from rules.pii_policy import PiiPolicy

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


def where_matching(texts: pl.Series, pattern: str, transform: Callable[[pl.Series], pl.Series]) -> pl.Series:
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


def normalize_documents(
    raw: pl.DataFrame, options: CleaningOptions = CleaningOptions(), pii: PiiPolicy = DEFAULT_POLICY
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
    cleaned = normalize_documents(raw, options, rules.pii if rules and rules.pii else DEFAULT_POLICY)
    passed, broken = apply_row_rules(cleaned, rules, "clean") if rules else (cleaned, empty_quarantine())
    passed, low_quality = apply_quality_filters(passed, rules.quality if rules else {}, "clean")
    unique, exact = exact_duplicates(passed, "clean", earlier_keys)
    kept, near_copies, index = near_duplicates(unique, "clean", near or NearDuplicateOptions(), earlier_index)
    rejected = pl.concat([broken, low_quality, exact, near_copies])
    return CleanedVersion(kept.drop("original_text"), rejected, index, exact.height, near_copies.height)


def earlier_dedup_state(lake: Lake, versions: list[str]) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """Text keys and near-duplicate index rows of earlier versions (None when there are none)."""
    if not versions or not lake.exists(CLEAN_DOCUMENTS):
        return None, None
    keys = lake.scan(CLEAN_DOCUMENTS, versions).select("text_key", "doc_id").collect()
    index = lake.scan(DEDUP_INDEX, versions).collect() if lake.exists(DEDUP_INDEX) else None
    return keys, index
