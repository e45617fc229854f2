"""Streaming readers for file drops: CSV/TSV, NDJSON, JSON arrays, Parquet, text folders, and gzip of each.

Every reader yields `ParsedRecords`es of at most `batch_size` records, so a file of any size is
read in bounded memory. A record that cannot be read (wrong field count, unclosed quote,
invalid bytes, bad JSON) becomes its own reject with file, line and raw text; its neighbours
still arrive as their own records.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from assets.readers.encodings import SAMPLE_BYTES, detect_encoding
from assets.readers.fast_csv import fast_header, parse_clean_chunk, record_chunks
from assets.readers.fast_ndjson import parse_clean_ndjson
from assets.readers.json_array import Element, TrailingData, UnclosedArray, json_array_elements
from assets.readers.lines import (
    NumberedLines,
    OversizedLine,
    RecordTooLongError,
    bounded_lines,
    open_binary,
    oversized_reject,
)
from assets.readers.mapping import RecordMapping
from assets.readers.parquet import plain_parquet, read_parquet
from assets.readers.protocol import IngestError, ParsedRecords
from assets.storage.records import quarantine_raw

csv.field_size_limit(sys.maxsize)  # records are bounded by max_record_bytes per line instead

SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
    ".parquet": "parquet",
    ".txt": "text",
}
ESCAPED_BYTES = re.compile("[\udc80-\udcff]")  # bytes the decoder could not read, kept by surrogateescape


def file_format(path: Path, declared: str | None = None) -> str:
    """The format of a file from its suffix (gzip's `.gz` looked through) unless declared."""
    if declared:
        return declared
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = SUFFIX_FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise IngestError(f"{path}: unsupported file type (expected {', '.join(SUFFIX_FORMATS)}, optionally .gz)")
    return fmt


DELIMITERS = ",;\t|"


def header_delimiter(text: str) -> str | None:
    """The one delimiter the first line uses outside quotes; None when it uses none or several. A header is the
    surest witness: the sniffer, reading the records too, takes a tab inside a quoted field for the delimiter."""
    line = re.sub(r'"[^"]*"', "", text.split("\n", 1)[0])
    used = {delimiter for delimiter in DELIMITERS if delimiter in line}
    return used.pop() if len(used) == 1 else None


def _sniff_delimiter(text: str) -> str:
    found = header_delimiter(text)
    if found is not None:
        return found
    try:
        return csv.Sniffer().sniff(text, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _new_batch(names: list[str]) -> dict[str, list[object]]:
    return {name: [] for name in [*names, "source_row"]}


def csv_dialect(path: Path, config: RecordMapping) -> tuple[str, str]:
    """The encoding and delimiter of a delimited file: declared, or detected from its first MiB."""
    with open_binary(path) as stream:
        sample = stream.read(SAMPLE_BYTES)
    encoding = config.encoding or detect_encoding(sample)
    if config.delimiter:
        return encoding, config.delimiter
    if file_format(path, config.format) == "tsv":
        return encoding, "\t"
    return encoding, _sniff_delimiter(sample[:65536].decode(encoding, "replace"))


FAST_ENCODINGS = ("utf-8", "utf-8-sig")


def read_delimited(path: Path, source: str, config: RecordMapping, batch_size: int) -> Iterator[ParsedRecords]:
    """CSV/TSV records: chunks proven clean through Polars' native reader, the others line by line, where a bad
    record is rejected alone and parsing resumes on its next line."""
    encoding, delimiter = csv_dialect(path, config)
    fast = encoding in FAST_ENCODINGS and len(delimiter) == 1 and len(config.quote_char) == 1
    with open_binary(path) as stream:
        header = fast_header(stream, path, encoding, delimiter, config) if fast else None
        if header is None:
            stream.seek(0)
            yield from careful_records(stream, encoding, delimiter, path, source, config, batch_size)
            return
        first_line = 2 if config.has_header else 1
        for chunk in record_chunks(stream, ord(config.quote_char), first_line):
            limits = (config.max_record_bytes, config.max_record_lines)
            frame = parse_clean_chunk(chunk, header, delimiter, config.quote_char, *limits)
            if frame is None:
                rest = chunk.rest or io.BytesIO(chunk.data)  # the file's rest, or this chunk alone
                yield from careful_records(
                    rest, "utf-8", delimiter, path, source, config, batch_size, header, chunk.first_line - 1
                )
                continue
            for start in range(0, frame.height, batch_size):
                yield ParsedRecords({}, [], frame.slice(start, batch_size))


def _next_fields(parser: Iterator[list[str]], config: RecordMapping) -> list[str] | tuple[str, str] | None:
    """The next record's fields; None at the end; (rule, reason) for a record that does not parse."""
    try:
        return next(parser)
    except StopIteration:
        return None
    except csv.Error as error:
        return ("csv_parse", f"malformed CSV: {error}")
    except RecordTooLongError:
        limits = f"{config.max_record_lines} lines or {config.max_record_bytes} bytes"
        return ("csv_parse", f"quoted field still open after {limits}")


def _append_record(batch: dict[str, list], header: list[str], fields: list[str], source_row: int) -> None:
    """Add one parsed record's fields and its source row to the batch."""
    for name, value in zip(header, fields, strict=True):
        batch[name].append(value)
    batch["source_row"].append(source_row)


def careful_records(
    stream: IO[bytes],
    encoding: str,
    delimiter: str,
    path: Path,
    source: str,
    config: RecordMapping,
    batch_size: int,
    header: list[str] | None = None,
    first_number: int = 0,
) -> Iterator[ParsedRecords]:
    """Records parsed line by line with Python's csv module; `header` None: the stream starts with it."""
    lines = NumberedLines(stream, encoding, source, config, first_number)

    def reader() -> Iterator[list[str]]:
        return csv.reader(lines, delimiter=delimiter, quotechar=config.quote_char, strict=True)

    parser = reader()
    header = header or _read_header(path, parser, config)
    batch = _new_batch(header)
    rejected: list[dict[str, object]] = []

    def reject(reason_rule: str, reason: str) -> None:
        nonlocal parser
        consumed = lines.consumed
        first_number, first_text = consumed[0]
        rejected.append(quarantine_raw(source, first_number, reason_rule, reason, first_text))
        if len(consumed) > 1:  # the record swallowed later lines: parse them again on their own
            lines.push_back(consumed[1:])
        parser = reader()

    while True:
        lines.start_record()
        fields = _next_fields(parser, config)
        if fields is None:
            break
        if isinstance(fields, tuple):  # (rule, reason): the record does not parse
            reject(*fields)
            continue
        if not fields:
            continue
        if len(fields) != len(header):
            reject("csv_field_count", f"expected {len(header)} fields, found {len(fields)}")
            continue
        _append_record(batch, header, fields, lines.consumed[0][0])
        if len(batch["source_row"]) >= batch_size:
            yield ParsedRecords(batch, rejected + lines.rejects)
            batch, rejected, lines.rejects = _new_batch(header), [], []
    yield ParsedRecords(batch, rejected + lines.rejects)


def _read_header(path: Path, parser: Iterator[list[str]], config: RecordMapping) -> list[str]:
    if not config.has_header:
        if not config.columns:
            raise IngestError(f"{path}: has_header is false, so `columns` must name the fields")
        return list(config.columns)
    try:
        header = next(parser)
    except StopIteration:
        return list(config.columns or [])
    except (csv.Error, RecordTooLongError) as error:
        raise IngestError(f"{path}: line 1: the header is not valid CSV: {error}") from error
    names = [name.strip() for name in header]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates or "" in names:
        raise IngestError(f"{path}: line 1: header has empty or repeated column names {duplicates or ['']}")
    return names


def read_ndjson(path: Path, source: str, config: RecordMapping, batch_size: int) -> Iterator[ParsedRecords]:
    """Newline-delimited JSON objects: chunks proven clean through Arrow's JSON reader, the others line by line,
    where a line that is not a JSON object is rejected alone."""
    encoding = config.encoding or "utf-8"
    with open_binary(path) as stream:
        if encoding.lower() not in FAST_ENCODINGS:
            yield from careful_ndjson(stream, encoding, source, config, batch_size)
            return
        for chunk in record_chunks(stream, 0, 1):  # JSON strings hold no raw line breaks: no quote to track
            frame = parse_clean_ndjson(chunk.data, chunk.first_line, config.max_record_bytes)
            if frame is None:
                rest = chunk.rest or io.BytesIO(chunk.data)
                yield from careful_ndjson(rest, encoding, source, config, batch_size, chunk.first_line - 1)
                continue
            for start in range(0, frame.height, batch_size):
                yield ParsedRecords({}, [], frame.slice(start, batch_size))


def careful_ndjson(
    stream: IO[bytes], encoding: str, source: str, config: RecordMapping, batch_size: int, first_number: int = 0
) -> Iterator[ParsedRecords]:
    """Each line parsed alone; a bad line is rejected with its number and text, and parsing goes on."""
    columns: dict[str, list[object]] = {"source_row": []}
    rejects: list[dict[str, object]] = []
    for number, raw in enumerate(bounded_lines(stream, config.max_record_bytes), start=first_number + 1):
        if isinstance(raw, OversizedLine):
            rejects.append(oversized_reject(source, number, raw, config.max_record_bytes))
            continue
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError as error:
            text = raw.decode(encoding, "backslashreplace")
            reason = f"bytes invalid in {encoding} at column {error.start + 1}"
            rejects.append(quarantine_raw(source, number, "invalid_bytes", reason, text))
            continue
        if not line.strip():
            continue
        value = _json_object(source, number, line.rstrip("\n"), rejects)
        if value is not None:
            _append_object(columns, value, number)
        if len(columns["source_row"]) >= batch_size:
            yield ParsedRecords(columns, rejects)
            columns, rejects = {"source_row": []}, []
    yield ParsedRecords(columns, rejects)


def _append_object(columns: dict[str, list[object]], value: dict, number: int) -> None:
    """Append one JSON object as a row; keys first seen now are back-filled with nulls."""
    size = len(columns["source_row"])
    for key, item in value.items():
        column = columns.get(key)
        if column is None:
            column = columns[key] = [None] * size
        column.append(item)
    columns["source_row"].append(number)
    for column in columns.values():
        if len(column) == size:
            column.append(None)


def read_json_array(path: Path, source: str, config: RecordMapping, batch_size: int) -> Iterator[ParsedRecords]:
    """A JSON array of objects, streamed element by element; an element that is not an object is rejected alone."""
    with open_binary(path) as stream:
        encoding = config.encoding or detect_encoding(stream.read(SAMPLE_BYTES))
    with open_binary(path) as stream:
        errors = "surrogatepass" if encoding == "utf-16" else "surrogateescape"
        text = io.TextIOWrapper(stream, encoding, errors=errors, newline="")
        columns: dict[str, list[object]] = {"source_row": []}
        rejects: list[dict[str, object]] = []
        for number, element in enumerate(json_array_elements(text, config.max_record_bytes, str(path)), start=1):
            value = _json_element(source, number, element, config, rejects)
            if value is not None:
                _append_object(columns, value, number)
            if len(columns["source_row"]) >= batch_size or len(rejects) >= batch_size:
                yield ParsedRecords(columns, rejects)
                columns, rejects = {"source_row": []}, []
    yield ParsedRecords(columns, rejects)


def _json_element(source: str, number: int, element: Element, config: RecordMapping, rejects: list) -> dict | None:
    """One array element as an object, or None with its reject appended."""
    if isinstance(element, OversizedLine):
        rejects.append(oversized_reject(source, number, element, config.max_record_bytes))
    elif isinstance(element, TrailingData):
        rejects.append(quarantine_raw(source, number, "json_parse", "text after the array's closing ]", element.head))
    elif isinstance(element, UnclosedArray):
        reason = "the file ends before the array's closing ]: truncated?"
        rejects.append(quarantine_raw(source, number, "json_parse", reason, element.head))
    elif ESCAPED_BYTES.search(element):
        text = element.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        rejects.append(quarantine_raw(source, number, "invalid_bytes", "bytes invalid in the file's encoding", text))
    else:
        return _json_object(source, number, element, rejects)
    return None


def _json_object(source: str, number: int, text: str, rejects: list) -> dict | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        rejects.append(quarantine_raw(source, number, "json_parse", f"invalid JSON: {error.msg}", text))
        return None
    except RecursionError:
        reason = "JSON nested deeper than Python's recursion limit"
        rejects.append(quarantine_raw(source, number, "json_depth", reason, text[:200]))
        return None
    if not isinstance(value, dict):
        rejects.append(quarantine_raw(source, number, "json_record_type", "not a JSON object", text))
        return None
    return value


def read_text_file(path: Path, source: str, config: RecordMapping, batch_size: int) -> Iterator[ParsedRecords]:
    """One plain-text document; its label is the first sub-folder of the drop it sits in."""
    with open_binary(path) as stream:
        data = stream.read(config.max_record_bytes + 1)
        if len(data) > config.max_record_bytes:
            size = len(data) + sum(len(piece) for piece in iter(lambda: stream.read(1 << 20), b""))
            rejected = oversized_reject(source, 1, OversizedLine(size, data[:200]), config.max_record_bytes)
            yield ParsedRecords({"source_row": []}, [rejected])
            return
    encoding = config.encoding or detect_encoding(data[:SAMPLE_BYTES])
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        reason = f"bytes invalid in {encoding} at byte {error.start}"
        yield ParsedRecords(
            {"source_row": []},
            [quarantine_raw(source, 1, "invalid_bytes", reason, data.decode(encoding, "backslashreplace"))],
        )
        return
    parts = Path(source).parts
    yield ParsedRecords(
        {"text": [text], "label": [parts[0] if len(parts) > 1 else None], "path": [source], "source_row": [1]}
    )


READERS = {
    "csv": read_delimited,
    "tsv": read_delimited,
    "ndjson": read_ndjson,
    "json": read_json_array,
    "parquet": read_parquet,
    "text": read_text_file,
}


def read_file(path: Path, source: str, config: RecordMapping, batch_size: int = 50_000) -> Iterator[ParsedRecords]:
    """The record batches of one file, by its (declared or suffix) format."""
    return READERS[file_format(path, config.format)](path, source, config, batch_size)


def columns_of(path: Path, config: RecordMapping) -> list[str]:
    """The column names a file holds, read without loading it (JSON files are scanned once)."""
    fmt = file_format(path, config.format)
    if fmt in ("csv", "tsv"):
        encoding, delimiter = csv_dialect(path, config)
        with open_binary(path) as stream:
            lines = NumberedLines(stream, encoding, str(path), config)
            parser = csv.reader(lines, delimiter=delimiter, quotechar=config.quote_char, strict=True)
            return _read_header(path, parser, config)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with tempfile.TemporaryDirectory() as scratch:
            return list(pq.read_schema(plain_parquet(path, Path(scratch))).names)
    if fmt == "text":
        return ["text", "label", "path"]
    names: dict[str, None] = {}
    for batch in read_file(path, str(path), config):
        keys = batch.frame.columns if batch.frame is not None else batch.columns
        names.update(dict.fromkeys(k for k in keys if k != "source_row"))
    return list(names)
