"""Reading one landing drop (CSV, NDJSON, JSON, Parquet files) into documents and rejects."""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import polars as pl
import yaml

from assets.documents import DOCUMENT_SCHEMA, QUARANTINE_SCHEMA, content_hash, quarantine_raw

SOURCE_FILE = "_source.yaml"
DATA_SUFFIXES = (".csv", ".tsv", ".ndjson", ".jsonl", ".json", ".parquet")

csv.field_size_limit(sys.maxsize)


class IngestError(ValueError):
    """A drop that cannot be ingested at all; the message names the file and what is wrong."""


@dataclass(frozen=True)
class SourceMapping:
    """Which of the source's columns hold Refinery's text, label and record id."""

    text_column: str = "text"
    label_column: str = "label"
    id_column: str | None = None

    @classmethod
    def from_yaml(cls, path: Path) -> SourceMapping:
        """Read a `_source.yaml`; an unknown key or a non-string value names the file and key."""
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise IngestError(f"{path}: not valid YAML: {error}") from error
        if not isinstance(loaded, dict):
            raise IngestError(f"{path}: expected a mapping of keys to column names")
        known = {f.name for f in fields(cls)}
        for key, value in loaded.items():
            if key not in known:
                raise IngestError(f"{path}: unknown key {key!r} (known: {', '.join(sorted(known))})")
            if value is not None and not isinstance(value, str):
                raise IngestError(f"{path}: key {key!r} must be a column name, got {value!r}")
        return cls(**loaded)

    def to_yaml(self) -> str:
        """The mapping as `_source.yaml` text."""
        return yaml.safe_dump({k: v for k, v in self.__dict__.items() if v is not None})


@dataclass
class IngestedDrop:
    """What one drop yielded: documents, rejected records, and per-file provenance."""

    documents: pl.DataFrame
    quarantine: pl.DataFrame
    files: list[dict[str, object]] = field(default_factory=list)

    @property
    def records_read(self) -> int:
        return self.documents.height + self.quarantine.height


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_files(folder: Path) -> list[Path]:
    """The data files of a drop, sorted; names starting with '_' or '.' are control files."""
    if folder.is_file():
        return [folder]
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(p.startswith(("_", ".")) for p in relative.parts):
            continue
        if path.suffix.lower() not in DATA_SUFFIXES:
            raise IngestError(f"{path}: unsupported file type (expected one of {', '.join(DATA_SUFFIXES)})")
        found.append(path)
    return found


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise IngestError(f"{path}: not valid UTF-8 at line {line} (byte {error.start})") from error


def _require_columns(path: Path, present: list[str], mapping: SourceMapping) -> None:
    wanted = [mapping.text_column, mapping.label_column, mapping.id_column]
    missing = [c for c in wanted if c is not None and c not in present]
    if missing:
        raise IngestError(f"{path}: mapped column {missing[0]!r} not found (columns: {', '.join(present)})")


def _record(mapping: SourceMapping, values: dict[str, object], source: str, row: int) -> dict[str, object]:
    def text_of(column: str | None) -> str | None:
        value = values.get(column) if column else None
        return None if value is None else str(value)

    return {
        "source_id": text_of(mapping.id_column),
        "text": text_of(mapping.text_column),
        "label": text_of(mapping.label_column),
        "source": source,
        "source_row": row,
    }


def read_delimited(path: Path, source: str, mapping: SourceMapping) -> tuple[list[dict], list[dict]]:
    """Read a CSV/TSV file with a header; a record with the wrong field count is rejected alone."""
    lines = _decode(path).splitlines(keepends=True)
    reader = csv.reader(iter(lines), delimiter="\t" if path.suffix.lower() == ".tsv" else ",", strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return [], []
    _require_columns(path, header, mapping)
    records, rejects = [], []
    consumed = reader.line_num
    while True:
        try:
            fields_ = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raw = "".join(lines[consumed : reader.line_num])
            rejects.append(quarantine_raw(source, consumed + 1, "csv_parse", f"malformed CSV: {error}", raw))
            consumed = reader.line_num
            continue
        first_line, consumed = consumed + 1, reader.line_num
        if not fields_:
            continue
        if len(fields_) != len(header):
            raw = "".join(lines[first_line - 1 : consumed])
            reason = f"expected {len(header)} fields, found {len(fields_)}"
            rejects.append(quarantine_raw(source, first_line, "csv_field_count", reason, raw))
            continue
        records.append(_record(mapping, dict(zip(header, fields_, strict=True)), source, first_line))
    return records, rejects


def read_ndjson(path: Path, source: str, mapping: SourceMapping) -> tuple[list[dict], list[dict]]:
    """Read newline-delimited JSON objects; a line that is not a JSON object is rejected alone."""
    records, rejects, seen_columns = [], [], set()
    for number, line in enumerate(_decode(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            rejects.append(quarantine_raw(source, number, "json_parse", f"invalid JSON: {error.msg}", line))
            continue
        if not isinstance(value, dict):
            rejects.append(quarantine_raw(source, number, "json_record_type", "not a JSON object", line))
            continue
        seen_columns.update(value)
        records.append(_record(mapping, value, source, number))
    if records:
        _require_columns(path, sorted(seen_columns), mapping)
    return records, rejects


def read_json_array(path: Path, source: str, mapping: SourceMapping) -> tuple[list[dict], list[dict]]:
    """Read a JSON array of objects; an element that is not an object is rejected alone."""
    try:
        values = json.loads(_decode(path))
    except json.JSONDecodeError as error:
        raise IngestError(f"{path}: invalid JSON at line {error.lineno}: {error.msg}") from error
    if not isinstance(values, list):
        raise IngestError(f"{path}: expected a JSON array of records")
    records, rejects, seen_columns = [], [], set()
    for number, value in enumerate(values, start=1):
        if not isinstance(value, dict):
            rejects.append(quarantine_raw(source, number, "json_record_type", "not a JSON object", value))
            continue
        seen_columns.update(value)
        records.append(_record(mapping, value, source, number))
    if records:
        _require_columns(path, sorted(seen_columns), mapping)
    return records, rejects


def read_parquet(path: Path, source: str, mapping: SourceMapping) -> tuple[list[dict], list[dict]]:
    """Read a Parquet file; every row is a record."""
    frame = pl.read_parquet(path)
    _require_columns(path, frame.columns, mapping)
    rows = frame.with_row_index("__row", offset=1).iter_rows(named=True)
    return [_record(mapping, row, source, row["__row"]) for row in rows], []


READERS = {
    ".csv": read_delimited,
    ".tsv": read_delimited,
    ".ndjson": read_ndjson,
    ".jsonl": read_ndjson,
    ".json": read_json_array,
    ".parquet": read_parquet,
}


def read_drop(location: Path, mapping: SourceMapping | None = None) -> IngestedDrop:
    """Read every data file of a drop (a folder or one file) into documents and quarantine rows."""
    if not location.exists():
        raise IngestError(f"{location}: no such file or folder")
    if mapping is None:
        control = (location if location.is_dir() else location.parent) / SOURCE_FILE
        mapping = SourceMapping.from_yaml(control) if control.exists() else SourceMapping()
    records, rejects, files = [], [], []
    base = location if location.is_dir() else location.parent
    for path in data_files(location):
        source = path.relative_to(base).as_posix()
        file_records, file_rejects = READERS[path.suffix.lower()](path, source, mapping)
        records += file_records
        rejects += file_rejects
        files.append(
            {"file": source, "sha256": sha256_file(path), "records": len(file_records), "rejected": len(file_rejects)}
        )
    if not files:
        raise IngestError(f"{location}: no data files (expected one of {', '.join(DATA_SUFFIXES)})")
    documents = pl.DataFrame(records, schema={k: v for k, v in DOCUMENT_SCHEMA.items() if k != "doc_id"})
    documents = documents.with_columns(content_hash(documents["text"]).alias("doc_id")).select(list(DOCUMENT_SCHEMA))
    return IngestedDrop(documents, pl.DataFrame(rejects, schema=QUARANTINE_SCHEMA), files)
