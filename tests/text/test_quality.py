"""Quality and language filters: each heuristic quarantines with its measured value."""

import polars as pl
import pytest

from assets.text.quality import apply_quality_filters
from assets.text.tokenize import tokenize_documents, tokenize_incrementally
from recipe.words import load_tokenizer


def _documents(texts: list[str], originals: list[str] | None = None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "doc_id": [f"d{i}" for i in range(len(texts))],
            "text": texts,
            "original_text": originals or texts,
            "label": ["x"] * len(texts),
            "source": ["f"] * len(texts),
            "source_row": list(range(len(texts))),
        }
    )


GOOD = "my vpn keeps dropping every hour since the update"


@pytest.mark.parametrize(
    ("threshold", "text", "original", "rule"),
    [
        ({"min_words": 3}, "help me", None, "quality_min_words"),
        ({"max_words": 12}, f"{GOOD} {GOOD}", None, "quality_max_words"),
        ({"min_mean_word_length": 3}, "a b c d e f", None, "quality_min_mean_word_length"),
        ({"max_mean_word_length": 12}, "a" * 24 + " " + "b" * 20, None, "quality_max_mean_word_length"),
        ({"max_symbol_ratio": 0.2}, "### ### ... ### x", None, "quality_max_symbol_ratio"),
        ({"min_alpha_word_fraction": 0.5}, "12 34 56 78 ok", None, "quality_min_alpha_word_fraction"),
        ({"max_duplicate_line_fraction": 0.3}, "x y z", "a\na\na\nb", "quality_max_duplicate_line_fraction"),
        ({"max_repeated_word_fraction": 0.5}, " ".join(["spam"] * 12), None, "quality_max_repeated_word_fraction"),
        (
            {"languages": ["en"], "min_language_confidence": 0.9},
            "Mein Laptop startet seit dem Update nicht mehr, bitte helfen Sie mir",
            None,
            "quality_language",
        ),
    ],
)
def test_each_heuristic_quarantines_a_failing_document_and_keeps_a_good_one(threshold, text, original, rule) -> None:
    documents = _documents([GOOD, text], [GOOD, original or text])
    kept, quarantine = apply_quality_filters(documents, threshold, "clean")
    assert kept["doc_id"].to_list() == ["d0"]
    assert quarantine.select("doc_id", "rule").rows() == [("d1", rule)]
    assert quarantine["value"][0] is not None


def test_no_thresholds_keeps_everything() -> None:
    documents = _documents(["x"])
    kept, quarantine = apply_quality_filters(documents, {}, "clean")
    assert kept.equals(documents) and quarantine.is_empty()


def test_already_tokenized_documents_are_reused_not_recomputed() -> None:
    tokenizer = load_tokenizer("en")
    documents = pl.DataFrame({"doc_id": ["a", "b", "c"], "text": ["VPN went down", "printers jammed", "new ticket"]})
    previous = tokenize_documents(documents[:2], tokenizer).with_columns(
        pl.when(pl.col("doc_id") == "a").then(pl.lit(["cached"])).otherwise(pl.col("tokens")).alias("tokens")
    )
    result, reused = tokenize_incrementally(documents, tokenizer, previous)
    assert reused == 2
    assert result["doc_id"].to_list() == ["a", "b", "c"]
    assert result["tokens"].to_list() == [["cached"], ["printers", "jammed"], ["new", "ticket"]]
    assert result["lemmas"][1].to_list() == ["printer", "jam"]
