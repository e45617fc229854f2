"""The model registry on disk: models/<name>/<version>/ folders and an atomically moved alias file."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from contracts.datasets import UNDECLARED
from contracts.model_folder import ALIASES as ALIASES
from contracts.model_folder import LABEL_MAP as LABEL_MAP
from contracts.model_folder import MODEL_CARD as MODEL_CARD
from contracts.model_folder import RECIPE_FILE as RECIPE_FILE

PRODUCTION = "production"
PREVIOUS = "previous"
ALIAS_LOCK = ".aliases.lock"
ALIAS_HISTORY = "alias_history.jsonl"
ANY = object()  # promote without a compare-and-swap expectation
_THREAD_LOCK = threading.Lock()  # flock is per open file: threads of one process also take this


def read_aliases(model_root: Path) -> dict[str, str]:
    """The registry's aliases (empty when nothing is deployed)."""
    path = model_root / ALIASES
    return json.loads(path.read_text()) if path.is_file() else {}


def write_json_atomically(path: Path, value: object) -> None:
    """Write JSON to a temporary file and rename it over `path`, so readers never see half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value, indent=2, sort_keys=True))
    os.replace(temporary, path)


class AliasConflictError(RuntimeError):
    """An alias moved since the caller looked: the move it asked for would undo someone else's."""


@contextmanager
def aliases_locked(model_root: Path) -> Iterator[dict[str, str]]:
    """Hold the registry's alias lock (an OS file lock: processes and threads wait their turn) and read the aliases."""
    model_root.mkdir(parents=True, exist_ok=True)
    with (model_root / ALIAS_LOCK).open("a") as handle, _THREAD_LOCK:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield read_aliases(model_root)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _move(model_root: Path, before: dict[str, str], after: dict[str, str], reason: str) -> dict[str, str]:
    """Write the new aliases and append the move to the history (the caller holds the lock)."""
    after = {k: v for k, v in after.items() if v is not None}
    if after != before:
        write_json_atomically(model_root / ALIASES, after)
        moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        entry = {"at": moment, "reason": reason, "before": before, "after": after}
        with (model_root / ALIAS_HISTORY).open("a") as history:
            history.write(json.dumps(entry, sort_keys=True) + "\n")
    return after


def promote(model_root: Path, version: str, expected_production: str | object | None = ANY) -> dict[str, str]:
    """Point `production` at `version` and keep the old production as `previous`, atomically, under the lock.

    With `expected_production`, the move happens only if production is still that version (compare and
    swap): a gate that compared against one model must not replace another.
    """
    if not (model_root / version / MODEL_CARD).is_file():
        raise FileNotFoundError(f"{model_root / version}: no exported model to promote")
    with aliases_locked(model_root) as aliases:
        current = aliases.get(PRODUCTION)
        if current == version:  # already done (a retried deployment): nothing to move
            return aliases
        if expected_production is not ANY and current != expected_production:
            raise AliasConflictError(
                f"production is {current!r}, not {expected_production!r} as when {version!r} was evaluated; "
                "evaluate it again against the model now in production"
            )
        return _move(model_root, aliases, {**aliases, PREVIOUS: current, PRODUCTION: version}, f"promote {version}")


def resolve_alias(model_root: Path, alias: str = PRODUCTION) -> Path:
    """The model folder an alias points at."""
    version = read_aliases(model_root).get(alias)
    if version is None:
        raise LookupError(f"{model_root}: no model has the alias {alias!r} yet (run the pipeline first)")
    return model_root / version


def read_card(folder: Path) -> dict:
    """A model folder's card."""
    return json.loads((folder / MODEL_CARD).read_text())


def model_card(folder: Path) -> dict:
    """A model folder's card; empty for a folder exported before cards existed."""
    path = folder / MODEL_CARD
    return json.loads(path.read_text()) if path.is_file() else {}


def read_label_map(folder: Path) -> dict[str, int]:
    """A model folder's label ids (its primary task's, for a multi-task model)."""
    return json.loads((folder / LABEL_MAP).read_text())


def update_card(folder: Path, **fields: object) -> dict:
    """Merge fields into a model folder's card, atomically."""
    card = {**read_card(folder), **fields}
    write_json_atomically(folder / MODEL_CARD, card)
    return card


def rollback(model_root: Path) -> dict[str, str]:
    """Point `production` back at `previous` (and `previous` at the model it replaces), atomically, under the lock."""
    with aliases_locked(model_root) as aliases:
        if PREVIOUS not in aliases:
            raise LookupError(f"{model_root}: no previous model to roll back to")
        if not (model_root / aliases[PREVIOUS] / MODEL_CARD).is_file():
            raise FileNotFoundError(f"{model_root / aliases[PREVIOUS]}: the previous model's folder is gone")
        swapped = {**aliases, PRODUCTION: aliases[PREVIOUS], PREVIOUS: aliases[PRODUCTION]}
        return _move(model_root, aliases, swapped, f"rollback to {aliases[PREVIOUS]}")


def alias_history(model_root: Path) -> list[dict[str, object]]:
    """Every alias move, oldest first."""
    path = model_root / ALIAS_HISTORY
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def new_model_version(dataset_version: str, run_id: str | None = None) -> str:
    """A model version id: the dataset version and the run that trains it (a retried step of that run resumes its
    checkpoints), or, without a run, the UTC time and a random suffix."""
    if run_id:
        return f"{dataset_version}-{run_id[:8]}"
    return f"{dataset_version}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def models_of(model_root: Path, dataset_version: str) -> list[Path]:
    """The model folders trained for a dataset version, oldest first."""
    found = []
    for folder in model_root.iterdir() if model_root.is_dir() else []:
        if (folder / MODEL_CARD).is_file() and not folder.name.startswith("."):
            card = read_card(folder)
            trained_for = (card.get("lineage") or {}).get("dataset_version", folder.name)  # older cards: the folder
            if trained_for == dataset_version:
                found.append((str(card.get("created_at", "")), folder.name, folder))
    return [folder for *_, folder in sorted(found)]


def list_models(model_root: Path) -> list[dict[str, object]]:
    """Every exported model, oldest first, with its aliases, lineage, test metrics and gate."""
    aliases = read_aliases(model_root)
    rows = []
    folders = [f for f in model_root.iterdir() if (f / MODEL_CARD).is_file()] if model_root.is_dir() else []
    for folder in folders:
        card = read_card(folder)
        metrics = (card.get("test_evaluation") or {}).get("metrics", {})
        gate = card.get("evaluation_gate") or {}
        rows.append(
            {
                "version": folder.name,
                "aliases": sorted(name for name, version in aliases.items() if version == folder.name),
                "created_at": card.get("created_at", ""),
                "dataset_versions": card.get("dataset_versions", []),
                "rules_hash": card.get("rules_hash", ""),
                "model_kind": card.get("model_kind", "transformer"),
                "accuracy": metrics.get("accuracy"),
                "macro_f1": metrics.get("macro_f1"),
                "test_metrics": metrics,
                "gate": gate_status(gate),
                "deployed_at": card.get("deployed_at", ""),
            }
        )
    return sorted(rows, key=lambda row: (str(row["created_at"]), str(row["version"])))


def gate_status(gate: dict) -> str:
    """'passed', 'forced', 'failed', or '' for a model not evaluated yet."""
    if not gate:
        return ""
    if gate.get("forced"):
        return "forced"
    return "passed" if gate.get("passed") else "failed"


DEFAULT_MODEL_NAME = "refinery-intent"  # the registry of that dataset's models


def registry_name(dataset: str, undeclared: str = DEFAULT_MODEL_NAME) -> str:
    """The registry folder of a dataset's models: its name, `undeclared` for versions registered without one."""
    return undeclared if dataset == UNDECLARED else dataset


def registries(models_root: Path) -> dict[str, Path]:
    """Every registry under a home's `models/` that has a production model, by dataset name."""
    found = {}
    for folder in sorted(models_root.glob(f"*/{ALIASES}")):
        name = folder.parent.name
        found[UNDECLARED if name == DEFAULT_MODEL_NAME else name] = folder.parent
    return found


class ModelRegistry:
    """One model name's folders `<root>/<model_name>/<version>/` and the aliases that say which one is deployed."""

    root: str
    model_name: str

    def __init__(self, root: str, model_name: str = DEFAULT_MODEL_NAME) -> None:
        self.root, self.model_name = root, model_name

    @property
    def model_root(self) -> Path:
        return Path(self.root) / self.model_name

    def version_folder(self, version: str) -> Path:
        return self.model_root / version

    def aliases(self) -> dict[str, str]:
        return read_aliases(self.model_root)

    def promote(self, version: str, expected_production: str | object | None = ANY) -> dict[str, str]:
        return promote(self.model_root, version, expected_production)

    def dataset_version_of(self, model_version: str) -> str:
        """The dataset version a model was trained for (its folder name, for models older than version ids)."""
        card = read_card(self.version_folder(model_version))
        return str((card.get("lineage") or {}).get("dataset_version") or model_version)

    def model_for(self, dataset_version: str, run_id: str) -> Path:
        """The model this run trained for the dataset version, else the newest one trained for it."""
        own = self.version_folder(new_model_version(dataset_version, run_id))
        return own if (own / MODEL_CARD).is_file() else self.latest_model_of(dataset_version)

    def latest_model_of(self, dataset_version: str) -> Path:
        """The newest model folder trained for a dataset version."""
        found = models_of(self.model_root, dataset_version)
        if not found:
            raise LookupError(f"{self.model_root}: no model trained for dataset version {dataset_version!r} yet")
        return found[-1]
