"""Cleaning documents: the recipe applied to a frame, the original text kept, labels normalised."""

import polars as pl

from assets.text.cleaning import normalize_documents
from recipe.normalize import CleaningOptions
from recipe.text_recipe import TextRecipe


def test_normalize_documents_masks_pii_keeps_the_original_and_blanks_empty_labels() -> None:
    raw = pl.DataFrame({"text": ["  <b>Mail</b> bob@corp.example "], "label": [" "]})
    cleaned = normalize_documents(raw)
    assert cleaned.select("text", "original_text", "label").row(0) == (
        "Mail <EMAIL>",
        "  <b>Mail</b> bob@corp.example ",
        None,
    )
    unmasked = normalize_documents(raw, TextRecipe(CleaningOptions(mask_pii=False)))
    assert unmasked["text"][0] == "Mail bob@corp.example"


def test_a_nul_in_a_text_is_cleaned_away_and_a_label_holding_one_is_quarantined() -> None:
    from assets.text.cleaning import clean_version, recipe_for
    from rules import load_rule_book

    rules = load_rule_book().for_asset("clean_documents")
    texts = ["my vpn\x00 keeps dropping every hour", "the printer on floor three is jammed", "reset my sap password"]
    raw = pl.DataFrame(
        {
            "doc_id": ["a", "b", "c"],
            "text": texts,
            "label": ["network", "hard\x00ware", "access"],
            "source": ["t.csv"] * 3,
            "source_row": [2, 3, 4],
        }
    )
    result = clean_version(raw, rules, recipe_for(rules, CleaningOptions()))
    assert "\x00" not in "".join(result.kept["text"].to_list())
    assert result.kept["label"].to_list() == ["network", "access"]
    (reject,) = result.rejected.iter_rows(named=True)
    assert (reject["rule"], reject["source_row"]) == ("label_printable", 3)
