"""`_source.yaml`: how to read one drop (column mapping and file format), validated with clear errors."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from assets.readers.conversations import ANSWER, EARLIER, PROMPT
from assets.readers.preference_pairs import PAIR_CHOSEN, PAIR_REJECTED
from assets.readers.protocol import IngestError
from assets.storage.records import CHOSEN, CONTEXT, REJECTED, RESPONSE
from rules.yaml_reader import load_control_file

MAPPING_FILE = "_source.yaml"  # the file name users know; it holds a RecordMapping
FORMATS = ("csv", "tsv", "ndjson", "json", "parquet", "text")


class MappingError(IngestError):
    """A `_source.yaml` that does not validate; the message names the file and key."""


@dataclass(frozen=True)
class RecordMapping:
    """Which columns hold text, label, id and (a generation dataset's) response, and how the files are encoded
    (None: detect). A generation dataset's text is the prompt; it has no label column (`label_column: null`)."""

    text_column: str = "text"
    label_column: str | None = "label"
    id_column: str | None = None
    response_column: str | None = None
    messages_column: str | None = None  # chat records: the conversation, which gives text, response and context
    input_column: str | None = None  # an instruction's input (Alpaca; optional per file): joined to the prompt
    chosen_column: str | None = None  # a preference record's preferred answer (text, or TRL's messages)
    rejected_column: str | None = None  # and the answer it is preferred to
    format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    quote_char: str = '"'
    has_header: bool = True
    columns: tuple[str, ...] | None = None
    max_record_lines: int = 100_000  # a quoted field may span lines: a stray quote is found within this many
    max_record_bytes: int = 16 * 1024 * 1024  # a longer line, text file or record is quarantined with its size

    @classmethod
    def from_mapping(cls, values: dict, where: str) -> RecordMapping:
        """Validate keys and value types; errors name `where` and the key."""
        _check_key_types(values, where)
        _check_values(values, where)
        if values.get("columns") is not None:
            values = {**values, "columns": tuple(str(c) for c in values["columns"])}
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: Path) -> RecordMapping:
        """Read a `_source.yaml`."""
        loaded = load_control_file(path, MappingError) or {}
        if not isinstance(loaded, dict):
            raise MappingError(f"{path}: expected a mapping of keys to values")
        return cls.from_mapping(loaded, str(path))

    def to_yaml(self) -> str:
        """The non-default settings as `_source.yaml` text."""
        default = RecordMapping()
        changed = {
            f.name: list(v) if isinstance(v, tuple) else v
            for f in fields(self)
            if (v := getattr(self, f.name)) != getattr(default, f.name)
        }
        return yaml.safe_dump(changed, sort_keys=False)

    @property
    def source_columns(self) -> list[str]:
        """The source columns this config reads (a file without one of them is refused)."""
        if self.messages_column:
            return [c for c in (self.messages_column, self.id_column) if c]
        if self.chosen_column:  # TRL's implicit-prompt records have no prompt column: the answers hold it
            return [c for c in (self.chosen_column, self.rejected_column, self.id_column) if c]
        return [c for c in (self.text_column, self.label_column, self.id_column, self.response_column) if c]

    @property
    def mapped(self) -> dict[str, str]:
        """Refinery column -> source column, for the columns this config maps (a conversation: the columns it is
        split into)."""
        if self.messages_column:
            mapping = {"text": PROMPT, RESPONSE: ANSWER, CONTEXT: EARLIER}
            return {**mapping, "source_id": self.id_column} if self.id_column else mapping
        if self.chosen_column:
            mapping = {"text": PROMPT, CHOSEN: PAIR_CHOSEN, REJECTED: PAIR_REJECTED, CONTEXT: EARLIER}
            return {**mapping, "source_id": self.id_column} if self.id_column else mapping
        mapping = {"text": PROMPT if self.input_column else self.text_column}
        if self.label_column:
            mapping["label"] = self.label_column
        if self.response_column:
            mapping["response"] = self.response_column
        if self.id_column:
            mapping["source_id"] = self.id_column
        return mapping


MAPPING_KEYS = {  # each key of a `_source.yaml` and the type of its value
    "text_column": str,
    "label_column": str,
    "id_column": str,
    "response_column": str,
    "messages_column": str,
    "input_column": str,
    "chosen_column": str,
    "rejected_column": str,
    "format": str,
    "encoding": str,
    "delimiter": str,
    "quote_char": str,
    "has_header": bool,
    "columns": list,
    "max_record_lines": int,
    "max_record_bytes": int,
}


def _check_key_types(values: dict, where: str) -> None:
    """Every key is known and its value has the key's type (a bool is no int)."""
    for key, value in values.items():
        if key not in MAPPING_KEYS:
            raise MappingError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(MAPPING_KEYS))})")
        kind = MAPPING_KEYS[key]
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool) != (kind is bool)):
            raise MappingError(f"{where}: key {key!r} must be a {kind.__name__}, got {value!r}")


def _check_values(values: dict, where: str) -> None:
    """The values that a type alone does not vouch for: format, one-character settings, encoding."""
    if values.get("messages_column") and values.get("response_column"):
        raise MappingError(
            f"{where}: a conversation ({'messages_column'!r}) holds its response; drop 'response_column'"
        )
    if values.get("input_column") and (values.get("messages_column") or not values.get("response_column")):
        raise MappingError(
            f"{where}: 'input_column' joins an instruction's input to its prompt: it needs a "
            "'response_column' and no 'messages_column'"
        )
    if bool(values.get("chosen_column")) != bool(values.get("rejected_column")):
        raise MappingError(f"{where}: a preference pair needs both 'chosen_column' and 'rejected_column'")
    if values.get("chosen_column") and any(
        values.get(k) for k in ("messages_column", "response_column", "input_column")
    ):
        raise MappingError(
            f"{where}: a preference record's answers are 'chosen_column' and 'rejected_column': drop "
            "'messages_column', 'response_column' and 'input_column'"
        )
    if values.get("format") not in (None, *FORMATS):
        raise MappingError(f"{where}: key 'format' must be one of {', '.join(FORMATS)}")
    for key in ("delimiter", "quote_char"):
        if values.get(key) is not None and len(values[key]) != 1:
            raise MappingError(f"{where}: key {key!r} must be one character, got {values[key]!r}")
    if values.get("encoding"):
        import codecs

        try:
            codecs.lookup(values["encoding"])
        except LookupError as error:
            raise MappingError(f"{where}: key 'encoding': unknown encoding {values['encoding']!r}") from error
