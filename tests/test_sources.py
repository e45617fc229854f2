"""Ingestion readers: every record arrives as a document or as its own quarantine row."""

import json
from pathlib import Path

import polars as pl
import pytest

from assets.sources import IngestError, SourceMapping, read_drop


def test_csv_line_with_wrong_field_count_is_quarantined_alone_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(
        'id,text,label\n1,"first, with comma",a\n2,broken,line,extra\n3,"multi\nline",b\n4,last,a\n'
    )
    drop = read_drop(tmp_path, SourceMapping(id_column="id"))
    assert drop.documents["source_id"].to_list() == ["1", "3", "4"]
    assert drop.documents["source_row"].to_list() == [2, 4, 6]
    assert drop.documents["text"][1] == "multi\nline"
    rejected = drop.quarantine.row(0, named=True)
    assert (rejected["source"], rejected["source_row"], rejected["rule"]) == ("t.csv", 3, "csv_field_count")
    assert rejected["record"] == "2,broken,line,extra\n"
    assert drop.records_read == 4


def test_ndjson_bad_lines_do_not_swallow_their_neighbours(tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": "one", "label": "a"}),
        "{not json",
        "[1, 2]",
        json.dumps({"text": "two", "label": "b"}),
    ]
    (tmp_path / "t.ndjson").write_text("\n".join(lines) + "\n")
    drop = read_drop(tmp_path)
    assert drop.documents["text"].to_list() == ["one", "two"]
    assert drop.quarantine.select("source_row", "rule").rows() == [(2, "json_parse"), (3, "json_record_type")]


def test_json_array_and_parquet_are_read_with_row_numbers(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps([{"text": "x1", "label": "a"}, 5, {"text": "x2", "label": "b"}]))
    pl.DataFrame({"text": ["p1", "p2"], "label": ["a", "b"]}).write_parquet(tmp_path / "b.parquet")
    drop = read_drop(tmp_path)
    assert drop.documents.select("source", "source_row", "text").rows() == [
        ("a.json", 1, "x1"),
        ("a.json", 3, "x2"),
        ("b.parquet", 1, "p1"),
        ("b.parquet", 2, "p2"),
    ]
    assert drop.quarantine.select("source", "source_row").rows() == [("a.json", 2)]


def test_doc_id_is_a_stable_content_hash(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("text,label\nsame text,a\nsame text,b\nother,a\n")
    ids = read_drop(tmp_path).documents["doc_id"].to_list()
    assert ids[0] == ids[1] != ids[2]
    assert ids == read_drop(tmp_path).documents["doc_id"].to_list()


def test_missing_mapped_column_names_the_file_and_column(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("body,label\nhello,a\n")
    with pytest.raises(IngestError, match=r"t\.csv: mapped column 'text' not found"):
        read_drop(tmp_path)


def test_source_yaml_maps_columns_and_rejects_unknown_keys(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("body,queue\nhello there,a\n")
    (tmp_path / "_source.yaml").write_text("text_column: body\nlabel_column: queue\n")
    assert read_drop(tmp_path).documents.select("text", "label").row(0) == ("hello there", "a")
    (tmp_path / "_source.yaml").write_text("text_colum: body\n")
    with pytest.raises(IngestError, match=r"_source\.yaml: unknown key 'text_colum'"):
        read_drop(tmp_path)


def test_unsupported_file_and_invalid_utf8_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "notes.docx").write_bytes(b"x")
    with pytest.raises(IngestError, match=r"notes\.docx: unsupported file type"):
        read_drop(tmp_path)
    (tmp_path / "notes.docx").unlink()
    (tmp_path / "t.csv").write_bytes(b"text,label\ncaf\xe9,a\n")
    with pytest.raises(IngestError, match=r"t\.csv: not valid UTF-8 at line 2 \(byte 14\)"):
        read_drop(tmp_path)
