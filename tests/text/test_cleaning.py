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
