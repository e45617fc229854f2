"""The text recipe: how `clean_documents` prepared the texts a model learned from, applied again wherever
text meets that model (evaluation, batch scoring, `refinery predict`, the service, monitoring)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import polars as pl

from recipe.normalize import CleaningOptions, normalize_text, where_matching
from recipe.pii import mask_pii
from recipe.pii_policy import PERSON, NationalIdPattern, PiiPolicy

_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use characters that no normalisation step touches
_PLACEHOLDER = r"<[A-Z][A-Z0-9_]*>"


@dataclass(frozen=True)
class PreparedText:
    """One text as the model sees it, or why the model must not see it."""

    text: str
    refused: str | None = None


@dataclass(frozen=True)
class TextRecipe:
    """Cleaning options, PII policy and the text-length bounds of the rules a model's data passed."""

    options: CleaningOptions = field(default_factory=CleaningOptions)
    pii: PiiPolicy = field(default_factory=PiiPolicy)
    min_chars: int | None = None
    max_chars: int | None = None
    rules_hash: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TextRecipe:
        """The recipe a `to_dict` produced (as read back from JSON)."""
        pii = dict(values.get("pii") or {})
        pii["types"] = tuple(pii.get("types", PiiPolicy().types))
        pii["national_ids"] = tuple(NationalIdPattern(**p) for p in pii.get("national_ids", ()))
        return cls(
            options=CleaningOptions(**(values.get("options") or {})),
            pii=PiiPolicy(**pii),
            min_chars=values.get("min_chars"),
            max_chars=values.get("max_chars"),
            rules_hash=str(values.get("rules_hash", "")),
        )

    @property
    def digest(self) -> str:
        """A short hash of the recipe: equal recipes prepare texts equally."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def apply(self, texts: pl.Series) -> pl.Series:
        """Normalise and mask texts; placeholders already in a text (`<EMAIL>`) survive, so applying twice
        changes nothing. `clean_documents` and every model input go through this one function."""
        placeholders = sorted(set(self.pii.all_placeholders().values()) | {PERSON}, key=len, reverse=True)
        guarded = [f"{_OPEN}{p[1:-1]}{_CLOSE}" for p in placeholders]
        texts = where_matching(texts, _PLACEHOLDER, lambda t: t.str.replace_many(placeholders, guarded))
        texts = normalize_text(texts, self.options)
        if self.options.mask_pii:
            texts = mask_pii(texts, self.pii)
        return where_matching(texts, _OPEN, lambda t: t.str.replace_many(guarded, placeholders))

    def prepare(self, texts: list[str]) -> list[PreparedText]:
        """Each text as the model must see it, or refused where `clean_documents` would have quarantined it."""
        prepared = self.apply(pl.Series("text", texts, dtype=pl.String)).to_list()
        return [self.check(text or "") for text in prepared]

    def check(self, text: str) -> PreparedText:
        """A prepared text, refused when it is empty or outside the length the model learned from."""
        if not text:
            return PreparedText("", "nothing is left of the text after cleaning")
        if self.min_chars is not None and len(text) < self.min_chars:
            return PreparedText(text, f"the cleaned text has {len(text)} characters; the model needs {self.min_chars}")
        if self.max_chars is not None and len(text) > self.max_chars:
            limit = self.max_chars
            return PreparedText(text, f"the cleaned text has {len(text)} characters; the model learned from <= {limit}")
        return PreparedText(text)
