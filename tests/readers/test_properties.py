"""Properties of the readers and the rule compiler, over inputs hypothesis invents."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.readers.drop import read_drop
from assets.readers.json_array import JsonArraySplitter
from rules import RuleError
from rules.compiler import compile_rule_file

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=60)
RECORDS = st.lists(st.tuples(TEXT, st.sampled_from(["vpn", "printer", "billing"])), min_size=1, max_size=20)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(RECORDS)
def test_any_csv_the_csv_module_writes_reads_back_record_for_record(records: list[tuple[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label"])
    writer.writerows(records)
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "t.csv").write_text(buffer.getvalue(), encoding="utf-8")
        drop = read_drop(Path(scratch))
    assert drop.quarantine.is_empty(), drop.quarantine.rows()
    assert drop.documents.select("text", "label").rows() == [tuple(r) for r in records]


@SETTINGS
@given(
    st.lists(st.one_of(RECORDS.map(lambda r: {"text": r[0][0], "label": r[0][1]}), st.text(max_size=30)), max_size=15)
)
def test_every_ndjson_line_is_a_document_or_a_quarantine_row(lines: list[object]) -> None:
    text = "\n".join(json.dumps(line) if isinstance(line, dict) else line for line in lines) + "\n"
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "t.ndjson").write_text(text, encoding="utf-8")
        drop = read_drop(Path(scratch))
    non_blank = sum(1 for line in text.split("\n") if line.strip())  # the reader splits on \n only, as NDJSON says
    assert drop.records_read == non_blank


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@SETTINGS
@given(st.lists(JSON_VALUES, max_size=12), st.integers(min_value=1, max_value=17), st.booleans())
def test_a_json_array_splits_into_its_elements_wherever_the_chunks_break(
    values: list[object], chunk: int, indent: bool
) -> None:
    text = json.dumps(values, indent=2 if indent else None, ensure_ascii=False)
    splitter = JsonArraySplitter(limit=1 << 20, where="t.json")
    pieces = [text[start : start + chunk] for start in range(0, len(text), chunk)]
    elements = [element for piece in pieces for element in splitter.feed(piece)] + list(splitter.finish())
    assert [json.loads(element) for element in elements] == values


@SETTINGS
@given(st.text(max_size=300))
def test_a_rules_file_compiles_or_fails_with_a_rule_error_naming_the_file(text: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "r.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            compile_rule_file(path)
        except RuleError as error:
            assert str(path) in str(error)
