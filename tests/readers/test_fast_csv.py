"""The CSV fast path: Polars parses only chunks proven clean, and gives exactly what the careful parser gives."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.readers import fast_csv
from assets.readers.formats import careful_records, csv_dialect, read_delimited
from assets.readers.mapping import RecordMapping

FIELD = st.text(alphabet=st.sampled_from(list('ab ,"\n\r;é€\tx')), max_size=12)
CONFIG = RecordMapping(delimiter=",")  # tiny samples would be sniffed at random


def records_of(batches) -> tuple[list[tuple], list[tuple]]:
    """Every record (values and line) and every reject (line and rule) of a reader's batches."""
    rows, rejects = [], []
    for batch in batches:
        rejects += [(r["source_row"], r["rule"]) for r in batch.rejects]
        if batch.frame is not None:
            rows += batch.frame.rows()
        elif batch.size:
            names = list(batch.columns)
            rows += list(zip(*(batch.columns[n] for n in names), strict=True))
    return sorted(rows, key=lambda r: r[-1]), sorted(rejects)


def both_ways(data: bytes) -> tuple[tuple, tuple]:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "x.csv"
        path.write_bytes(data)
        fast = records_of(read_delimited(path, "x.csv", CONFIG, 7))
        encoding, delimiter = csv_dialect(path, CONFIG)
        with path.open("rb") as stream:
            careful = records_of(careful_records(stream, encoding, delimiter, path, "x.csv", CONFIG, 7))
    return fast, careful


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(FIELD, FIELD, FIELD), max_size=30), st.sampled_from(["\n", "\r\n"]))
def test_a_csv_the_csv_module_writes_parses_as_the_careful_parser_does(rows, terminator) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=terminator)
    writer.writerow(["text", "label", "note"])
    writer.writerows(rows)
    fast, careful = both_ways(buffer.getvalue().encode())
    assert fast == careful


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(alphabet=st.sampled_from(list('ab,"\r\x00é\n\xff')), max_size=15), max_size=25))
def test_a_messy_csv_parses_as_the_careful_parser_does(lines) -> None:
    data = b"text,label\n" + "\n".join(lines).encode("utf-8", "surrogateescape").replace(b"\xc3\xbf", b"\xff")
    fast, careful = both_ways(data)
    assert fast == careful


def test_chunks_cut_between_records_keep_every_record_and_line_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_csv, "CHUNK_BYTES", 64)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label"])
    writer.writerows([(f'line {n}, "quoted"\nsecond line {n}', f"l{n % 3}") for n in range(200)])
    fast, careful = both_ways(buffer.getvalue().encode())
    assert fast == careful and len(fast[0]) == 200 and fast[0][-1][-1] == 2 + 2 * 199


def test_a_clean_chunk_goes_through_polars_and_a_bad_one_through_the_careful_parser(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("text,label\n" + "".join(f"fine {n},a\n" for n in range(50)) + "too,many,fields\nlast,b\n")
    batches = list(read_delimited(path, "x.csv", CONFIG, 1000))
    assert [type(b.frame) for b in batches] == [type(None)]  # one chunk, not clean: careful
    rows, rejects = records_of(batches)
    assert len(rows) == 51 and rejects == [(52, "csv_field_count")]
    path.write_text("text,label\n" + "".join(f"fine {n},a\n" for n in range(50)))
    (batch,) = read_delimited(path, "x.csv", CONFIG, 1000)
    assert isinstance(batch.frame, pl.DataFrame) and batch.frame["source_row"].to_list() == list(range(2, 52))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(alphabet=st.sampled_from(list('ab,"\ré')), max_size=15), min_size=1, max_size=60))
def test_a_messy_csv_cut_into_many_chunks_loses_no_line(lines) -> None:
    fast_csv.CHUNK_BYTES, saved = 16, fast_csv.CHUNK_BYTES
    try:
        data = ("text,label\n" + "\n".join(lines) + "\n").encode()
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "x.csv"
            path.write_bytes(data)
            rows, rejects = records_of(read_delimited(path, "x.csv", CONFIG, 7))
    finally:
        fast_csv.CHUNK_BYTES = saved
    covered = set()
    for row in rows:  # a record covers its first line and one more per line break inside its values
        covered |= set(range(row[-1], row[-1] + sum(str(v).count("\n") for v in row[:-1]) + 1))
    blank = {n + 2 for n, line in enumerate(lines) if not line.strip("\r")}  # the csv module skips these
    assert covered | {line for line, _ in rejects} | blank >= set(range(2, len(lines) + 2))


def test_a_tab_inside_a_quoted_field_does_not_make_the_comma_file_tab_delimited(tmp_path: Path) -> None:
    from assets.readers.drop import read_drop

    (tmp_path / "t.csv").write_text('text,label\n"""\t",vpn\n"a\tb\tc",printer\n', encoding="utf-8")
    drop = read_drop(tmp_path)
    assert drop.quarantine.is_empty()
    assert drop.documents.select("text", "label").rows() == [('"\t', "vpn"), ("a\tb\tc", "printer")]
