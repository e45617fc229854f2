"""The shared record helpers: the content hash every doc_id and dedup key is made of."""

from __future__ import annotations

import hashlib

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from assets.storage.records import content_hash


@given(st.lists(st.one_of(st.none(), st.text()), max_size=30))
def test_content_hash_is_the_sha256_prefix_of_each_utf8_text_and_null_hashes_like_empty(texts) -> None:
    expected = [hashlib.sha256((text or "").encode("utf-8", "surrogatepass")).hexdigest()[:16] for text in texts]
    hashed = content_hash(pl.Series("text", texts, dtype=pl.String))
    assert hashed.to_list() == expected and hashed.name == "text" and hashed.dtype == pl.String
