"""`model_name_or_path: <dataset>@<alias>`: a fine-tune that starts from another dataset's deployed model (a
preference run from the SFT model it tunes, an SFT run from a causal LM adapted to the domain), resolved to that
model's folder with the reference kept in the new model's lineage."""

from __future__ import annotations

import re
from pathlib import Path

from trainers.registry import PREVIOUS, PRODUCTION, read_aliases, read_card, registry_name

ALIASES_KNOWN = (PRODUCTION, PREVIOUS)

REFERENCE = re.compile(r"(?P<dataset>[a-z][a-z0-9_-]{0,31})@(?P<alias>[a-z][a-z0-9_-]{0,31})")


class BaseReferenceError(ValueError):
    """A `<dataset>@<alias>` base that names no model: says which part is missing."""


def is_base_reference(model_name_or_path: object) -> bool:
    """Whether a base names another dataset's model by alias (a folder or hub id never has this shape)."""
    return isinstance(model_name_or_path, str) and REFERENCE.fullmatch(model_name_or_path) is not None


def resolve_base_reference(reference: str, models_root: Path, bundles_root: Path) -> tuple[str, dict[str, object]]:
    """The folder of the model `reference` names, and the lineage entry that records where it came from (its
    dataset, alias, model version, kind, dataset versions and the bundle it learned from)."""
    match = REFERENCE.fullmatch(reference)
    if match is None:
        raise BaseReferenceError(f"base {reference!r}: expected <dataset>@<alias>, e.g. answers@production")
    dataset, alias = match["dataset"], match["alias"]
    if alias not in ALIASES_KNOWN:
        raise BaseReferenceError(f"base {reference!r}: unknown alias {alias!r} (known: {', '.join(ALIASES_KNOWN)})")
    model_root = models_root / registry_name(dataset)
    version = read_aliases(model_root).get(alias) if model_root.is_dir() else None
    if version is None:
        raise BaseReferenceError(
            f"base {reference!r}: dataset {dataset!r} has no {alias} model yet; run its pipeline first"
        )
    folder = model_root / version
    if not (folder / "config.json").is_file():  # adapters kept beside their base: nothing to build on
        raise BaseReferenceError(
            f"base {reference!r}: model {version} holds adapters without merged weights (adapters: keep); "
            "export it with adapters: merge to start another fine-tune from it"
        )
    card = read_card(folder)
    bundle = bundles_root / version
    return str(folder), {
        "reference": reference,
        "dataset": dataset,
        "alias": alias,
        "model_version": version,
        "model_kind": card.get("model_kind"),
        "dataset_versions": card.get("dataset_versions", []),
        "bundle": str(bundle) if bundle.is_dir() else None,
    }
