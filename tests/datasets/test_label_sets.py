"""Label sets protect without trapping: declared or frozen, and unseen labels follow the task's policy."""

from __future__ import annotations

import polars as pl
import pytest

from assets.validation.labels import LABEL_RULE, LabelSetError, LabelSetRule, enforce_label_sets


def documents(labels: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "doc_id": [f"d{n}" for n in range(len(labels))],
            "source": ["t.csv"] * len(labels),
            "source_row": list(range(2, len(labels) + 2)),
            "text": [f"text {n}" for n in range(len(labels))],
            "label": labels,
        }
    )


def rule(policy: str) -> LabelSetRule:
    return LabelSetRule("intent", "label", frozenset({"a", "b"}), "frozen from version(s) v1", policy, "x.yaml")


def test_unseen_labels_are_quarantined_with_a_reason_that_lists_them() -> None:
    kept, rejected, unseen = enforce_label_sets(documents(["a", "c", "b", "d", None]), [rule("quarantine")])
    assert kept["label"].to_list() == ["a", "b", None]
    assert rejected["rule"].to_list() == [LABEL_RULE, LABEL_RULE] and rejected["value"].to_list() == ["c", "d"]
    reason = rejected["reason"][0]
    assert "new in this version: 'c', 'd'" in reason and "frozen from version(s) v1" in reason
    assert unseen == {"intent": ["c", "d"]}


def test_the_error_policy_refuses_the_version_naming_the_labels_and_the_file_to_edit() -> None:
    with pytest.raises(LabelSetError, match=r"task 'intent': 1 label\(s\) not in its label set .*'c'.* in x\.yaml"):
        enforce_label_sets(documents(["a", "c"]), [rule("error")])


def test_the_accept_policy_keeps_new_labels_and_reports_them() -> None:
    kept, rejected, unseen = enforce_label_sets(documents(["a", "c"]), [rule("accept")])
    assert kept.height == 2 and rejected.is_empty() and unseen == {"intent": ["c"]}
