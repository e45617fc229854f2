"""The PII policy a rules file declares: which types are masked, extra patterns, and the NER model."""

from __future__ import annotations

from dataclasses import dataclass, field

from recipe.regex import check_pattern

EMAIL = "<EMAIL>"
PHONE = "<PHONE>"
CARD = "<CARD>"
IBAN = "<IBAN>"
IP = "<IP>"
URL_CREDENTIALS = "<URL_CREDENTIALS>"
PERSON = "<PERSON>"
BUILTIN_TYPES = ("url_credentials", "email", "iban", "card", "ip", "phone")
PLACEHOLDERS = (EMAIL, PHONE, CARD, IBAN, IP, URL_CREDENTIALS, PERSON)


@dataclass(frozen=True)
class NationalIdPattern:
    """A national-id (or any other) pattern declared in the rules, with its placeholder."""

    name: str
    pattern: str
    placeholder: str


@dataclass(frozen=True)
class PiiPolicy:
    """Which PII types are masked, extra declared patterns, and the optional NER pipeline for names."""

    types: tuple[str, ...] = BUILTIN_TYPES
    national_ids: tuple[NationalIdPattern, ...] = ()
    ner_model: str | None = None
    placeholders: dict[str, str] = field(
        default_factory=lambda: {
            "url_credentials": URL_CREDENTIALS,
            "email": EMAIL,
            "iban": IBAN,
            "card": CARD,
            "ip": IP,
            "phone": PHONE,
        }
    )

    def all_placeholders(self) -> dict[str, str]:
        found = {t: self.placeholders[t] for t in self.types}
        found.update({p.name: p.placeholder for p in self.national_ids})
        if self.ner_model:
            found["person"] = PERSON
        return found


def compile_national_id(name: str, pattern: str, placeholder: str) -> NationalIdPattern:
    """Check a declared pattern compiles in Polars' regex engine, which masks with it, and build it."""
    return NationalIdPattern(name, check_pattern(pattern), placeholder)
