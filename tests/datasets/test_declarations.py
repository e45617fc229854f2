"""Dataset declarations: read with clear errors, their rules laid over the shipped ones, fitted by init."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from assets.datasets.declaration import DatasetError, declaration_yaml, load_dataset
from assets.datasets.profile import fitted_declaration, profile_frame
from assets.datasets.resolve import rule_book_for
from assets.validation.enforce import apply_row_rules


def test_a_declaration_reads_back_what_was_written(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "body": [f"order {n} never arrived at the depot" for n in range(40)],
            "topic": ["late", "lost"] * 20,
            "ticket": [str(n) for n in range(40)],
        }
    )
    profile = profile_frame(frame)
    assert profile.text_column == "body" and profile.label_columns[0] == "topic"
    declared = fitted_declaration("orders", profile)
    (tmp_path / "orders.yaml").write_text(declaration_yaml(declared))
    loaded = load_dataset(tmp_path / "orders.yaml")
    assert loaded.mapping.text_column == "body" and loaded.mapping.label_column == "topic"
    assert loaded.primary.labels == ("late", "lost") and loaded.primary.new_labels == "quarantine"
    assert loaded.primary.label_issues == "report"  # written out, so the policy can be found and changed


def test_a_label_issue_policy_is_one_of_the_known_ones_else_refused_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "orders.yaml").write_text("name: orders\ntasks:\n  - name: topic\n    label_issues: fix\n")
    with pytest.raises(
        DatasetError, match=r"orders\.yaml:4: key .label_issues.: expected one of report, quarantine, relabel, off"
    ):
        load_dataset(tmp_path / "orders.yaml")
    (tmp_path / "orders.yaml").write_text("name: orders\ntasks:\n  - name: topic\n    label_issues: quarantine\n")
    assert load_dataset(tmp_path / "orders.yaml").primary.label_issues == "quarantine"


def test_a_dataset_overrides_a_shipped_rule_by_name(tmp_path: Path) -> None:
    (tmp_path / "short.yaml").write_text(
        "name: short\nrules:\n  clean_documents:\n    columns:\n      text:\n        checks:\n"
        "          - name: text_length\n            str_length: {min: 1, max: 5}\n"
    )
    rules = rule_book_for(load_dataset(tmp_path / "short.yaml")).for_asset("clean_documents")
    frame = pl.DataFrame(
        {
            "doc_id": ["a", "b"],
            "source": ["t.csv"] * 2,
            "source_row": [2, 3],
            "text": ["ok", "far too long"],
            "label": ["x", "y"],
        }
    )
    kept, rejected = apply_row_rules(frame, rules, "clean")
    assert kept["text"].to_list() == ["ok"] and rejected["rule"].to_list() == ["text_length"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: other\n", r"short\.yaml:1: key 'name': the file of dataset 'other' must be named other\.yaml"),
        ("name: short\ntasks:\n  - name: t\n    new_labels: maybe\n", r"key 'new_labels': expected one of error"),
        (
            "name: short\nrules:\n  clean_documents:\n    dataset:\n      - name: my_rule\n        min_rows: 3\n",
            r"dataset rules \['my_rule'\] are not shipped ones",
        ),
    ],
)
def test_a_bad_declaration_is_refused_naming_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "short.yaml").write_text(text)
    with pytest.raises(DatasetError, match=message):
        rule_book_for(load_dataset(tmp_path / "short.yaml"))
