"""The model registry on disk: models/<name>/<version>/ folders and an atomically moved alias file."""

from __future__ import annotations

import json
import os
from pathlib import Path

ALIASES = "aliases.json"
LABEL_MAP = "label_map.json"
MODEL_CARD = "model_card.json"
PRODUCTION = "production"
PREVIOUS = "previous"


def read_aliases(model_root: Path) -> dict[str, str]:
    """The registry's aliases (empty when nothing is deployed)."""
    path = model_root / ALIASES
    return json.loads(path.read_text()) if path.is_file() else {}


def write_json_atomically(path: Path, value: object) -> None:
    """Write JSON to a temporary file and rename it over `path`, so readers never see half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value, indent=2, sort_keys=True))
    os.replace(temporary, path)


def promote(model_root: Path, version: str) -> dict[str, str]:
    """Point `production` at `version` and keep the old production as `previous`."""
    if not (model_root / version / MODEL_CARD).is_file():
        raise FileNotFoundError(f"{model_root / version}: no exported model to promote")
    aliases = read_aliases(model_root)
    if aliases.get(PRODUCTION) != version:
        aliases = {**aliases, PREVIOUS: aliases.get(PRODUCTION), PRODUCTION: version}
        aliases = {k: v for k, v in aliases.items() if v is not None}
        write_json_atomically(model_root / ALIASES, aliases)
    return aliases


def resolve_alias(model_root: Path, alias: str = PRODUCTION) -> Path:
    """The model folder an alias points at."""
    version = read_aliases(model_root).get(alias)
    if version is None:
        raise LookupError(f"{model_root}: no model has the alias {alias!r} yet (run the pipeline first)")
    return model_root / version


def read_card(folder: Path) -> dict:
    """A model folder's card."""
    return json.loads((folder / MODEL_CARD).read_text())


def update_card(folder: Path, **fields: object) -> dict:
    """Merge fields into a model folder's card, atomically."""
    card = {**read_card(folder), **fields}
    write_json_atomically(folder / MODEL_CARD, card)
    return card


def rollback(model_root: Path) -> dict[str, str]:
    """Point `production` back at `previous` (and `previous` at the model it replaces), atomically."""
    aliases = read_aliases(model_root)
    if PREVIOUS not in aliases:
        raise LookupError(f"{model_root}: no previous model to roll back to")
    if not (model_root / aliases[PREVIOUS] / MODEL_CARD).is_file():
        raise FileNotFoundError(f"{model_root / aliases[PREVIOUS]}: the previous model's folder is gone")
    aliases = {**aliases, PRODUCTION: aliases[PREVIOUS], PREVIOUS: aliases[PRODUCTION]}
    write_json_atomically(model_root / ALIASES, aliases)
    return aliases


def list_models(model_root: Path) -> list[dict[str, object]]:
    """Every exported model, oldest first, with its aliases, lineage, test metrics and gate."""
    aliases = read_aliases(model_root)
    rows = []
    folders = [f for f in model_root.iterdir() if (f / MODEL_CARD).is_file()] if model_root.is_dir() else []
    for folder in folders:
        card = read_card(folder)
        metrics = (card.get("test_evaluation") or {}).get("metrics", {})
        gate = card.get("evaluation_gate") or {}
        rows.append({
            "version": folder.name,
            "aliases": sorted(name for name, version in aliases.items() if version == folder.name),
            "created_at": card.get("created_at", ""),
            "dataset_versions": card.get("dataset_versions", []),
            "rules_hash": card.get("rules_hash", ""),
            "accuracy": metrics.get("accuracy"),
            "macro_f1": metrics.get("macro_f1"),
            "gate": gate_status(gate),
            "deployed_at": card.get("deployed_at", ""),
        })  # fmt: skip
    return sorted(rows, key=lambda row: (str(row["created_at"]), str(row["version"])))


def gate_status(gate: dict) -> str:
    """'passed', 'forced', 'failed', or '' for a model not evaluated yet."""
    if not gate:
        return ""
    if gate.get("forced"):
        return "forced"
    return "passed" if gate.get("passed") else "failed"


class ModelRegistry:
    """One model name's folders `<root>/<model_name>/<version>/` and the aliases that say which one is deployed."""

    root: str
    model_name: str

    def __init__(self, root: str, model_name: str = "refinery-intent") -> None:
        self.root, self.model_name = root, model_name

    @property
    def model_root(self) -> Path:
        return Path(self.root) / self.model_name

    def version_folder(self, version: str) -> Path:
        return self.model_root / version

    def aliases(self) -> dict[str, str]:
        return read_aliases(self.model_root)

    def promote(self, version: str) -> dict[str, str]:
        return promote(self.model_root, version)
