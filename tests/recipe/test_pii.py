"""PII masking measured on a labelled set: recall per type, precision on text that must survive."""

from pathlib import Path

import polars as pl
import pytest

from recipe.pii import (
    iban_valid,
    luhn_valid,
    mask_pii,
    placeholder_counts,
)
from recipe.pii_policy import PiiPolicy, compile_national_id

POSITIVES = {
    "<EMAIL>": [
        "anna.b+it@corp.example.co.uk",
        "j.doe@example.com",
        "SUPPORT@Example.ORG",
        "first_last@sub.domain.io",
        "x@y.de",
        "o'brien@example.ie".replace("'", ""),
        "user.name-tag@mail-server.example.net",
        "ceo@bigcorp.com",
        "a1b2@c3d4.fr",
        "helpdesk@company.example",
    ],
    "<PHONE>": [
        "+44 20 7946 0958",
        "+1 (555) 123-4567",
        "+49 30 1234567",
        "+33 1 23 45 67 89",
        "(020) 7946 0958",
        "555-123-4567",
        "555.123.4567",
        "+91 98765 43210",
        "0044 20 7946 0958",
        "+61 2 9876 5432",
        "+81 3-1234-5678",
        "030 1234567",
        "0171-123 4567",
        "+41 44 668 18 00",
        "+34 912 345 678",
        "+31 20 794 6095",
        "(212) 555-0100",
        "+1-800-555-0199",
        "+353 1 234 5678",
        "+46 8 123 456 78",
    ],
    "<CARD>": [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5500 0000 0000 0004",
        "340000000000009",
        "6011000000000004",
        "3530111333300000",
        "4012888888881881",
        "5105 1051 0510 5100",
        "378282246310005",
        "4222222222222",
    ],
    "<IBAN>": [
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
        "CH9300762011623852957",
    ],
    "<IP>": ["10.0.0.12", "192.168.1.254", "8.8.8.8", "fe80::1ff:fe23:4567:890a", "2001:db8:0:0:0:0:2:1"],
    "<URL_CREDENTIALS>": ["https://bob:hunter2@files.corp.example/share", "ftp://svc:pa55@10.1.2.3/in"],
}

NEGATIVES = [
    "order 1234567890123 shipped",
    "invoice INV-12345 is due",
    "error 0x80070005 on install",
    "bounce 550 5.1.1",
    "version 5.1.2 released",
    "meeting at 10:30 on 2026-11-25",
    "ticket #46988",
    "card ending 4242",
    "4111 1111 1111 1112 is not a valid card",
    "room 2B on floor 3",
    "licence count 40 of 120",
    "DE00 1234 5678 9012 3456 78 is no IBAN",
    "asset tag LT-4821",
    "build 20261125.3",
    "v2 is 3x faster",
]

SENTENCE = "Please contact me about it: {} - thanks"


def test_recall_is_at_least_98_percent_for_email_phone_and_card_and_high_for_the_rest() -> None:
    recall = {}
    for placeholder, values in POSITIVES.items():
        masked = mask_pii(pl.Series([SENTENCE.format(v) for v in values]))
        hits = [placeholder in text and value not in text for text, value in zip(masked, values, strict=True)]
        recall[placeholder] = sum(hits) / len(values)
    assert recall["<EMAIL>"] >= 0.98 and recall["<PHONE>"] >= 0.98 and recall["<CARD>"] >= 0.98, recall
    assert min(recall.values()) >= 0.95, recall


def test_precision_nothing_is_masked_in_text_that_holds_no_pii() -> None:
    masked = mask_pii(pl.Series(NEGATIVES))
    assert masked.to_list() == NEGATIVES


def test_checksums_reject_lookalikes() -> None:
    assert luhn_valid("4111 1111 1111 1111") and not luhn_valid("4111 1111 1111 1112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82 WEST 1234 5698 7654 33")


def test_declared_national_id_patterns_and_counts_per_type() -> None:
    policy = PiiPolicy(national_ids=(compile_national_id("us_ssn", r"\b\d{3}-\d{2}-\d{4}\b", "<NATIONAL_ID>"),))
    masked = mask_pii(pl.Series(["ssn 123-45-6789, mail a@b.co, call +44 20 7946 0958 or a@b.co"]), policy)
    assert masked[0] == "ssn <NATIONAL_ID>, mail <EMAIL>, call <PHONE> or <EMAIL>"
    counts = placeholder_counts(masked, policy)
    assert (counts["email"], counts["phone"], counts["us_ssn"], counts["card"]) == (2, 1, 1, 0)


def test_types_left_out_of_the_policy_are_not_masked() -> None:
    masked = mask_pii(pl.Series(["mail a@b.co call +44 20 7946 0958"]), PiiPolicy(types=("phone",)))
    assert masked[0] == "mail a@b.co call <PHONE>"


def test_person_names_are_masked_by_a_configured_spacy_pipeline(tmp_path: Path) -> None:
    import spacy

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PERSON", "pattern": "Anna Schmidt"}, {"label": "ORG", "pattern": "Acme"}])
    nlp.to_disk(tmp_path / "ner")
    masked = mask_pii(pl.Series(["Anna Schmidt from Acme says hi", None]), PiiPolicy(ner_model=str(tmp_path / "ner")))
    assert masked.to_list() == ["<PERSON> from Acme says hi", None]


@pytest.mark.parametrize("value", ["4111 1111 1111 1111", "j.doe@example.com"])
def test_masking_keeps_null_texts_null(value: str) -> None:
    assert mask_pii(pl.Series([value, None])).to_list()[1] is None
