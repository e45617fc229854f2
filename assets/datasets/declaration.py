"""`datasets/<name>.yaml` in a home: one dataset's source mapping, tasks, rule overrides and training settings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from assets.examples.label_issues import LABEL_ISSUE_POLICIES
from assets.readers.mapping import RecordMapping
from assets.storage.records import CHOSEN, RESPONSE
from rules.yaml_reader import YamlError, YamlReader
from trainers.bundle import DOCUMENTS, EXTRA_COLUMNS, GENERATION, PAIRS

DATASET_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
NEW_LABEL_POLICIES = ("error", "quarantine", "accept")
TASK_KINDS = ("classification", GENERATION, PAIRS, DOCUMENTS)
# tasks with no labels: a causal LM learns answers, which answer is better, or a domain's documents
CAUSAL_LM_TASKS = (GENERATION, PAIRS, DOCUMENTS)


TASK_COLUMNS = {  # a causal LM task's column, and where its data comes from
    GENERATION: (RESPONSE, "responses come from the source's response_column"),
    PAIRS: (CHOSEN, "answers come from the source's chosen_column and rejected_column"),
    DOCUMENTS: ("text", "documents are the source's text_column"),
}


class DatasetError(YamlError):
    """A dataset declaration that cannot be used: names the file, line and key."""


@dataclass(frozen=True)
class Task:
    """One label column to predict, with its label set (None: frozen from the first validated version); or, of kind
    `generation`, the response a causal language model learns to write for each prompt (the text); or, of kind
    `preference`, a chosen and a rejected answer to each prompt; or, of kind `pretraining`, the documents
    themselves (the text), which a causal LM continues its pre-training on."""

    name: str
    column: str = "label"
    labels: tuple[str, ...] | None = None
    new_labels: str = "quarantine"
    kind: str = "classification"
    label_issues: str = "report"  # suspected label errors: report | quarantine (train and val) | off


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

    @property
    def generative(self) -> bool:
        """Whether the dataset holds prompts and answers for a causal language model (responses or pairs)."""
        return self.primary.kind in CAUSAL_LM_TASKS

    @property
    def answer_columns(self) -> tuple[str, ...]:
        """The columns beside the text that its examples carry: a response or a pair of answers, and the context."""
        return EXTRA_COLUMNS.get(self.primary.kind, ())


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
    specs = reader.get(document, "tasks", list, default=[{"name": "label"}])
    tasks = tuple(_task(reader, spec) for spec in specs)
    for spec in specs[1:]:
        if "label_issues" in spec:  # a later task's labels are not screened: say so rather than ignore it
            raise reader.fail(spec, "label_issues", "only the first task's labels are screened; set it there")
    if not tasks or len({task.column for task in tasks}) != len(tasks):
        raise reader.fail(document, "tasks", "declare at least one task, each on its own column")
    if any(task.kind in CAUSAL_LM_TASKS for task in tasks):
        if len(tasks) > 1:
            raise reader.fail(document, "tasks", f"a {tasks[0].kind} task is a dataset's only task")
        mapping = TASK_MAPPINGS[tasks[0].kind](mapping, source or {})
    training = reader.get(document, "training", dict, default={})
    return DatasetDeclaration(
        name,
        path,
        reader.get(document, "description", str, default=""),
        mapping,
        tasks,
        reader.get(document, "rules", dict, default={}),
        {k: v for k, v in training.items() if k != "__lines__"},
    )


def generation_mapping(mapping: RecordMapping | None, declared: dict) -> RecordMapping:
    """A generation dataset's mapping: responses from `response_column` (default `response`) or from the
    conversations of `messages_column`, and no label column unless the source mapping names one."""
    mapping = mapping or RecordMapping()
    label = mapping.label_column if "label_column" in declared else None
    response = None if mapping.messages_column else (mapping.response_column or RESPONSE)
    return replace(mapping, response_column=response, label_column=label)


def preference_mapping(mapping: RecordMapping | None, declared: dict) -> RecordMapping:
    """A preference dataset's mapping: the prompt from `text_column` (default `prompt`), the answers from
    `chosen_column` and `rejected_column` (default `chosen`, `rejected`), and no label column."""
    mapping = mapping or RecordMapping()
    prompt = mapping.text_column if "text_column" in declared else "prompt"
    chosen, rejected = mapping.chosen_column or CHOSEN, mapping.rejected_column or "rejected"
    return replace(mapping, text_column=prompt, chosen_column=chosen, rejected_column=rejected, label_column=None)


def documents_mapping(mapping: RecordMapping | None, declared: dict) -> RecordMapping:
    """A pretraining dataset's mapping: the documents from `text_column`, and no label column unless the source
    mapping names one."""
    mapping = mapping or RecordMapping()
    return replace(mapping, label_column=mapping.label_column if "label_column" in declared else None)


TASK_MAPPINGS = {GENERATION: generation_mapping, PAIRS: preference_mapping, DOCUMENTS: documents_mapping}


def _task(reader: YamlReader, spec: object) -> Task:
    if not isinstance(spec, dict):
        raise DatasetError(f"{reader.path}: each task must be a mapping with name, kind, column, labels, new_labels")
    reader.keys(spec, ("name", "kind", "column", "labels", "new_labels", "label_issues"), "task")
    kind = reader.get(spec, "kind", str, default="classification")
    if kind not in TASK_KINDS:
        raise reader.fail(spec, "kind", f"expected one of {', '.join(TASK_KINDS)}")
    if kind in CAUSAL_LM_TASKS:
        if "labels" in spec or "column" in spec:
            raise reader.fail(spec, "kind", f"a {kind} task has no labels; its {TASK_COLUMNS[kind][1]}")
        return Task(reader.get(spec, "name", str), TASK_COLUMNS[kind][0], None, "accept", kind, "off")
    labels = reader.get(spec, "labels", list, default=None)
    if labels is not None and (not labels or not all(isinstance(label, str) and label for label in labels)):
        raise reader.fail(spec, "labels", "a label set is a non-empty list of non-empty strings")
    policy = reader.get(spec, "new_labels", str, default="quarantine")
    if policy not in NEW_LABEL_POLICIES:
        raise reader.fail(spec, "new_labels", f"expected one of {', '.join(NEW_LABEL_POLICIES)}")
    screening = reader.get(spec, "label_issues", str, default="report")
    if screening not in LABEL_ISSUE_POLICIES:
        raise reader.fail(spec, "label_issues", f"expected one of {', '.join(LABEL_ISSUE_POLICIES)}")
    name, column = reader.get(spec, "name", str), reader.get(spec, "column", str, default="label")
    return Task(name, column, tuple(labels) if labels else None, policy, label_issues=screening)


def declaration_yaml(declaration: DatasetDeclaration, header: str = "") -> str:
    """The declaration as the YAML a person edits."""
    document: dict[str, object] = {"name": declaration.name}
    if declaration.description:
        document["description"] = declaration.description
    if declaration.mapping is not None:
        document["source"] = yaml.safe_load(declaration.mapping.to_yaml()) or {}
        if declaration.generative:  # its loader's default text column is not the mapping's: say which it is
            document["source"] = {"text_column": declaration.mapping.text_column, **document["source"]}
    document["tasks"] = [
        {"name": t.name, "kind": t.kind}
        if t.kind in CAUSAL_LM_TASKS
        else {
            "name": t.name,
            "column": t.column,
            **({"labels": list(t.labels)} if t.labels else {}),
            "new_labels": t.new_labels,
            **({"label_issues": t.label_issues} if t is declaration.primary else {}),  # only its labels are screened
        }
        for t in declaration.tasks
    ]
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
