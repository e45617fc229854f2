"""PII masking with typed placeholders, as Polars expressions plus checksum validation of candidates.

Regexes find candidates; card numbers must pass the Luhn check and IBANs the mod-97 check before
they are masked, so order numbers and reference codes survive. Person names are masked only when a
trained spaCy pipeline with NER is configured.
"""

from __future__ import annotations

import re

import polars as pl

from recipe.pii_policy import BUILTIN_TYPES, PERSON, PiiPolicy

DEFAULT_POLICY = PiiPolicy()

URL_CREDENTIALS_PATTERN = r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]+:[^\s/@]+@[^\s]*[^\s.,;:!?)\]]"
EMAIL_PATTERN = r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
IBAN_CANDIDATE = r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"
CARD_CANDIDATE = r"\b\d(?:[ -]?\d){12,18}\b"
IPV4_PATTERN = r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b"
IPV6_PATTERN = (
    r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b"
    r"|\b(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}\b"
    r"|\b(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:\s|$)"
)
PHONE_PATTERN = (
    r"(?:\+|\b00)\d{1,3}[ .-]?(?:\(0?\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,5}){1,4}\b"  # +44 20 7946 0958, 0049 30 ..
    r"|\(\d{2,5}\)[ .-]?\d{3,4}[ .-]?\d{3,5}\b"  # (020) 7946 0958
    r"|\b\d{3}[.-]\d{3}[.-]\d{4}\b"  # 555-123-4567
    r"|\b0\d{2,4}[ /-]\d{3,4}[ -]?\d{3,5}\b"  # 030 1234567, 0171-123 4567
)


def luhn_valid(candidate: str) -> bool:
    """Whether a digit string (separators ignored) passes the Luhn checksum of payment cards."""
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """Whether a string (spaces ignored) passes the IBAN mod-97 check."""
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _validated(texts: pl.Series, candidate: str, valid) -> list[str]:
    """Distinct candidate matches that pass `valid`, longest first (so replace_many prefers them)."""
    found = texts.str.extract_all(candidate).explode().drop_nulls().unique().to_list()
    return sorted((c for c in found if valid(c)), key=len, reverse=True)


def _mask_builtin(texts: pl.Series, kind: str, placeholder: str) -> pl.Series:
    if kind == "url_credentials":
        return texts.str.replace_all(URL_CREDENTIALS_PATTERN, placeholder)
    if kind == "email":
        return texts.str.replace_all(EMAIL_PATTERN, placeholder)
    if kind == "ip":
        return texts.str.replace_all(IPV4_PATTERN, placeholder).str.replace_all(IPV6_PATTERN, placeholder)
    if kind == "phone":
        return texts.str.replace_all(PHONE_PATTERN, placeholder)
    pattern, check = (IBAN_CANDIDATE, iban_valid) if kind == "iban" else (CARD_CANDIDATE, luhn_valid)
    valid = _validated(texts, pattern, check)
    return texts.str.replace_many(valid, [placeholder] * len(valid)) if valid else texts


def _mask_all(texts: pl.Series, policy: PiiPolicy) -> pl.Series:
    for kind in BUILTIN_TYPES:
        if kind == "phone":
            for declared in policy.national_ids:
                texts = texts.str.replace_all(declared.pattern, declared.placeholder)
        if kind in policy.types:
            texts = _mask_builtin(texts, kind, policy.placeholders[kind])
    return texts


def mask_pii(texts: pl.Series, policy: PiiPolicy = DEFAULT_POLICY) -> pl.Series:
    """Replace PII in texts with typed placeholders; declared patterns run before the broad phone pattern.

    Only texts holding an '@', a ':' or a run of two digits can hold a built-in PII type; the regexes
    run on those alone (declared patterns too, unless they could match without digits).
    """
    candidates = r"@|:|\d\d" if all(re.search(r"\\d|\[0-9", p.pattern) for p in policy.national_ids) else "."
    rows = texts.str.contains(candidates).fill_null(False).arg_true()
    result = texts if rows.is_empty() else texts.scatter(rows, _mask_all(texts.gather(rows), policy))
    if policy.ner_model:
        result = mask_person_names(result, policy.ner_model)
    return result


def mask_person_names(texts: pl.Series, model: str) -> pl.Series:
    """Replace PERSON entities found by a trained spaCy pipeline (an installed package name or a folder)."""
    import spacy

    nlp = spacy.load(model)
    masked: list[str | None] = []
    for text, doc in zip(texts, nlp.pipe((t or "" for t in texts), batch_size=256), strict=True):
        if text is None:
            masked.append(None)
            continue
        pieces, offset = [], 0
        for entity in doc.ents:
            if entity.label_ in ("PERSON", "PER"):
                pieces += [text[offset : entity.start_char], PERSON]
                offset = entity.end_char
        masked.append("".join([*pieces, text[offset:]]))
    return pl.Series(texts.name, masked, dtype=pl.String)


def placeholder_counts(texts: pl.Series, policy: PiiPolicy = DEFAULT_POLICY) -> dict[str, int]:
    """How many of each placeholder the texts hold, for metadata."""
    return {
        kind: int(texts.str.count_matches(placeholder, literal=True).sum())
        for kind, placeholder in policy.all_placeholders().items()
    }
