"""Tokenization with spaCy, lower-cased lookup lemmas and NLTK Snowball stems, once per unique token."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import polars as pl

from assets.cleaning import PLACEHOLDERS

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.lookups import Table

SNOWBALL_LANGUAGES = {
    "da": "danish", "de": "german", "en": "english", "es": "spanish", "fi": "finnish", "fr": "french",
    "it": "italian", "nl": "dutch", "pt": "portuguese", "ro": "romanian", "ru": "russian", "sv": "swedish",
}  # fmt: skip


@dataclass(frozen=True)
class TokenizerBundle:
    """A spaCy pipeline with a lookup lemmatizer, and the Snowball stemmer for its language."""

    nlp: Language
    lemma_table: Table
    stem: object


@lru_cache(maxsize=4)
def load_tokenizer(language: str = "en") -> TokenizerBundle:
    """Build a blank spaCy pipeline with lookup lemmas (spacy-lookups-data) and its stemmer."""
    import spacy
    from nltk.stem.snowball import SnowballStemmer
    from spacy.symbols import ORTH

    if language not in SNOWBALL_LANGUAGES:
        raise ValueError(f"no Snowball stemmer for language {language!r} (known: {', '.join(SNOWBALL_LANGUAGES)})")
    nlp = spacy.blank(language)
    lemmatizer = nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    for placeholder in PLACEHOLDERS:
        nlp.tokenizer.add_special_case(placeholder, [{ORTH: placeholder}])
    table = lemmatizer.lookups.get_table("lemma_lookup")  # keyed by string hash: use .get
    return TokenizerBundle(nlp, table, SnowballStemmer(SNOWBALL_LANGUAGES[language]).stem)


def tokenize_texts(texts: list[str], tokenizer: TokenizerBundle, batch_size: int = 1000) -> list[list[str]]:
    """spaCy's tokenizer over many texts with `pipe`."""
    return [[t.text for t in doc] for doc in tokenizer.nlp.tokenizer.pipe(texts, batch_size=batch_size)]


def lemma_and_stem(tokens: list[str], tokenizer: TokenizerBundle) -> tuple[list[str], list[str]]:
    """Lower-cased lemma and Snowball stem of each token (meant for unique tokens)."""
    table = tokenizer.lemma_table
    lemmas = [t if t in PLACEHOLDERS else (table.get(t) or table.get(t.lower()) or t).lower() for t in tokens]
    stems = [t if t in PLACEHOLDERS else tokenizer.stem(t.lower()) for t in tokens]
    return lemmas, stems


def tokenize_documents(documents: pl.DataFrame, tokenizer: TokenizerBundle) -> pl.DataFrame:
    """Add `tokens`, `lemmas`, `stems` and `token_count` to a documents frame."""
    tokens = pl.Series("tokens", tokenize_texts(documents["text"].to_list(), tokenizer), dtype=pl.List(pl.String))
    unique = tokens.explode().drop_nulls().unique().to_list()
    lemmas, stems = lemma_and_stem(unique, tokenizer)
    return documents.with_columns(tokens).with_columns(
        pl.col("tokens").list.eval(pl.element().replace_strict(unique, lemmas)).alias("lemmas"),
        pl.col("tokens").list.eval(pl.element().replace_strict(unique, stems)).alias("stems"),
        pl.col("tokens").list.len().cast(pl.Int64).alias("token_count"),
    )
