"""The text recipe: one preparation for training and serving, refusals with reasons, a stable identity."""

import json

import polars as pl
import pytest

from recipe.normalize import CleaningOptions
from recipe.pii_policy import PiiPolicy, compile_national_id
from recipe.text_recipe import TextRecipe

RAW = [
    "<p>Hi,&nbsp;my VPN drops</p> mail bob@corp.example or call +44 20 7946 0958",
    "Printer jammed again.\n\nOn Mon, 3 Nov 2026 at 09:12, IT <it@corp.example> wrote:\n> restart it?",
    "card 4111 1111 1111 1111 was charged twice\n-- \nAnna | Finance",
    "ssn 123-45-6789 on the form",
]


def test_preparing_prepared_text_changes_nothing() -> None:
    recipe = TextRecipe(pii=PiiPolicy(national_ids=(compile_national_id("ssn", r"\b\d{3}-\d{2}-\d{4}\b", "<SSN>"),)))
    once = [p.text for p in recipe.prepare(RAW)]
    assert once == [
        "Hi, my VPN drops mail <EMAIL> or call <PHONE>",
        "Printer jammed again.",
        "card <CARD> was charged twice",
        "ssn <SSN> on the form",
    ]
    assert [p.text for p in recipe.prepare(once)] == once


def test_a_literal_placeholder_in_raw_text_is_kept_as_cleaning_keeps_it() -> None:
    recipe = TextRecipe()
    assert recipe.apply(pl.Series(["reset for <EMAIL> please <b>now</b>"]))[0] == "reset for <EMAIL> please now"


def test_texts_cleaning_would_quarantine_are_refused_with_a_reason() -> None:
    recipe = TextRecipe(min_chars=3, max_chars=40)
    empty, short, long, fine = recipe.prepare(["<br/>  ", "ok", "printer " * 10, "printer jam on floor 2"])
    assert empty.refused == "nothing is left of the text after cleaning"
    assert "needs 3" in short.refused and "at most 40" not in short.refused
    assert long.refused and "<= 40" in long.refused
    assert fine.refused is None and fine.text == "printer jam on floor 2"


def test_a_recipe_survives_json_and_its_digest_names_its_settings() -> None:
    recipe = TextRecipe(
        CleaningOptions(strip_replies=False),
        PiiPolicy(types=("email",), national_ids=(compile_national_id("id", r"\bX\d{4}\b", "<ID>"),)),
        3,
        2000,
        "abc",
    )
    again = TextRecipe.from_dict(json.loads(json.dumps(recipe.to_dict())))
    assert again == recipe and again.digest == recipe.digest
    assert TextRecipe(CleaningOptions(mask_pii=False)).digest != TextRecipe().digest


@pytest.mark.parametrize("mask", [True, False])
def test_masking_follows_the_recipe(mask: bool) -> None:
    prepared = TextRecipe(CleaningOptions(mask_pii=mask)).prepare(["mail bob@corp.example"])[0].text
    assert prepared == ("mail <EMAIL>" if mask else "mail bob@corp.example")
