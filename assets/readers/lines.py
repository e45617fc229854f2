"""Lines of a byte stream, numbered, decoded and bounded in size; a bad line becomes a quarantine row."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from assets.readers.encodings import SINGLE_BYTE, is_utf8
from assets.readers.mapping import RecordMapping
from assets.storage.records import quarantine_raw


@dataclass(frozen=True)
class OversizedLine:
    """A line longer than the record limit: skipped in bounded memory, its size and start kept for the quarantine."""

    size: int
    head: bytes


def bounded_lines(stream: IO[bytes], limit: int) -> Iterator[bytes | OversizedLine]:
    """The stream's lines (with their newline), each read in at most `limit` bytes; a longer one is skipped."""
    while line := stream.readline(limit + 1):
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
            continue
        size, head = len(line), line[:200]
        while (rest := stream.readline(1 << 20)) and not rest.endswith(b"\n"):
            size += len(rest)  # read on in 1 MiB pieces until the line ends: memory stays bounded
        yield OversizedLine(size + len(rest), head)


def bounded_text_lines(text: IO[str], limit: int) -> Iterator[bytes | OversizedLine]:
    """Like `bounded_lines` for a decoded stream (UTF-16): each line as UTF-8 bytes, a longer one skipped whole."""
    while line := text.readline(limit + 1):
        if len(line) <= limit or line.endswith("\n"):
            yield line.encode("utf-8", "surrogatepass")
            continue
        size, head = len(line), line[:200].encode("utf-8", "surrogatepass")
        while (rest := text.readline(1 << 20)) and not rest.endswith("\n"):
            size += len(rest)
        yield OversizedLine(size + len(rest), head)


def oversized_reject(source: str, number: int, line: OversizedLine, limit: int) -> dict[str, object]:
    """The quarantine row of a record over the size limit: its size and its first bytes."""
    reason = f"record of {line.size} bytes; at most {limit} are read (max_record_bytes)"
    return quarantine_raw(source, number, "record_too_large", reason, line.head.decode("utf-8", "backslashreplace"))


class NumberedLines:
    """Numbered, decoded lines of a byte stream; lines can be pushed back to be parsed again.

    Lines with bytes invalid in the encoding are not yielded; they are collected as rejects.
    """

    def __init__(self, stream: IO[bytes], encoding: str, source: str, config: RecordMapping, first_number: int = 0):
        self.encoding, self.source, self.max_record_lines = encoding, source, config.max_record_lines
        self.max_bytes = config.max_record_bytes
        if encoding == "utf-16":
            # A lone surrogate passes the decoder and fails as UTF-8 below: that line alone is rejected.
            text = io.TextIOWrapper(stream, "utf-16", errors="surrogatepass", newline="")
            self._raw = bounded_text_lines(text, self.max_bytes)
            self.encoding = "utf-8"
        else:
            self._raw = bounded_lines(stream, self.max_bytes)
        self.number = first_number  # lines before this stream's first (a chunk of a file)
        self.pushed: list[tuple[int, str]] = []
        self.consumed: list[tuple[int, str]] = []
        self.consumed_bytes = 0
        self.rejects: list[dict[str, object]] = []

    def __iter__(self) -> NumberedLines:
        return self

    def start_record(self) -> None:
        """Forget the lines of the record before: a new one starts."""
        self.consumed, self.consumed_bytes = [], 0

    def __next__(self) -> str:
        if len(self.consumed) >= self.max_record_lines or self.consumed_bytes > self.max_bytes:
            raise RecordTooLongError
        if self.pushed:
            item = self.pushed.pop()
        else:
            item = None
            while item is None:
                raw = next(self._raw)
                self.number += 1
                if isinstance(raw, OversizedLine):
                    self.rejects.append(oversized_reject(self.source, self.number, raw, self.max_bytes))
                    continue
                if self.encoding in SINGLE_BYTE and not raw.isascii() and is_utf8(raw):
                    reason = f"the line is UTF-8 in a file read as {self.encoding}: decoding it would garble it"
                    self.rejects.append(
                        quarantine_raw(self.source, self.number, "mixed_encoding", reason, raw.decode("utf-8"))
                    )
                    continue
                try:
                    item = (self.number, raw.decode(self.encoding))
                except UnicodeDecodeError as error:
                    text = raw.decode(self.encoding, "backslashreplace")
                    reason = f"bytes invalid in {self.encoding} at column {error.start + 1}"
                    self.rejects.append(quarantine_raw(self.source, self.number, "invalid_bytes", reason, text))
        self.consumed.append(item)
        self.consumed_bytes += len(item[1])
        return item[1]

    def push_back(self, items: list[tuple[int, str]]) -> None:
        self.pushed.extend(reversed(items))


class RecordTooLongError(Exception):
    """A quoted field ran past max_record_lines."""


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when it is gzip."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")
