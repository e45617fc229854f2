"""tokenized_documents: clean documents with spaCy tokens, lookup lemmas, Snowball stems and token counts."""

import dagster as dg
from pydantic import Field

from assets.metadata import per_dataset, stage_metadata
from assets.partitions import dataset_versions
from assets.resources import LakeResource, LandingResource
from assets.storage.records import ANSWER_COLUMNS, empty_quarantine, read_version, write_stage
from assets.text.tokenize import reusable_tokens, token_counts, tokenize_incrementally
from contracts.tables import CLEAN_DOCUMENTS, TOKENIZED_DOCUMENTS
from recipe.words import Language, load_tokenizer


class TokenizationConfig(dg.Config):
    """The language whose tokenizer, lemma tables and stemmer are used."""

    language: Language = Field("en", description="the tokenizer, lemma tables and stemmer of this language")


@dg.asset(
    partitions_def=dataset_versions,
    deps=[CLEAN_DOCUMENTS],
    group_name="prepare",
    kinds={"spacy", "polars", "delta"},
    code_version="2",
)
def tokenized_documents(
    context: dg.AssetExecutionContext, config: TokenizationConfig, lake: LakeResource, landing: LandingResource
) -> dg.MaterializeResult:
    """Clean documents with spaCy tokens, lower-cased lookup lemmas, Snowball stems and token counts (a generation
    dataset's responses and a preference dataset's answers counted too)."""
    version = context.partition_key
    clean = read_version(lake, CLEAN_DOCUMENTS, version)
    previous = reusable_tokens(lake, clean)
    tokenizer = load_tokenizer(config.language)
    tokenized, reused = tokenize_incrementally(clean, tokenizer, previous)
    for column in (column for column in ANSWER_COLUMNS if column in tokenized.columns):  # rules bound them too
        tokenized = tokenized.with_columns(token_counts(tokenized[column], tokenizer).alias(f"{column}_token_count"))
    delta_version = write_stage(lake, TOKENIZED_DOCUMENTS, "tokenize", version, tokenized, empty_quarantine())
    metadata = stage_metadata(
        lake, TOKENIZED_DOCUMENTS, delta_version, tokenized, empty_quarantine(), landing.rule_book(version).digest
    )
    metadata["tokens"] = int(tokenized["token_count"].sum())
    metadata["unique_lemmas"] = tokenized["lemmas"].explode().n_unique()
    metadata["reused_from_earlier_runs"] = reused
    metadata["tokenized_now"] = tokenized.height - reused
    return dg.MaterializeResult(metadata=per_dataset(landing.dataset(version).name, metadata))
