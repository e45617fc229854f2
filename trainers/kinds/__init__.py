"""The model kinds, in one table: every caller asks here what a model folder is and how to train, load, judge or
serve it, and an unknown kind is refused by name. A new kind is one module and one entry in `KINDS`."""

from __future__ import annotations

from pathlib import Path

from contracts.model_folder import CAUSAL_LM, CLASSIFIER, DOMAIN_LM, MULTITASK, PREFERENCE, TRANSFORMER
from trainers.bundle import CLASSIFICATION, DOCUMENTS, GENERATION, PAIRS, BundleManifest
from trainers.kinds import causal_lm, domain_lm, multitask, preference, tfidf, transformer
from trainers.kinds.kind import ModelKind
from trainers.registry import model_card

__all__ = ["KINDS", "ModelKind", "kind_named", "kind_of", "kind_of_card", "load_classifier", "training_kind"]

KINDS: dict[str, ModelKind] = {
    kind.name: kind
    for kind in (transformer.KIND, multitask.KIND, tfidf.KIND, causal_lm.KIND, preference.KIND, domain_lm.KIND)
}
DEFAULT_KIND = {  # by the bundle's kind
    CLASSIFICATION: TRANSFORMER,
    GENERATION: CAUSAL_LM,
    PAIRS: PREFERENCE,
    DOCUMENTS: DOMAIN_LM,
}


class UnknownModelKindError(ValueError):
    """A card or a request names a kind that is not in the table."""


def kind_named(name: str) -> ModelKind:
    """The kind called `name`; an unknown name is refused, naming the known ones."""
    kind = KINDS.get(name)
    if kind is None:
        raise UnknownModelKindError(f"unknown model kind {name!r}: Refinery knows {', '.join(KINDS)}")
    return kind


def kind_of_card(card: dict) -> ModelKind:
    """The kind a model card declares (a card written before kinds were recorded is an encoder classifier's)."""
    return kind_named(card.get("model_kind", TRANSFORMER))


def kind_of(folder: Path) -> ModelKind:
    """The kind of an exported model folder, from its card."""
    return kind_of_card(model_card(folder))


def load_classifier(folder: Path, *, max_length: int | None = None, quantize: bool = False):
    """A classifier model folder loaded for inference; a generator's folder is refused by name."""
    card = model_card(folder)
    kind = kind_of_card(card)
    if kind.family != CLASSIFIER:
        raise ValueError(f"model {folder.name} is a {kind.name} model ({kind.description}): it labels no texts")
    return kind.load(folder, card, max_length, quantize)


def training_kind(manifest: BundleManifest, requested: str | None) -> ModelKind:
    """The kind that trains on a bundle: the one requested, else the default for the bundle's examples; a
    multi-task bundle's encoder is the multi-task kind. A kind that learns from other examples is refused."""
    if manifest.kind not in DEFAULT_KIND:
        raise ValueError(f"a bundle of {manifest.kind!r} examples: Refinery trains on {', '.join(DEFAULT_KIND)}")
    name = requested or DEFAULT_KIND[manifest.kind]
    if name == TRANSFORMER and manifest.tasks:  # the dataset declares several tasks: one encoder learns them all
        name = MULTITASK
    kind = kind_named(name)
    if kind.trains_on != manifest.kind:
        raise ValueError(
            f"model_kind {name!r} ({kind.description}) cannot train on a bundle of {manifest.kind} examples; "
            f"choose one of {', '.join(k.name for k in KINDS.values() if k.trains_on == manifest.kind)}"
        )
    return kind
