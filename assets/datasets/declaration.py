"""`datasets/<name>.yaml` in a home: one dataset's source mapping, tasks, rule overrides and training settings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assets.readers.mapping import RecordMapping
from rules.yaml_reader import YamlError, YamlReader

DATASET_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
NEW_LABEL_POLICIES = ("error", "quarantine", "accept")


class DatasetError(YamlError):
    """A dataset declaration that cannot be used: names the file, line and key."""


@dataclass(frozen=True)
class Task:
    """One label column to predict, with its label set (None: frozen from the first validated version)."""

    name: str
    column: str = "label"
    labels: tuple[str, ...] | None = None
    new_labels: str = "quarantine"


@dataclass(frozen=True)
class DatasetDeclaration:
    """A dataset as declared in its YAML file."""

    name: str
    path: Path | None = None
    description: str = ""
    mapping: RecordMapping | None = None
    tasks: tuple[Task, ...] = (Task("label"),)
    rules: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)

    @property
    def primary(self) -> Task:
        """The task the fine-tune trains on."""
        return self.tasks[0]


def check_dataset_name(name: str) -> str:
    """Return `name` if it can name a dataset (lower-case letters, digits, '-', '_'), else raise ValueError."""
    if not isinstance(name, str) or not DATASET_NAME.fullmatch(name):
        raise ValueError(f"invalid dataset name {name!r}: use 1-32 lower-case letters, digits, '-' or '_'")
    return name


def dataset_file(datasets_dir: Path, name: str) -> Path:
    return datasets_dir / f"{check_dataset_name(name)}.yaml"


def load_dataset(path: Path) -> DatasetDeclaration:
    """Read and check one declaration."""
    reader = YamlReader(path, DatasetError)
    document = reader.load()
    if not isinstance(document, dict):
        raise DatasetError(f"{path}: expected a mapping with keys name, source, tasks, rules, training")
    reader.keys(document, ("name", "description", "source", "tasks", "rules", "training"), "dataset declaration")
    name = reader.get(document, "name", str)
    try:
        check_dataset_name(name)
    except ValueError as error:
        raise reader.fail(document, "name", str(error)) from error
    if path.stem != name:
        raise reader.fail(document, "name", f"the file of dataset {name!r} must be named {name}.yaml")
    source = reader.get(document, "source", dict, default=None)
    mapping = None
    if source:
        clean = {k: v for k, v in source.items() if k != "__lines__"}
        mapping = RecordMapping.from_mapping(clean, f"{path}: source")
    tasks = tuple(_task(reader, spec) for spec in reader.get(document, "tasks", list, default=[{"name": "label"}]))
    if not tasks or len({task.column for task in tasks}) != len(tasks):
        raise reader.fail(document, "tasks", "declare at least one task, each on its own column")
    training = reader.get(document, "training", dict, default={})
    return DatasetDeclaration(
        name, path, reader.get(document, "description", str, default=""), mapping, tasks,
        reader.get(document, "rules", dict, default={}), {k: v for k, v in training.items() if k != "__lines__"},
    )  # fmt: skip


def _task(reader: YamlReader, spec: object) -> Task:
    if not isinstance(spec, dict):
        raise DatasetError(f"{reader.path}: each task must be a mapping with name, column, labels, new_labels")
    reader.keys(spec, ("name", "column", "labels", "new_labels"), "task")
    labels = reader.get(spec, "labels", list, default=None)
    if labels is not None and (not labels or not all(isinstance(label, str) and label for label in labels)):
        raise reader.fail(spec, "labels", "a label set is a non-empty list of non-empty strings")
    policy = reader.get(spec, "new_labels", str, default="quarantine")
    if policy not in NEW_LABEL_POLICIES:
        raise reader.fail(spec, "new_labels", f"expected one of {', '.join(NEW_LABEL_POLICIES)}")
    name = reader.get(spec, "name", str)
    return Task(name, reader.get(spec, "column", str, default="label"), tuple(labels) if labels else None, policy)


def declaration_yaml(declaration: DatasetDeclaration, header: str = "") -> str:
    """The declaration as the YAML a person edits."""
    document: dict[str, object] = {"name": declaration.name}
    if declaration.description:
        document["description"] = declaration.description
    if declaration.mapping is not None:
        document["source"] = yaml.safe_load(declaration.mapping.to_yaml()) or {}
    document["tasks"] = [
        {"name": t.name, "column": t.column, **({"labels": list(t.labels)} if t.labels else {}),
         "new_labels": t.new_labels}
        for t in declaration.tasks
    ]  # fmt: skip
    if declaration.rules:
        document["rules"] = declaration.rules
    if declaration.training:
        document["training"] = declaration.training
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def load_datasets(datasets_dir: Path) -> dict[str, DatasetDeclaration]:
    """Every declaration of a home, by name."""
    if not datasets_dir.is_dir():
        return {}
    return {path.stem: load_dataset(path) for path in sorted(datasets_dir.glob("*.yaml"))}
