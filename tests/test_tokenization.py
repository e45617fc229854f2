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
