"""Text normalisation: NFKC, markup to text, quoted replies and signatures removed, whitespace collapsed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from contracts.settings import setting

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

    strip_markup: bool = setting(True, "HTML/XML tags and entities to plain text")
    strip_replies: bool = setting(True, "drop quoted replies and forwarded history")
    strip_signatures: bool = setting(True, "drop e-mail signatures ('-- ', 'Sent from my ...')")
    mask_pii: bool = setting(True, "replace e-mail addresses, phone numbers, card and account numbers by placeholders")


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
