"""Cleaning: normalisation, PII masks, and duplicates that name what they duplicate."""

import polars as pl

from assets.cleaning import drop_exact_duplicates, normalize_documents, normalize_text


def _clean(text: str) -> str:
    return pl.select(normalize_text(pl.lit(text))).item()


def test_markup_entities_control_characters_and_whitespace_are_normalised() -> None:
    assert _clean("<p>Printer&nbsp;on   floor\u00a02</p><br/>is \x07jammed &amp; loud") == (
        "Printer on floor 2 is jammed & loud"
    )
    assert _clean("ﬁle ２ servers") == "file 2 servers"


def test_emails_and_phone_numbers_are_masked_but_ids_and_error_codes_are_not() -> None:
    text = "mail anna.b+it@corp.example.co.uk or call +44 20 7946 0958, (020) 7946 0958, 555-123-4567"
    assert _clean(text) == "mail <EMAIL> or call <PHONE>, <PHONE>, <PHONE>"
    untouched = "invoice INV-12345 failed with error 0x80070005 and 550 5.1.1 on 2024-05-01"
    assert _clean(untouched) == untouched


def _documents(texts: list[str], labels: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "doc_id": [f"d{i}" for i in range(len(texts))],
            "source_id": [None] * len(texts),
            "text": texts,
            "label": labels,
            "source": ["f.csv"] * len(texts),
            "source_row": list(range(2, len(texts) + 2)),
        },
        schema_overrides={"source_id": pl.String},
    )


def test_normalize_documents_keeps_the_original_text_and_blanks_empty_labels() -> None:
    cleaned = normalize_documents(_documents(["  <b>Hi</b> there "], [" "]))
    assert cleaned.select("text", "original_text", "label").row(0) == ("Hi there", "  <b>Hi</b> there ", None)


def test_later_exact_duplicates_are_quarantined_with_the_doc_id_they_duplicate() -> None:
    documents = _documents(["VPN down", "printer jam", "vpn DOWN", "vpn down"], ["vpn", "printer", "vpn", "network"])
    kept, quarantine = drop_exact_duplicates(documents, "clean")
    assert kept["doc_id"].to_list() == ["d0", "d1"]
    assert quarantine.select("doc_id", "duplicate_of", "rule", "value").rows() == [
        ("d2", "d0", "duplicate", None),
        ("d3", "d0", "duplicate", "conflicting label: vpn"),
    ]
    assert kept.height + quarantine.height == documents.height
