"""Tokenization of documents with spaCy, lookup lemmas and Snowball stems (recipe.words), once per unique token."""

from __future__ import annotations

import re

import polars as pl

from assets.storage.delta import Lake
from contracts.tables import TOKENIZED_DOCUMENTS
from recipe.words import TokenizerBundle, lemma_and_stem

_DIGIT = re.compile(r"\d")


def _tokenize_joined(texts: list[str], tokenizer: TokenizerBundle, batch_chars: int) -> list[list[tuple[int, int]]]:
    """(start, end) offsets of the spaCy tokens of each whitespace-free text, tokenizing many at once.

    spaCy tokenizes space-separated chunks independently, so joining them with single spaces gives
    each the tokens it would get alone, without one Doc per chunk.
    """
    import numpy as np

    spans: list[list[tuple[int, int]]] = [[] for _ in texts]
    start = 0
    while start < len(texts):
        stop, size = start, 0
        while stop < len(texts) and (stop == start or size < batch_chars):
            size += len(texts[stop]) + 1
            stop += 1
        batch = texts[start:stop]
        offsets = np.cumsum([0] + [len(t) + 1 for t in batch[:-1]])
        doc = tokenizer.nlp.tokenizer(" ".join(batch))
        owners = np.searchsorted(offsets, [token.idx for token in doc], side="right") - 1
        for token, owner in zip(doc, owners, strict=True):
            begin = token.idx - int(offsets[owner])
            spans[start + owner].append((begin, begin + len(token.text)))
        start = stop
    return spans


def tokenize_chunks(chunks: list[str], tokenizer: TokenizerBundle, batch_chars: int = 200_000) -> list[list[str]]:
    """spaCy tokens of whitespace-free chunks, each chunk's tokens being substrings of it.

    - A chunk of ASCII letters with no tokenizer special case is one token.
    - spaCy's rules look at digit classes, never at digit values, so chunks that differ only in their
      digits (ticket numbers, asset tags) are tokenized once, as their digits-to-0 form, and each gets
      the same token offsets. Chunks holding a special case with digits (`1a.m.`) are tokenized as they are.
    """
    special = tokenizer.nlp.tokenizer.rules or {}
    if any(" " in key and key.strip() for key in special):  # a special case spanning a space: no joining
        return [[t.text for t in doc] for doc in tokenizer.nlp.tokenizer.pipe(chunks, batch_size=4096)]
    digit_cases = [re.escape(key) for key in special if _DIGIT.search(key)]
    holds_digit_case = re.compile("|".join(digit_cases)).search if digit_cases else lambda _: None
    forms: dict[str, int] = {}
    form_of: list[int | None] = []
    for chunk in chunks:
        if chunk.isalpha() and chunk.isascii() and chunk not in special:
            form_of.append(None)
            continue
        form = chunk
        if _DIGIT.search(chunk) and not holds_digit_case(chunk):
            form = _DIGIT.sub("0", chunk)
        form_of.append(forms.setdefault(form, len(forms)))
    spans = _tokenize_joined(list(forms), tokenizer, batch_chars)
    return [
        [chunk] if form is None else [chunk[begin:end] for begin, end in spans[form]]
        for chunk, form in zip(chunks, form_of, strict=True)
    ]


def tokenize_documents(documents: pl.DataFrame, tokenizer: TokenizerBundle) -> pl.DataFrame:
    """Add `tokens`, `lemmas`, `stems` and `token_count` to a documents frame of cleaned text.

    spaCy's tokenizer splits on single spaces first and tokenizes each chunk on its own, so after
    cleaning (which collapses whitespace) every distinct chunk is tokenized once, and lemmas and
    stems are computed once per distinct token; Polars joins the results back. The output equals
    `tokenize_texts` on the same texts (a test pins this).
    """
    rows = documents.select(pl.col("text").fill_null("").str.split(" ").alias("chunk")).with_row_index("row")
    exploded = rows.explode("chunk").filter(pl.col("chunk") != "").with_row_index("position")
    chunks = exploded.select(pl.col("chunk").unique(maintain_order=True))["chunk"].to_list()
    token_lists = tokenize_chunks(chunks, tokenizer)
    chunk_tokens = pl.DataFrame(
        {
            "chunk": [chunk for chunk, tokens in zip(chunks, token_lists, strict=True) for _ in tokens],
            "token": [token for tokens in token_lists for token in tokens],
        },
        schema={"chunk": pl.String, "token": pl.String},
    )
    unique = chunk_tokens["token"].unique().to_list()
    lemmas, stems = lemma_and_stem(unique, tokenizer)
    words = pl.DataFrame(
        {"token": unique, "lemma": lemmas, "stem": stems},
        schema={"token": pl.String, "lemma": pl.String, "stem": pl.String},
    )
    per_chunk = (
        chunk_tokens.join(words, on="token", how="left", maintain_order="left")
        .group_by("chunk", maintain_order=True)
        .agg("token", "lemma", "stem")
    )
    per_row = (
        exploded.join(per_chunk, on="chunk", how="left")
        .sort("position")
        .group_by("row", maintain_order=True)
        .agg(pl.col(c).list.explode(keep_nulls=False, empty_as_null=False) for c in ("token", "lemma", "stem"))
    )
    result = rows.select("row").join(per_row, on="row", how="left", maintain_order="left")
    empty = pl.lit([], dtype=pl.List(pl.String))
    return documents.with_columns(
        result["token"].fill_null(empty).alias("tokens"),
        result["lemma"].fill_null(empty).alias("lemmas"),
        result["stem"].fill_null(empty).alias("stems"),
    ).with_columns(pl.col("tokens").list.len().cast(pl.Int64).alias("token_count"))


def reusable_tokens(lake: Lake, documents: pl.DataFrame) -> pl.DataFrame:
    """Tokenized rows of earlier materializations (any version) for documents with the same id and text."""
    if not lake.exists(TOKENIZED_DOCUMENTS) or documents.is_empty():
        return pl.DataFrame()
    wanted = documents.select("doc_id", "text").lazy()
    return (
        lake.scan(TOKENIZED_DOCUMENTS)
        .select("doc_id", "text", "tokens", "lemmas", "stems", "token_count")
        .join(wanted, on=["doc_id", "text"], how="semi")
        .unique("doc_id", keep="any")
        .collect()
    )


def token_counts(texts: pl.Series, tokenizer: TokenizerBundle) -> pl.Series:
    """How many tokens each text has (as `token_count` counts them), each distinct space-separated chunk
    tokenized once."""
    rows = pl.DataFrame({"chunk": texts.fill_null("").str.split(" ")}).with_row_index("row").explode("chunk")
    rows = rows.filter(pl.col("chunk") != "")
    chunks = rows["chunk"].unique(maintain_order=True).to_list()
    sizes = pl.DataFrame(
        {"chunk": chunks, "size": [len(t) for t in tokenize_chunks(chunks, tokenizer)]},
        schema={"chunk": pl.String, "size": pl.Int64},
    )
    per_row = rows.join(sizes, on="chunk", how="left").group_by("row").agg(pl.col("size").sum())
    counts = pl.DataFrame({"row": range(texts.len())}, schema={"row": pl.UInt32}).join(per_row, on="row", how="left")
    return counts.sort("row")["size"].fill_null(0).cast(pl.Int64)


def tokenize_incrementally(
    documents: pl.DataFrame, tokenizer: TokenizerBundle, previous: pl.DataFrame
) -> tuple[pl.DataFrame, int]:
    """Tokenize only the documents `previous` lacks; returns the frame in input order and how many were reused."""
    if previous.is_empty():
        return tokenize_documents(documents, tokenizer), 0
    order = documents.with_row_index("__order")
    reused = order.join(previous.drop("text"), on="doc_id", how="inner")
    fresh = tokenize_documents(order.join(previous, on="doc_id", how="anti"), tokenizer)
    combined = pl.concat([reused.select(fresh.columns), fresh]).sort("__order").drop("__order")
    return combined, reused.height


def analyzed_words(tokenized: pl.DataFrame) -> pl.DataFrame:
    """Each document's lemmas then stems as one string (doc_id, analyzed): what a TF-IDF model's word n-grams read."""
    return tokenized.select("doc_id", pl.concat_list("lemmas", "stems").list.join(" ").alias("analyzed"))
