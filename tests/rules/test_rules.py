"""Rules: YAML compiled to Pandera, failing rows quarantined by rule name, bad files named precisely."""

import json
import re
from pathlib import Path

import polars as pl
import pytest

from assets.validation.enforce import (
    DATASET_RULE_EVALUATORS,
    VersionContext,
    apply_row_rules,
    evaluate_dataset_rule,
    population_stability_index,
    warning_rows,
)
from rules import RuleError, load_rule_book
from rules.compiler import DATASET_RULES, DatasetRule, compile_rule_file

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


def test_every_dataset_rule_the_compiler_accepts_has_exactly_one_evaluator() -> None:
    assert set(DATASET_RULE_EVALUATORS) == set(DATASET_RULES)


def test_a_dataset_rule_kind_without_an_evaluator_is_refused_by_name() -> None:
    rule = DatasetRule("odd", "max_vibes", 1.0, "an unknown kind", "error")
    with pytest.raises(ValueError, match="no evaluator for kind 'max_vibes'"):
        evaluate_dataset_rule(_frame(), rule)


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


MORE_RULES = """\
asset: docs
columns:
  doc_id:
    unique: true
  priority:
    dtype: int
    coerce: true
    checks:
      - name: priority_range
        in_range: {min: 1, max: 3}
  text:
    checks:
      - name: no_shouting
        severity: warn
        expr: "text <> UPPER(text)"
rows:
  - name: billing_mentions_invoice
    description: billing tickets mention an invoice
    expr: "label <> 'billing' OR LOWER(text) LIKE '%invoice%'"
"""


def test_unique_coerce_sql_expressions_and_row_rules(tmp_path: Path) -> None:
    (tmp_path / "docs.yaml").write_text(MORE_RULES)
    rule_set = compile_rule_file(tmp_path / "docs.yaml")
    frame = pl.DataFrame(
        {
            "doc_id": ["1", "2", "2", "4", "5"],
            "priority": ["1", "2", "3", "9", "oops"],
            "text": ["Invoice late", "hello", "LOUD TEXT", "fine", "vpn"],
            "label": ["billing", "vpn", "vpn", "vpn", "billing"],
            "source": ["f"] * 5,
            "source_row": [1, 2, 3, 4, 5],
        }
    )
    passed, quarantine = apply_row_rules(frame, rule_set, "clean")
    assert passed["text"].to_list() == ["Invoice late"]
    assert sorted(quarantine.select("source_row", "rule").rows()) == [
        (2, "doc_id_unique"),
        (3, "doc_id_unique"),
        (4, "priority_range"),
        (5, "priority_dtype"),
    ]
    warnings = warning_rows(frame, rule_set)
    assert warnings.select("__row", "__rule").rows() == [(2, "no_shouting")]


def test_a_row_failing_only_a_row_rule_is_quarantined_with_the_whole_record(tmp_path: Path) -> None:
    (tmp_path / "docs.yaml").write_text(MORE_RULES)
    frame = pl.DataFrame(
        {
            "doc_id": ["1"],
            "priority": ["1"],
            "text": ["vpn down"],
            "label": ["billing"],
            "source": ["f"],
            "source_row": [7],
        }
    )
    _, quarantine = apply_row_rules(frame, compile_rule_file(tmp_path / "docs.yaml"), "clean")
    row = quarantine.row(0, named=True)
    assert (row["rule"], row["reason"], row["source_row"]) == (
        "billing_mentions_invoice",
        "billing tickets mention an invoice",
        7,
    )
    assert '"text":"vpn down"' in row["record"]


def _rule(kind: str, threshold, column: str = "label") -> "DatasetRule":
    return DatasetRule(name=kind, kind=kind, threshold=threshold, description=kind, severity="error", column=column)


DOCS = pl.DataFrame(
    {"text": ["short one", "a much longer ticket text here", "short one", None], "label": ["a", "b", "a", None]}
)


@pytest.mark.parametrize(
    ("rule", "passes", "fails"),
    [
        (_rule("max_missing_rate", 0.2), DOCS.head(3), DOCS),
        (_rule("max_duplicate_rate", 0.0, "text"), DOCS.slice(0, 2), DOCS.head(3)),
        (_rule("label_set", ["a", "b"]), DOCS.head(2), DOCS.head(1)),
        (
            _rule("text_length", {"min_median": 5, "max_p95": 40}, "text"),
            DOCS.head(3),
            DOCS.head(1).with_columns(pl.lit("x").alias("text")),
        ),
    ],
    ids=["missing", "duplicates", "label-set", "text-length"],
)
def test_each_dataset_rule_passes_and_fails(rule, passes: pl.DataFrame, fails: pl.DataFrame) -> None:
    assert evaluate_dataset_rule(passes, rule).passed
    outcome = evaluate_dataset_rule(fails, rule)
    assert not outcome.passed and outcome.detail


def test_drift_rules_compare_with_the_previous_version() -> None:
    before = pl.DataFrame({"label": ["a"] * 50 + ["b"] * 50, "text": ["ten chars!"] * 100})
    same = pl.DataFrame({"label": ["a"] * 48 + ["b"] * 52, "text": ["ten chars?"] * 100})
    shifted = pl.DataFrame({"label": ["a"] * 95 + ["b"] * 5, "text": ["a much longer text than before"] * 100})
    psi, shift = _rule("max_label_psi", 0.25), _rule("max_length_shift", 0.5, "text")
    assert evaluate_dataset_rule(same, psi, VersionContext(before)).passed
    assert not evaluate_dataset_rule(shifted, psi, VersionContext(before)).passed
    assert evaluate_dataset_rule(same, shift, VersionContext(before)).passed
    assert not evaluate_dataset_rule(shifted, shift, VersionContext(before)).passed
    first = evaluate_dataset_rule(shifted, psi, VersionContext(None))
    assert first.passed and first.detail == "no previous version to compare with"
    assert population_stability_index(before["label"], before["label"]) == 0.0


def test_rejected_rate_uses_the_stage_input_size() -> None:
    rule = _rule("max_rejected_rate", 0.2)
    assert evaluate_dataset_rule(DOCS, rule, VersionContext(rows_in=5)).passed
    assert not evaluate_dataset_rule(DOCS, rule, VersionContext(rows_in=6)).passed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("asset: d\nrows:\n  - name: r\n    expr: 'text LIKE'\n", r"d\.yaml:4: key 'expr': not a valid SQL expression"),
        (
            "asset: d\ndataset:\n  - name: r\n    max_drift: 1\n",
            r"d\.yaml:4: key 'max_drift': unknown key in dataset rule",
        ),
        (
            "asset: d\ndataset:\n  - name: r\n    text_length: {p99: 3}\n",
            r"d\.yaml:4: key 'p99': unknown key in text_length",
        ),
        ("asset: d\ncolumns:\n  t:\n    unique: 'yes'\n", r"d\.yaml:4: key 'unique': expected bool"),
        ("asset: d\npii:\n  types: [email, fax]\n", r"d\.yaml:3: key 'types': unknown PII types \['fax'\]"),
        ("asset: d\nquality:\n  min_wrds: 3\n", r"d\.yaml:3: key 'min_wrds': unknown key in quality"),
    ],
)
def test_more_broken_rule_files_name_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "d.yaml").write_text(text)
    with pytest.raises(RuleError, match=message):
        compile_rule_file(tmp_path / "d.yaml")


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("read_csv('/etc/passwd') IS NOT NULL", "calls read_csv: a rule may call only"),
        ("length(lpad(text, 100000000, 'x')) > 0", "calls lpad"),
        ("repeat(text, 1000000) <> ''", "calls repeat"),
        ("text IN (SELECT column_1 FROM read_csv('http://127.0.0.1:1/x'))", "calls read_csv"),
        ("text IN (SELECT 'x') OR (SELECT 1) = 1", "no queries, comments or quoted names (found a subquery)"),
        ("\"read_csv\"('/etc/passwd') IS NULL", "no queries, comments or quoted names"),
        ("\"text\" = 'x'", "found the quoted name 'text'"),
        ("`lpad`(text, 100000000, 'x') <> ''", "not a valid SQL expression: Invalid expression"),
        ("lpad/**/(text, 100000000, 'x') <> ''", "calls lpad"),
        ("/*'*/ lpad(text, 100000000, 'x') = 'x' /*'*/", "calls lpad"),
        ("text = 'x' /* a note */", "no queries, comments or quoted names"),
        ("length(" + "||".join(["text"] * 20) + ") > 0", "concatenates or adds more than 8 times"),
        ("length(" + "+".join(["text"] * 20) + ") > 0", "concatenates or adds more than 8 times"),
        ("regexp_like(text, lower(label))", "a regular expression must be a string literal"),
        (
            "$$'$$ = $$x$$ OR text IN (SELECT column_1 FROM read_csv('/etc/passwd')) OR $$'$$ = $$y$$",
            "calls read_csv",
        ),
        ("$$'$$ = $$x$$ OR lpad(text, 100000000, 'x') = 'x' OR $$'$$ = $$y$$", "calls lpad"),
        ("$$'$$ = $$x$$ OR EXISTS (SELECT 1) OR $$'$$ = $$y$$", "no queries"),
        ("docs.text = 'x'", "found the qualified name"),
        ("cast(text AS bytea) = 'x'", "casts to VARBINARY: a rule may cast to"),
        ("text = 'x'; DROP TABLE t", "no queries"),
    ],
    ids=[
        "table-function",
        "lpad",
        "repeat",
        "subquery",
        "select",
        "quoted-call",
        "quoted-column",
        "backticks",
        "comment",
        "quote-in-comment",
        "trailing-comment",
        "concatenation",
        "plus-concatenation",
        "regex-from-data",
        "dollar-quoted-subquery",
        "dollar-quoted-lpad",
        "dollar-quoted-exists",
        "qualified-column",
        "cast-type",
        "statements",
    ],
)
def test_a_rule_expression_may_only_call_column_functions(tmp_path: Path, expr: str, message: str) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(f"asset: d\nrows:\n  - name: r\n    expr: {json.dumps(expr)}\n")
    with pytest.raises(RuleError, match=rf"d\.yaml:4: key 'expr': .*{re.escape(message)}"):
        compile_rule_file(path)


def test_allowed_functions_and_words_inside_string_literals_still_compile(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    expr = "NOT regexp_like(text, 'read_csv\\\\(x\\\\)') AND length(trim(lower(text))) > 2 AND label IN ('a', 'b')"
    path.write_text(f"asset: d\nrows:\n  - name: r\n    expr: {json.dumps(expr)}\n")
    assert compile_rule_file(path).row_rules


def test_a_yaml_bomb_is_refused_at_once_and_a_huge_file_unread(tmp_path: Path) -> None:
    import time

    lines = ["asset: d", 'a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 10)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    with pytest.raises(RuleError, match=r"bomb\.yaml: not valid YAML: .*aliases \(\*name\) are not allowed"):
        compile_rule_file(bomb)
    assert time.monotonic() - started < 1
    huge = tmp_path / "huge.yaml"
    huge.write_text("asset: d\n# " + "x" * (2 * 1024 * 1024) + "\n")
    with pytest.raises(RuleError, match=r"huge\.yaml: \d+ bytes; a YAML file here may hold at most"):
        compile_rule_file(huge)


@pytest.mark.parametrize(
    ("rules", "key"),
    [
        (
            "asset: d\ncolumns:\n  text:\n    checks:\n      - name: r\n        str_matches: '^(?!spam).*'\n",
            "str_matches",
        ),
        ("asset: d\nrows:\n  - name: r\n    expr: \"regexp_like(text, '(?<=SSN )[0-9]+')\"\n", "expr"),
        ("asset: d\nrows:\n  - name: r\n    expr: 'text ~ $$(a)\\1$$'\n", "expr"),
        (
            "asset: d\npii:\n  national_ids:\n    - name: ssn\n      pattern: '(?<=SSN )[0-9]+'\n",
            "pattern",
        ),
    ],
    ids=["str_matches-look-ahead", "regexp_like-look-behind", "operator-back-reference", "pii-look-behind"],
)
def test_a_pattern_polars_cannot_run_is_refused_when_the_rules_compile(tmp_path: Path, rules: str, key: str) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(rules)
    with pytest.raises(RuleError, match=rf"key '{key}': bad regex for Polars' engine: .*not supported"):
        compile_rule_file(path)


def test_a_rules_file_nested_thousands_deep_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("asset: d\nrows: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(RuleError, match=r"deep\.yaml: not valid YAML: .*nested deeper than 64 levels"):
        compile_rule_file(path)
