"""Tokenization: spaCy tokens, lower-cased lookup lemmas, Snowball stems, placeholders intact."""

import polars as pl

from assets.tokenization import load_tokenizer, tokenize_documents


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
    from assets.cleaning import normalize_text
    from assets.tokenization import tokenize_texts
    from dagster_project.demo_corpus import generate_tickets

    records, _ = generate_tickets(3000, seed=9)
    texts = pl.DataFrame({"text": [r["body"] for r in records]}).select(normalize_text(pl.col("text")).alias("text"))
    tokenizer = load_tokenizer("en")
    assert tokenize_documents(texts, tokenizer)["tokens"].to_list() == tokenize_texts(
        texts["text"].to_list(), tokenizer
    )
