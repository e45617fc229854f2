"""Tokenization with spaCy, lower-cased lookup lemmas and NLTK Snowball stems, once per unique token."""

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import dagster as dg
import polars as pl

from assets.cleaning import CLEAN_DOCUMENTS, clean_documents
from assets.documents import empty_quarantine
from assets.metadata import write_stage
from assets.pii import PLACEHOLDERS
from dagster_project.partitions import dataset_versions
from dagster_project.resources import LakeResource
from rules import default_rule_book

TOKENIZED_DOCUMENTS = "tokenized_documents"

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

    nlp: "Language"
    lemma_table: "Table"
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
    """spaCy's tokenizer over many texts with `pipe` (the reference the fast path must match)."""
    return [[t.text for t in doc] for doc in tokenizer.nlp.tokenizer.pipe(texts, batch_size=batch_size)]


def tokenize_chunks(chunks: list[str], tokenizer: TokenizerBundle) -> list[list[str]]:
    """spaCy tokens of whitespace-free chunks, one chunk at a time."""
    return [[t.text for t in doc] for doc in tokenizer.nlp.tokenizer.pipe(chunks, batch_size=4096)]


def lemma_and_stem(tokens: list[str], tokenizer: TokenizerBundle) -> tuple[list[str], list[str]]:
    """Lower-cased lemma and Snowball stem of each token (meant for unique tokens)."""
    table = tokenizer.lemma_table
    lemmas = [t if t in PLACEHOLDERS else (table.get(t) or table.get(t.lower()) or t).lower() for t in tokens]
    stems = [t if t in PLACEHOLDERS else tokenizer.stem(t.lower()) for t in tokens]
    return lemmas, stems


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
    chunk_tokens = pl.DataFrame(
        {"chunk": chunks, "token": tokenize_chunks(chunks, tokenizer)},
        schema={"chunk": pl.String, "token": pl.List(pl.String)},
    )
    unique = chunk_tokens["token"].explode().drop_nulls().unique().to_list()
    lemmas, stems = lemma_and_stem(unique, tokenizer)
    words = pl.DataFrame({"token": unique, "lemma": lemmas, "stem": stems}, schema={
        "token": pl.String, "lemma": pl.String, "stem": pl.String})  # fmt: skip
    per_chunk = (
        chunk_tokens.explode("token")
        .join(words, on="token", how="left", maintain_order="left")
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


def reusable_tokens(lake: LakeResource, documents: pl.DataFrame) -> pl.DataFrame:
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


class TokenizationConfig(dg.Config):
    """The language whose tokenizer, lemma tables and stemmer are used."""

    language: str = "en"


@dg.asset(
    partitions_def=dataset_versions,
    deps=[clean_documents],
    group_name="prepare",
    kinds={"spacy", "polars", "delta"},
    code_version="2",
)
def tokenized_documents(
    context: dg.AssetExecutionContext, config: TokenizationConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """Clean documents with spaCy tokens, lower-cased lookup lemmas, Snowball stems and token counts."""
    version = context.partition_key
    clean = lake.scan(CLEAN_DOCUMENTS, [version]).drop("dataset_version").collect()
    previous = reusable_tokens(lake, clean)
    tokenized, reused = tokenize_incrementally(clean, load_tokenizer(config.language), previous)
    metadata = write_stage(
        lake, TOKENIZED_DOCUMENTS, "tokenize", version, tokenized, empty_quarantine(), default_rule_book().digest
    )
    metadata["tokens"] = int(tokenized["token_count"].sum())
    metadata["unique_lemmas"] = tokenized["lemmas"].explode().n_unique()
    metadata["reused_from_earlier_runs"] = reused
    metadata["tokenized_now"] = tokenized.height - reused
    return dg.MaterializeResult(metadata=metadata)
