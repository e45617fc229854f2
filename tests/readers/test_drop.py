"""File ingestion: every record arrives as a document or as its own quarantine row, whatever the file."""

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from assets.readers.drop import IngestError, RecordMapping, read_drop


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_csv_line_with_wrong_field_count_is_quarantined_alone_with_its_line(tmp_path: Path) -> None:
    _write(
        tmp_path / "t.csv", 'id,text,label\n1,"first, with comma",a\n2,broken,line,extra\n3,"multi\nline",b\n4,last,a\n'
    )
    drop = read_drop(tmp_path, RecordMapping(id_column="id"))
    assert drop.documents["source_id"].to_list() == ["1", "3", "4"]
    assert drop.documents["source_row"].to_list() == [2, 4, 6]
    assert drop.documents["text"][1] == "multi\nline"
    rejected = drop.quarantine.row(0, named=True)
    assert (rejected["source"], rejected["source_row"], rejected["rule"]) == ("t.csv", 3, "csv_field_count")
    assert rejected["record"] == "2,broken,line,extra\n"
    assert drop.records_read == 4


def test_an_unclosed_quote_is_quarantined_alone_and_never_swallows_its_neighbours(tmp_path: Path) -> None:
    lines = ["text,label", "fine one,a", '"never closed,a', "fine two,b", '"quoted, ok",c', "fine three,a"]
    _write(tmp_path / "t.csv", "\n".join(lines) + "\n")
    drop = read_drop(tmp_path)
    assert drop.documents["text"].to_list() == ["fine one", "fine two", "quoted, ok", "fine three"]
    assert drop.documents["source_row"].to_list() == [2, 4, 5, 6]
    assert drop.quarantine.select("source_row", "record").rows() == [(3, '"never closed,a\n')]


def test_semicolon_delimiter_is_detected_and_a_header_less_file_takes_declared_columns(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "t.csv", 'text;label\n"a; b";x\nc;y\n')
    assert read_drop(tmp_path / "a").documents.select("text", "label").rows() == [("a; b", "x"), ("c", "y")]
    _write(tmp_path / "b" / "t.csv", "printer jammed|printer\n")
    config = RecordMapping(has_header=False, columns=("body", "queue"), text_column="body", label_column="queue")
    assert read_drop(tmp_path / "b", config).documents.select("text", "label", "source_row").rows() == [
        ("printer jammed", "printer", 1)
    ]
    with pytest.raises(IngestError, match="has_header is false"):
        read_drop(tmp_path / "b", RecordMapping(has_header=False))


@pytest.mark.parametrize(
    ("data", "config", "expected"),
    [
        ("text,label\ncafé crème,a\n".encode("utf-8-sig"), RecordMapping(), "café crème"),
        ("text,label\ncafé “crème”,a\n".encode("cp1252"), RecordMapping(), "café “crème”"),
        ("text,label\nnaïve,a\n".encode("latin-1"), RecordMapping(encoding="latin-1"), "naïve"),
        ("text,label\ncafé,a\n".encode("utf-16"), RecordMapping(), "café"),
    ],
    ids=["utf-8-bom", "windows-1252-detected", "latin-1-declared", "utf-16"],
)
def test_encodings_are_detected_or_declared(tmp_path: Path, data: bytes, config: RecordMapping, expected: str) -> None:
    _write(tmp_path / "t.csv", data)
    assert read_drop(tmp_path, config).documents["text"].to_list() == [expected]


def test_a_line_with_invalid_bytes_is_quarantined_alone(tmp_path: Path) -> None:
    _write(tmp_path / "t.csv", "text,label\ncafé,a\n".encode() + b"bad \xff\xfe byte,a\n" + "über,b\n".encode())
    drop = read_drop(tmp_path)
    assert drop.documents["text"].to_list() == ["café", "über"]
    rejected = drop.quarantine.row(0, named=True)
    assert (rejected["source_row"], rejected["rule"], rejected["record"]) == (
        3,
        "invalid_bytes",
        "bad \\xff\\xfe byte,a\n",
    )


def test_ndjson_bad_lines_do_not_swallow_their_neighbours(tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": "one", "label": "a"}),
        "{not json",
        "[1, 2]",
        json.dumps({"text": "two", "label": "b"}),
    ]
    _write(tmp_path / "t.ndjson", "\n".join(lines) + "\n")
    drop = read_drop(tmp_path)
    assert drop.documents["text"].to_list() == ["one", "two"]
    assert drop.quarantine.select("source_row", "rule").rows() == [(2, "json_parse"), (3, "json_record_type")]


def test_json_array_and_parquet_are_read_with_row_numbers(tmp_path: Path) -> None:
    _write(tmp_path / "a.json", json.dumps([{"text": "x1", "label": "a"}, 5, {"text": "x2", "label": "b"}]))
    pl.DataFrame({"text": ["p1", "p2"], "label": ["a", "b"]}).write_parquet(tmp_path / "b.parquet")
    drop = read_drop(tmp_path)
    assert drop.documents.select("source", "source_row", "text").rows() == [
        ("a.json", 1, "x1"),
        ("a.json", 3, "x2"),
        ("b.parquet", 1, "p1"),
        ("b.parquet", 2, "p2"),
    ]
    assert drop.quarantine.select("source", "source_row").rows() == [("a.json", 2)]


def test_gzip_of_each_format_is_read_transparently(tmp_path: Path) -> None:
    _write(tmp_path / "a.csv.gz", gzip.compress(b"text,label\nzipped csv,a\n"))
    _write(tmp_path / "b.ndjson.gz", gzip.compress(b'{"text": "zipped ndjson", "label": "b"}\n'))
    parquet = tmp_path / "plain.parquet"
    pl.DataFrame({"text": ["zipped parquet"], "label": ["c"]}).write_parquet(parquet)
    _write(tmp_path / "c.parquet.gz", gzip.compress(parquet.read_bytes()))
    parquet.unlink()
    assert read_drop(tmp_path).documents["text"].to_list() == ["zipped csv", "zipped ndjson", "zipped parquet"]


def test_text_folders_give_one_document_per_file_labelled_by_sub_folder(tmp_path: Path) -> None:
    _write(tmp_path / "vpn_access" / "t1.txt", "vpn drops\nagain")
    _write(tmp_path / "printer_issue" / "deep" / "t2.txt", "paper jam")
    _write(tmp_path / "printer_issue" / "t3.txt.gz", gzip.compress(b"toner empty"))
    documents = read_drop(tmp_path).documents.sort("source")
    assert documents.select("text", "label", "source_id").rows() == [
        ("paper jam", "printer_issue", "printer_issue/deep/t2.txt"),
        ("toner empty", "printer_issue", "printer_issue/t3.txt.gz"),
        ("vpn drops\nagain", "vpn_access", "vpn_access/t1.txt"),
    ]


def test_new_source_columns_are_carried_along_as_nullable_text(tmp_path: Path) -> None:
    _write(tmp_path / "a.csv", "text,label,Priority,source\nx,a,high,web\n")
    _write(tmp_path / "b.ndjson", '{"text": "y", "label": "b"}\n{"text": "z", "label": "b", "team": {"id": 7}}\n')
    documents = read_drop(tmp_path).documents
    assert documents.select("text", "priority", "src_source", "team").rows() == [
        ("x", "high", "web", None),
        ("y", None, None, None),
        ("z", None, None, '{"id": 7}'),
    ]


def test_a_record_whose_mapped_column_is_not_text_is_quarantined_alone(tmp_path: Path) -> None:
    _write(
        tmp_path / "t.ndjson", '{"text": "ok", "label": "a"}\n{"text": ["a", "list"], "label": "a"}\n{"text": "b"}\n'
    )
    drop = read_drop(tmp_path)
    assert drop.documents["text"].to_list() == ["ok", "b"]
    (reject,) = drop.quarantine.iter_rows(named=True)
    assert (reject["rule"], reject["source"], reject["source_row"]) == ("mapped_value_type", "t.ndjson", 2)
    assert reject["reason"] == "column 'text' holds a list, not text" and '"list"' in reject["record"]


def test_doc_id_is_a_stable_content_hash(tmp_path: Path) -> None:
    _write(tmp_path / "t.csv", "text,label\nsame text,a\nsame text,b\nother,a\n")
    ids = read_drop(tmp_path).documents["doc_id"].to_list()
    assert ids[0] == ids[1] != ids[2]
    assert ids == read_drop(tmp_path).documents["doc_id"].to_list()


def test_missing_mapped_column_names_the_file_and_column(tmp_path: Path) -> None:
    _write(tmp_path / "t.csv", "body,label\nhello,a\n")
    with pytest.raises(IngestError, match=r"t\.csv: mapped column 'text' not found"):
        read_drop(tmp_path)


def test_source_yaml_maps_columns_and_rejects_unknown_keys_and_bad_values(tmp_path: Path) -> None:
    _write(tmp_path / "t.csv", "body,queue\nhello there,a\n")
    _write(tmp_path / "_source.yaml", "text_column: body\nlabel_column: queue\n")
    assert read_drop(tmp_path).documents.select("text", "label").row(0) == ("hello there", "a")
    for text, message in [
        ("text_colum: body\n", r"_source\.yaml: unknown key 'text_colum'"),
        ("has_header: 'yes'\n", r"_source\.yaml: key 'has_header' must be a bool"),
        ("encoding: klingon\n", r"_source\.yaml: key 'encoding': unknown encoding 'klingon'"),
        ("delimiter: '::'\n", r"_source\.yaml: key 'delimiter' must be one character"),
    ]:
        _write(tmp_path / "_source.yaml", text)
        with pytest.raises(IngestError, match=message):
            read_drop(tmp_path)


def test_unsupported_file_is_a_clear_error(tmp_path: Path) -> None:
    _write(tmp_path / "notes.docx", b"x")
    with pytest.raises(IngestError, match=r"notes\.docx: unsupported file type"):
        read_drop(tmp_path)
