"""The NDJSON fast path: Arrow parses only chunks proven clean, and gives exactly what the careful parser gives."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.readers import fast_csv
from assets.readers.drop import _as_text, read_drop
from assets.readers.formats import careful_ndjson, read_ndjson
from assets.readers.mapping import RecordMapping

CONFIG = RecordMapping()
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
VALUES = SCALARS | st.lists(SCALARS, max_size=2) | st.dictionaries(st.sampled_from("xy"), SCALARS, max_size=2)
OBJECTS = st.dictionaries(st.sampled_from(["text", "label", "when", "n"]), VALUES, max_size=4).map(json.dumps)
ODD_LINES = st.sampled_from(
    [
        "",
        "  ",
        "[1, 2]",
        '"text"',
        "{bad json",
        '{"text": "\xff"}',
        '{"a": 1, "a": 2}',
        '{"a": "x"} {"a": "y"}',
        ' {"a": "indented"}',
        '{"\xff": "bad key"}',
    ]
)
LINES = st.lists(OBJECTS | ODD_LINES, max_size=25)


def records_of(batches) -> tuple[list[tuple], list[tuple]]:
    """Every record (its non-null values as text, and its line) and every reject (line and rule)."""
    rows, rejects = [], []
    for batch in batches:
        rejects += [(r["source_row"], r["rule"]) for r in batch.rejects]
        if batch.frame is not None:
            records = batch.frame.to_dicts()
        else:
            records = [{k: v[i] for k, v in batch.columns.items()} for i in range(batch.size)]
        for record in records:
            line = record.pop("source_row")
            rows.append((line, sorted((k, _as_text(v)) for k, v in record.items() if v is not None)))
    return sorted(rows), sorted(rejects)


def both_ways(data: bytes) -> tuple[tuple, tuple]:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "x.ndjson"
        path.write_bytes(data)
        fast = records_of(read_ndjson(path, "x.ndjson", CONFIG, 7))
        with path.open("rb") as stream:
            careful = records_of(careful_ndjson(stream, "utf-8", "x.ndjson", CONFIG, 7))
    return fast, careful


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(LINES, st.sampled_from(["\n", "\r\n"]))
def test_any_ndjson_parses_as_the_careful_parser_does(lines: list[str], terminator: str) -> None:
    data = terminator.join(lines).encode("utf-8", "surrogateescape").replace(b"\xc3\xbf", b"\xff")
    fast, careful = both_ways(data)
    assert fast == careful


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OBJECTS, min_size=1, max_size=40))
def test_chunks_cut_between_lines_keep_every_record_and_line_number(lines: list[str]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast_csv, "CHUNK_BYTES", 64)
        fast, careful = both_ways(("\n".join(lines) + "\n").encode())
    assert fast == careful


def test_a_clean_file_goes_through_arrow_and_a_bad_line_is_isolated_with_its_number(tmp_path: Path) -> None:
    clean = "".join(
        json.dumps({"text": f"fine {n}", "label": "a", "at": "2026-11-26T10:00:00", "n": n}) + "\n" for n in range(50)
    )
    (tmp_path / "clean.ndjson").write_text(clean)
    batches = list(read_ndjson(tmp_path / "clean.ndjson", "clean.ndjson", CONFIG, 1000))
    assert all(b.frame is not None for b in batches) and sum(b.size for b in batches) == 50
    assert batches[0].frame.row(0, named=True) == {
        "text": "fine 0",
        "label": "a",
        "at": "2026-11-26T10:00:00",
        "n": "0",
        "source_row": 1,
    }  # an ISO date stays its text
    (tmp_path / "clean.ndjson").unlink()
    (tmp_path / "messy.ndjson").write_text(clean + "{not json\n" + json.dumps({"text": "last", "label": "b"}) + "\n")
    drop = read_drop(tmp_path)
    assert drop.records_read == 52 and drop.documents.height == 51 and drop.quarantine["source_row"].to_list() == [51]
    assert drop.documents.filter(drop.documents["text"] == "last")["source_row"].to_list() == [52]
