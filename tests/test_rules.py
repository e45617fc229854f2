"""Rules: YAML compiled to Pandera, failing rows quarantined by rule name, bad files named precisely."""

from pathlib import Path

import polars as pl
import pytest

from rules import RuleError, load_rule_book
from rules.compiler import compile_rule_file
from rules.enforce import apply_row_rules, evaluate_dataset_rule

RULES = """\
asset: docs
columns:
  text:
    dtype: string
    nullable: false
    checks:
      - name: text_length
        description: text has 3 to 10 characters
        str_length: {min: 3, max: 10}
  label:
    checks:
      - name: label_known
        isin: [a, b]
      - name: label_lowercase
        str_matches: "^[a-z]+$"
dataset:
  - name: enough_rows
    min_rows: 3
  - name: balanced
    severity: warn
    max_imbalance_ratio: 2
"""


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "doc_id": ["1", "2", "3", "4", "5"],
            "text": ["hello", "x", None, "fine", "also fine"],
            "label": ["a", "a", "a", "c", "b"],
            "source": ["f"] * 5,
            "source_row": [2, 3, 4, 5, 6],
        }
    )


def test_failing_rows_are_quarantined_once_under_the_first_rule_they_break(tmp_path: Path) -> None:
    (tmp_path / "docs.yaml").write_text(RULES)
    rule_set = compile_rule_file(tmp_path / "docs.yaml")
    passed, quarantine = apply_row_rules(_frame(), rule_set, "clean")
    assert passed["doc_id"].to_list() == ["1", "5"]
    rows = sorted(quarantine.select("doc_id", "rule", "value", "stage").rows())
    assert rows == [
        ("2", "text_length", "x", "clean"),
        ("3", "text_not_null", None, "clean"),
        ("4", "label_known", "c", "clean"),
    ]


def test_dataset_rules_report_observed_values(tmp_path: Path) -> None:
    (tmp_path / "docs.yaml").write_text(RULES)
    enough_rows, balanced = compile_rule_file(tmp_path / "docs.yaml").dataset_rules
    frame = _frame()
    assert evaluate_dataset_rule(frame, enough_rows).passed
    outcome = evaluate_dataset_rule(frame, balanced)
    assert (outcome.passed, outcome.observed, balanced.severity) == (False, 3.0, "warn")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("asset: d\ncolumns:\n  text:\n    dtype: strin\n", r"d\.yaml:4: key 'dtype': unknown dtype 'strin'"),
        (
            "asset: d\ncolumns:\n  text:\n    nulable: false\n",
            r"d\.yaml:4: key 'nulable': unknown key in column 'text'",
        ),
        (
            "asset: d\ncolumns:\n  t:\n    checks:\n      - name: r\n        str_matches: '(['\n",
            r"d\.yaml:6: key 'str_matches': bad regex",
        ),
        ("asset: d\ndataset:\n  - name: r\n    min_rows: many\n", r"d\.yaml:4: key 'min_rows': expected int/float"),
        ("asset: d\ndataset:\n  - name: r\n    severity: fatal\n    min_rows: 1\n", r"d\.yaml:4: key 'severity'"),
    ],
)
def test_a_bad_rule_file_names_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "d.yaml").write_text(text)
    with pytest.raises(RuleError, match=message):
        compile_rule_file(tmp_path / "d.yaml")


def test_shipped_rules_compile_and_have_a_stable_hash() -> None:
    book = load_rule_book()
    assert {"clean_documents", "training_examples"} <= set(book.rule_sets)
    assert book.digest == load_rule_book().digest and len(book.digest) == 16
