"""Normalisation: each rule, reply and signature removal, and the switches that turn them off."""

import polars as pl
import pytest

from recipe.normalize import CleaningOptions, normalize_text


def _clean(text: str, options: CleaningOptions | None = None) -> str:
    return normalize_text(pl.Series([text]), options or CleaningOptions())[0]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("ﬁle ２ servers", "file 2 servers"),  # NFKC
        ("<p>Printer&nbsp;on   floor\u00a02</p><br/>is \x07jammed &amp; loud", "Printer on floor 2 is jammed & loud"),
        ("line one\r\nline\ttwo\n\n\nthree", "line one line two three"),
        ("<!-- tracking --><div>VPN &lt;down&gt;</div>", "VPN <down>"),
    ],
    ids=["nfkc", "markup-entities-control", "whitespace", "comments-and-escaped-text"],
)
def test_normalisation(raw: str, clean: str) -> None:
    assert _clean(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "VPN is down again.\n\nOn Mon, 3 Nov 2026 at 09:12, IT <it@corp.example> wrote:\n> Did you restart?\n> Bye",
        "VPN is down again.\n-----Original Message-----\nFrom: IT\nSent: Monday\nDid you restart?",
        "VPN is down again.\nFrom: IT Support\nSent: Monday, 3 November 2026\nSubject: RE: vpn\nDid you restart?",
        "VPN is down again.\n> quoted line\n",
        "VPN is down again.\n-- \nAnna Example | Finance | +44 20 7946 0958",
        "VPN is down again.\nSent from my iPhone",
    ],
    ids=["on-wrote", "original-message", "outlook-header", "quoted-lines", "sig-delimiter", "sent-from"],
)
def test_quoted_replies_and_signatures_are_removed(raw: str) -> None:
    assert _clean(raw) == "VPN is down again."


def test_reply_and_signature_removal_can_be_turned_off() -> None:
    raw = "VPN is down.\n> quoted\n-- \nAnna"
    assert _clean(raw, CleaningOptions(strip_replies=False, strip_signatures=False)) == "VPN is down. > quoted -- Anna"
