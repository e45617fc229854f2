"""Label sets that protect without trapping: labels a task has not seen follow its `new_labels` policy."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from assets.storage.records import empty_quarantine, quarantine_documents

LABEL_RULE = "label_in_label_set"


class LabelSetError(ValueError):
    """A version holds labels its task's label set lacks, and the task's policy is `error`."""


@dataclass(frozen=True)
class LabelSetRule:
    """A task's label column, the labels it knows, where they came from, and what to do with new ones."""

    task: str
    column: str
    labels: frozenset[str]
    origin: str  # "declared in datasets/x.yaml" or "frozen from versions v1, v2"
    new_labels: str = "quarantine"  # error | quarantine | accept
    where: str = "the dataset declaration"


def enforce_label_sets(frame: pl.DataFrame, rules: list[LabelSetRule]) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Rows kept, rows quarantined for unseen labels, and the unseen labels of each task."""
    rejected, unseen_by_task = [empty_quarantine()], {}
    for rule in rules:
        if rule.column not in frame.columns:
            continue
        # A blank label is no label, as for `label` in cleaning: the row is kept, masked for this task.
        frame = frame.with_columns(pl.col(rule.column).cast(pl.String).str.strip_chars().replace("", None))
        present = frame[rule.column].cast(pl.String).drop_nulls().unique().to_list()
        unseen = sorted(set(present) - rule.labels)
        if not unseen:
            continue
        unseen_by_task[rule.task] = unseen
        shown = ", ".join(repr(label) for label in unseen[:20])
        shown += f" and {len(unseen) - 20} more" if len(unseen) > 20 else ""
        if rule.new_labels == "error":
            raise LabelSetError(
                f"task {rule.task!r}: {len(unseen)} label(s) not in its label set ({rule.origin}): {shown}. "
                f"Add them to the task's labels in {rule.where}, or set its new_labels to quarantine or accept"
            )
        if rule.new_labels == "accept":
            continue
        bad = pl.col(rule.column).cast(pl.String).is_in(unseen)
        reason = f"label not in task {rule.task!r}'s label set ({rule.origin}); new in this version: {shown}"
        rejected.append(quarantine_documents(frame.filter(bad), "clean", LABEL_RULE, reason, pl.col(rule.column)))
        frame = frame.filter(~bad | pl.col(rule.column).is_null())
    return frame, pl.concat(rejected), unseen_by_task
