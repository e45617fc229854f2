"""Which encoding a file's bytes are in, and lines that disagree with it."""

from __future__ import annotations

import codecs

import charset_normalizer

SAMPLE_BYTES = 1 << 20  # the start of a file that detection looks at


# Legacy encodings charset-normalizer may name for a sample that is not UTF-8. Latin-script guesses (cp1257,
# iso8859-2, ...) are too often wrong for Western text, which stays cp1252.
NON_LATIN_ENCODINGS = frozenset(
    {
        "cp1251",
        "koi8_r",
        "koi8_u",
        "cp866",
        "iso8859_5",
        "mac_cyrillic",
        "cp1253",
        "iso8859_7",
        "cp1255",
        "iso8859_8",
        "cp1256",
        "iso8859_6",
        "cp932",
        "shift_jis",
        "shift_jis_2004",
        "euc_jp",
        "iso2022_jp",
        "gb2312",
        "gbk",
        "gb18030",
        "big5",
        "big5hkscs",
        "cp949",
        "euc_kr",
        "cp874",
        "tis_620",
    }
)
SINGLE_BYTE = frozenset(
    {
        "cp1252",
        "latin-1",
        "cp1251",
        "koi8_r",
        "koi8_u",
        "cp866",
        "iso8859_5",
        "cp1253",
        "iso8859_7",
        "cp1255",
        "iso8859_8",
        "cp1256",
        "iso8859_6",
        "cp874",
        "tis_620",
    }
)


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (BOM or not), UTF-16 by its BOM, a non-Latin legacy encoding charset-normalizer recognises
    (cp1251, Shift-JIS, ...), else Windows-1252 (Latin-1 where cp1252 has no character).

    A sample with valid multi-byte UTF-8 and a few invalid bytes is UTF-8 with corrupt lines: those
    lines are quarantined, the rest decode correctly.
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoded = sample.decode("utf-8", "replace")
    invalid = decoded.count("\ufffd")
    cut = len(sample) >= SAMPLE_BYTES and decoded.endswith("\ufffd")  # a character cut by the sample's end
    if invalid == 0 or (invalid == 1 and cut):
        return "utf-8"
    if sum(1 for character in decoded if character > "\x7f" and character != "\ufffd") >= invalid:
        return "utf-8"
    guess = charset_normalizer.from_bytes(sample[:65536], threshold=0.5).best()  # short CJK samples score ~0.2
    if guess is not None and guess.encoding in NON_LATIN_ENCODINGS:  # Cyrillic, Greek, CJK, ...: not cp1252 garbage
        return guess.encoding
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def is_utf8(raw: bytes) -> bool:
    """Whether the bytes are valid UTF-8."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
