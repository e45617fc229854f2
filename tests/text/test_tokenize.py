"""Tokenization: spaCy tokens, lower-cased lookup lemmas, Snowball stems, placeholders intact."""

import polars as pl

from assets.text.tokenize import tokenize_documents
from recipe.words import load_tokenizer


def test_tokens_lemmas_and_stems_line_up_per_document() -> None:
    frame = pl.DataFrame({"text": ["The printers were running, call <PHONE>!", "My VPN went down", ""]})
    result = tokenize_documents(frame, load_tokenizer("en"))
    first = result.row(0, named=True)
    assert first["tokens"] == ["The", "printers", "were", "running", ",", "call", "<PHONE>", "!"]
    assert first["lemmas"] == ["the", "printer", "be", "run", ",", "call", "<PHONE>", "!"]
    assert first["stems"] == ["the", "printer", "were", "run", ",", "call", "<PHONE>", "!"]
    assert result["lemmas"][1].to_list() == ["my", "vpn", "go", "down"]
    assert result["token_count"].to_list() == [8, 4, 0]


def test_unique_chunk_tokenization_equals_spacy_on_every_demo_document() -> None:
    from assets.demo.tickets import generate_tickets
    from recipe.normalize import normalize_text
    from recipe.words import tokenize_texts

    records, _ = generate_tickets(3000, seed=9)
    texts = pl.DataFrame({"text": normalize_text(pl.Series([r["body"] for r in records]))})
    tokenizer = load_tokenizer("en")
    assert tokenize_documents(texts, tokenizer)["tokens"].to_list() == tokenize_texts(
        texts["text"].to_list(), tokenizer
    )


def test_chunk_shortcuts_match_spacy_on_digits_special_cases_and_punctuation() -> None:
    from recipe.words import tokenize_texts

    texts = [
        "meet at 10a.m. or 2p.m. , it's 10km away ; call #45678? or #41234? now",
        "v1.2.3 costs $45.99 (3-4 days) e.g. U.S. cannot gonna don't 1st 2nd 42nd",
        "INV-12345 LT-4821. 0x80070005 550 5.1.1 <EMAIL> <PHONE> :-) 12:30 1/2 50% 3x",
        "https://example.com/a?b=1 user@example.com 2026-11-25T10:00:00Z #1 No.5",
    ]
    tokenizer = load_tokenizer("en")
    frame = pl.DataFrame({"text": texts})
    assert tokenize_documents(frame, tokenizer)["tokens"].to_list() == tokenize_texts(texts, tokenizer)


def test_the_language_choices_are_the_languages_with_a_stemmer() -> None:
    from typing import get_args

    from recipe.words import SNOWBALL_LANGUAGES, Language

    assert set(get_args(Language)) == set(SNOWBALL_LANGUAGES)


def test_analyzed_text_is_the_lemmas_then_the_stems_of_tokenized_documents() -> None:
    from recipe.words import analyzed_texts

    texts = ["The printers were running, call <PHONE>!", "My VPN went down", ""]
    tokenized = tokenize_documents(pl.DataFrame({"text": texts}), load_tokenizer("en"))
    expected = tokenized.select(pl.concat_list("lemmas", "stems").list.join(" "))["lemmas"].to_list()
    assert analyzed_texts(texts) == expected


def test_token_counts_count_what_tokenized_documents_count_on_every_demo_document() -> None:
    from assets.demo.tickets import generate_tickets
    from assets.text.tokenize import token_counts
    from recipe.normalize import normalize_text

    records, _ = generate_tickets(1000, seed=4)
    texts = normalize_text(pl.Series([r["body"] for r in records] + [None, ""], dtype=pl.String))
    tokenizer = load_tokenizer("en")
    expected = tokenize_documents(pl.DataFrame({"text": texts}), tokenizer)["token_count"]
    assert token_counts(texts, tokenizer).to_list() == expected.to_list()
