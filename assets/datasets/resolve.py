"""Which dataset a version belongs to, and that dataset's rule book and label sets."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import polars as pl

from assets.datasets.declaration import (
    CAUSAL_LM_TASKS,
    DatasetDeclaration,
    DatasetError,
    dataset_file,
    load_dataset,
)
from assets.storage.delta import Lake
from assets.validation.labels import LabelSetRule
from contracts.datasets import UNDECLARED
from contracts.tables import CLEAN_DOCUMENTS
from rules import RuleBook, default_rule_book
from rules.overrides import extend_rule_book
from rules.yaml_reader import YamlReader


def declaration_for(datasets_dir: Path, name: str) -> DatasetDeclaration:
    """A dataset's declaration; the undeclared default dataset has one task on `label` and no overrides."""
    if name == UNDECLARED and not dataset_file(datasets_dir, name).exists():
        return DatasetDeclaration(UNDECLARED)
    path = dataset_file(datasets_dir, name)
    if not path.exists():
        raise DatasetError(f"{path}: dataset {name!r} is not declared (refinery init writes a declaration)")
    return load_dataset(path)


def rule_book_for(declaration: DatasetDeclaration) -> RuleBook:
    """The shipped rules of the dataset's kind (classification or generation) with its `rules:` laid over them."""
    if not declaration.rules or declaration.path is None:
        return default_rule_book(declaration.primary.kind)
    return _extended_book(declaration.path, declaration.path.stat().st_mtime_ns)


@lru_cache(maxsize=32)
def _extended_book(path: Path, modified: int) -> RuleBook:
    declaration = load_dataset(path)
    base = default_rule_book(declaration.primary.kind)
    return extend_rule_book(base, declaration.rules, YamlReader(path, DatasetError))


def label_set_rules(declaration: DatasetDeclaration, lake: Lake, earlier: list[str]) -> list[LabelSetRule]:
    """Each task's label set: declared, or the labels its earlier versions kept (none yet: this version freezes it)."""
    where = f"datasets/{declaration.name}.yaml"
    rules, kept = [], None
    for task in declaration.tasks:
        if task.kind in CAUSAL_LM_TASKS:  # responses, answers and documents are free text: no label set
            continue
        if task.labels is not None:
            rules.append(
                LabelSetRule(
                    task.name, task.column, frozenset(task.labels), f"declared in {where}", task.new_labels, where
                )
            )
            continue
        if kept is None:
            kept = _earlier_labels(lake, earlier, [t.column for t in declaration.tasks])
        if kept.get(task.column):
            labels = kept[task.column]
            origin = f"frozen from version(s) {', '.join(earlier[:5])}{' ...' if len(earlier) > 5 else ''}"
            rules.append(LabelSetRule(task.name, task.column, labels, origin, task.new_labels, where))
    return rules


def _earlier_labels(lake: Lake, earlier: list[str], columns: list[str]) -> dict[str, frozenset[str]]:
    """The distinct values of each task column that earlier versions kept after cleaning."""
    if not earlier or not lake.exists(CLEAN_DOCUMENTS):
        return {}
    frame = lake.scan(CLEAN_DOCUMENTS, earlier)
    present = [c for c in columns if c in frame.collect_schema().names()]
    return {
        c: frozenset(frame.select(pl.col(c).cast(pl.String).drop_nulls().unique()).collect()[c].to_list())
        for c in present
    }
