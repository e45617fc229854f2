"""Reading one landing drop into documents, streamed as Arrow batches, with its rejects and provenance."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa

from assets.readers.conversations import join_inputs, split_conversations
from assets.readers.formats import SUFFIX_FORMATS, columns_of, file_format, read_file
from assets.readers.mapping import MAPPING_FILE, RecordMapping
from assets.readers.preference_pairs import split_pairs
from assets.readers.protocol import IngestError, ParsedRecords
from assets.storage.records import (
    ANSWER_COLUMNS,
    CHOSEN,
    CONTEXT,
    DOCUMENT_SCHEMA,
    QUARANTINE_SCHEMA,
    REJECTED,
    RESPONSE,
    content_hash,
    quarantine_raw,
)

_UNSAFE_NAME = re.compile(r"[^0-9A-Za-z_]+")
TEXT_FOLDER_CONFIG = {"text_column": "text", "label_column": "label", "id_column": "path"}


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in chunks."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def data_files(location: Path) -> list[Path]:
    """The data files of a drop, sorted; names starting with '_' or '.' are control files.

    Symbolic links are refused, naming the link: a link to a folder would be skipped by the walk (its records
    never counted), a link to a file could read anything on the machine, and a dangling one reads nothing.
    """
    if location.is_symlink():
        raise IngestError(f"{location}: a symbolic link; give the file or folder it points to")
    if location.is_file():
        return [location]
    found = []
    for path in sorted(location.rglob("*")):
        relative = path.relative_to(location)
        if any(p.startswith(("_", ".")) for p in relative.parts):
            continue
        if path.is_symlink():
            target = f"-> {path.readlink()}" + ("" if path.exists() else " (dangling)")
            raise IngestError(f"{path}: a symbolic link {target}; copy the data into the drop instead")
        if path.is_file():
            file_format(path)  # raises for an unsupported suffix, naming the file
            found.append(path)
    return found


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _extra_name(name: str) -> str:
    clean = _UNSAFE_NAME.sub("_", name).strip("_").lower() or "column"
    reserved = clean in DOCUMENT_SCHEMA or clean in (*ANSWER_COLUMNS, CONTEXT, "dataset_version")  # Refinery's own
    return f"src_{clean}" if reserved or clean[0].isdigit() else clean


def documents_schema(extra_columns: list[str]) -> pa.Schema:
    """The Arrow schema of streamed documents: Refinery's columns, then carried source columns."""
    return pa.schema(
        [(name, pa.large_string()) for name in ("doc_id", "source_id", "text", "label", "source")]
        + [("source_row", pa.int64())]
        + [(column, pa.large_string()) for column in sorted(set(extra_columns))]
    )


def carried_columns(present: list[str], config: RecordMapping, known: dict[str, str]) -> dict[str, str]:
    """Source columns that no mapping uses, with their lake names (added to `known`)."""
    mapped = set(config.mapped.values()) | {config.messages_column, config.text_column, config.input_column}
    mapped |= {config.chosen_column, config.rejected_column}
    return {**known, **{name: _extra_name(name) for name in present if name not in mapped and name not in known}}


def reject_unmappable(batch: ParsedRecords, config: RecordMapping, source: str) -> ParsedRecords:
    """Split conversations (a chat mapping), then move records whose mapped column holds a list or an object (not
    text) to the batch's rejects."""
    if config.messages_column:
        batch = split_conversations(batch, config.messages_column, source)
    if config.input_column:
        batch = join_inputs(batch, config.text_column, config.input_column)
    if config.chosen_column:
        batch = split_pairs(batch, (config.text_column, config.chosen_column, config.rejected_column), source)
    if batch.frame is not None:  # parsed from text: every value is a string
        return batch
    mapped = [column for column in config.mapped.values() if column in batch.columns]
    bad = [
        index
        for index in range(batch.size)
        if any(isinstance(batch.columns[column][index], (list, dict)) for column in mapped)
    ]
    if not bad:
        return batch
    rejects = list(batch.rejects)
    for index in bad:
        record = {name: values[index] for name, values in batch.columns.items() if name != "source_row"}
        column = next(c for c in mapped if isinstance(batch.columns[c][index], (list, dict)))
        kind = type(batch.columns[column][index]).__name__
        reason = f"column {column!r} holds a {kind}, not text"
        rejects.append(quarantine_raw(source, batch.columns["source_row"][index], "mapped_value_type", reason, record))
    keep = sorted(set(range(batch.size)) - set(bad))
    return ParsedRecords({name: [values[i] for i in keep] for name, values in batch.columns.items()}, rejects)


def map_batch(
    batch: ParsedRecords, config: RecordMapping, extras: dict[str, str], schema: pa.Schema, source: str, where: str
) -> pl.DataFrame:
    """One batch of source records (mapped values already scalar: `reject_unmappable`) as documents in `schema`."""
    if batch.frame is not None:
        return _map_frame(batch.frame, config, extras, schema, source)
    size = batch.size
    columns: dict[str, list[object]] = {}
    for target, column in config.mapped.items():
        columns[target] = [_as_text(v) for v in batch.columns.get(column, [None] * size)]
    for name, lake_name in extras.items():
        if name in batch.columns:
            columns[lake_name] = [_as_text(v) for v in batch.columns[name]]
    frame = pl.DataFrame(
        {**columns, "source": [source] * size, "source_row": batch.columns["source_row"]},
        schema_overrides={"source_row": pl.Int64, **{c: pl.String for c in columns}},
    )
    frame = frame.with_columns(document_ids(frame))
    missing = [pl.lit(None, pl.String).alias(n) for n in schema.names if n not in frame.columns]
    return frame.with_columns(missing).select(schema.names)


def document_ids(frame: pl.DataFrame) -> pl.Series:
    """A document's id: the hash of its text, or of prompt and answers together (a generation or preference
    dataset's documents may share a prompt)."""
    answers = [column for column in ANSWER_COLUMNS if column in frame.columns]
    if not answers:
        return content_hash(frame["text"]).alias("doc_id")
    parts = [pl.col(CONTEXT).fill_null("")] if CONTEXT in frame.columns else []
    parts += [pl.col("text").fill_null(""), *(pl.col(column).fill_null("") for column in answers)]
    pairs = frame.select(pl.concat_str(parts, separator="\x1f"))
    return content_hash(pairs.to_series()).alias("doc_id")


def mapped_columns(config: RecordMapping) -> list[str]:
    """The documents' columns a mapping adds to Refinery's own (a generation dataset's `response`, a preference
    dataset's answers)."""
    if config.messages_column:
        return [RESPONSE, CONTEXT]
    if config.chosen_column:
        return [CHOSEN, REJECTED, CONTEXT]
    return [RESPONSE] if config.response_column else []


def _map_frame(
    parsed: pl.DataFrame, config: RecordMapping, extras: dict[str, str], schema: pa.Schema, source: str
) -> pl.DataFrame:
    """`map_batch` for records the fast path parsed into a frame of strings."""
    columns = [
        (pl.col(column) if column in parsed.columns else pl.lit(None, pl.String)).alias(target)
        for target, column in config.mapped.items()
    ]
    columns += [pl.col(name).alias(lake) for name, lake in extras.items() if name in parsed.columns]
    frame = parsed.select(*columns, pl.lit(source, pl.String).alias("source"), pl.col("source_row"))
    frame = frame.with_columns(document_ids(frame))
    missing = [pl.lit(None, pl.String).alias(n) for n in schema.names if n not in frame.columns]
    return frame.with_columns(missing).select(schema.names)


@dataclass
class DropReader:
    """Streams a drop's documents in one fixed Arrow schema; rejects and per-file stats accumulate."""

    location: Path
    config: RecordMapping | None = None
    batch_size: int = 50_000
    rejects: list[dict[str, object]] = field(default_factory=list)
    files: list[dict[str, object]] = field(default_factory=list)
    rows: int = 0

    def __post_init__(self) -> None:
        if not self.location.exists():
            raise IngestError(f"{self.location}: no such file or folder")
        base = self.location if self.location.is_dir() else self.location.parent
        if self.config is None:
            control = base / MAPPING_FILE
            self.config = RecordMapping.from_yaml(control) if control.exists() else RecordMapping()
        self.paths = data_files(self.location)
        if not self.paths:
            raise IngestError(f"{self.location}: no data files (expected {', '.join(SUFFIX_FORMATS)}, optionally .gz)")
        self.sources = {path: path.relative_to(base).as_posix() for path in self.paths}
        self.extras: dict[str, str] = {}  # source column -> lake column
        self.file_configs: dict[Path, RecordMapping] = {}
        for path in self.paths:
            config = self.config
            if file_format(path, config.format) == "text":
                config = RecordMapping(**{**config.__dict__, **TEXT_FOLDER_CONFIG})
            self.file_configs[path] = config
            present = columns_of(path, config)
            missing = [c for c in config.source_columns if c not in present]
            if missing and present:  # no columns at all: no record parses, and each line is quarantined alone
                raise IngestError(f"{path}: mapped column {missing[0]!r} not found (columns: {', '.join(present)})")
            self.extras = carried_columns(present, config, self.extras)
        self.schema = documents_schema([*self.extras.values(), *mapped_columns(self.config)])

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The drop's documents, file by file, batch by batch; each file's sha256 is computed on a thread beside
        its parsing (hashlib releases the GIL), not after it."""
        hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="file-sha256")
        try:
            yield from self._batches(hasher)
        finally:  # a failed or abandoned read does not wait for a large file's digest
            hasher.shutdown(wait=False, cancel_futures=True)

    def _batches(self, hasher: ThreadPoolExecutor) -> Iterator[pa.RecordBatch]:
        for path in self.paths:
            digest = hasher.submit(sha256_file, path)
            source, records, rejected = self.sources[path], 0, 0
            for parsed in read_file(path, self.sources[path], self.file_configs[path], self.batch_size):
                batch = reject_unmappable(parsed, self.file_configs[path], source)
                self.rejects += batch.rejects
                rejected += len(batch.rejects)
                if batch.size:
                    records += batch.size
                    frame = map_batch(batch, self.file_configs[path], self.extras, self.schema, source, str(path))
                    yield from frame.to_arrow().cast(self.schema).to_batches()
            self.rows += records
            self.files.append(
                {
                    "file": source,
                    "sha256": digest.result(),
                    "format": file_format(path, self.config.format),
                    "records": records,
                    "rejected": rejected,
                }
            )

    def quarantine(self) -> pl.DataFrame:
        return pl.DataFrame(self.rejects, schema=QUARANTINE_SCHEMA)

    @property
    def records_read(self) -> int:
        return self.rows + len(self.rejects)

    def for_files(self, paths: list[Path]) -> DropReader:
        """A reader of some of this drop's files, in the same schema (a shard), with nothing read yet."""
        unknown = [path for path in paths if path not in self.sources]
        if unknown:
            raise IngestError(f"{unknown[0]}: not a data file of {self.location}")
        shard = copy.copy(self)
        shard.paths, shard.rejects, shard.files, shard.rows = list(paths), [], [], 0
        return shard


@dataclass
class IngestedDrop:
    """A whole drop in memory: for tests and small drops."""

    documents: pl.DataFrame
    quarantine: pl.DataFrame
    files: list[dict[str, object]]

    @property
    def records_read(self) -> int:
        return self.documents.height + self.quarantine.height


def read_drop(location: Path, config: RecordMapping | None = None) -> IngestedDrop:
    """Read a whole drop (a folder or one file) into memory."""
    reader = DropReader(location, config)
    table = pa.Table.from_batches(list(reader.batches()), schema=reader.schema)
    return IngestedDrop(pl.from_arrow(table), reader.quarantine(), reader.files)
