"""Words of a text: spaCy tokens, lower-cased lookup lemmas and Snowball stems, alike in training and serving."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from recipe.pii_policy import PLACEHOLDERS

if TYPE_CHECKING:
    from spacy.language import Language as SpacyLanguage
    from spacy.lookups import Table

_LETTER = re.compile(r"[^\W\d_]")
SNOWBALL_LANGUAGES = {
    "da": "danish",
    "de": "german",
    "en": "english",
    "es": "spanish",
    "fi": "finnish",
    "fr": "french",
    "it": "italian",
    "nl": "dutch",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sv": "swedish",
}
Language = Literal["da", "de", "en", "es", "fi", "fr", "it", "nl", "pt", "ro", "ru", "sv"]  # SNOWBALL_LANGUAGES


@dataclass(frozen=True)
class TokenizerBundle:
    """A spaCy pipeline with a lookup lemmatizer, and the Snowball stemmer for its language."""

    nlp: SpacyLanguage
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
    """spaCy's tokenizer over many texts with `pipe` (the reference the fast path must match)."""
    return [[t.text for t in doc] for doc in tokenizer.nlp.tokenizer.pipe(texts, batch_size=batch_size)]


def lemma_and_stem(tokens: list[str], tokenizer: TokenizerBundle) -> tuple[list[str], list[str]]:
    """Lower-cased lemma and Snowball stem of each token (meant for unique tokens)."""
    table = tokenizer.lemma_table
    lemmas = [t if t in PLACEHOLDERS else (table.get(t) or table.get(t.lower()) or t).lower() for t in tokens]
    # A token without letters (numbers, punctuation) stems to itself.
    stems = [t if t in PLACEHOLDERS or not _LETTER.search(t) else tokenizer.stem(t.lower()) for t in tokens]
    return lemmas, stems


def analyzed_texts(texts: list[str], language: str = "en") -> list[str]:
    """Each text as its lemmas then its stems, space-joined: what word n-gram models read (as tokenized_documents)."""
    tokenizer = load_tokenizer(language)
    token_lists = tokenize_texts(texts, tokenizer)
    unique = sorted({token for tokens in token_lists for token in tokens})
    lemmas, stems = lemma_and_stem(unique, tokenizer)
    lemma_of, stem_of = dict(zip(unique, lemmas, strict=True)), dict(zip(unique, stems, strict=True))
    return [" ".join([lemma_of[t] for t in tokens] + [stem_of[t] for t in tokens]) for tokens in token_lists]
