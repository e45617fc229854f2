"""The elements of a top-level JSON array, split from a text stream in bounded memory.

Python's `json` parses a document whole and ijson builds any string value whole, so neither bounds
the memory a single 1 GiB element takes. This scanner only tracks brackets, strings and escapes
to find where each element ends; each element is then parsed alone, and one longer than the limit
is skipped with its size, the way an oversized line is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from assets.readers.lines import OversizedLine
from assets.readers.protocol import IngestError

STRUCTURAL = re.compile(r'["\\\[\]{},]')
CHUNK_CHARACTERS = 1 << 20


@dataclass(frozen=True)
class TrailingData:
    """Text after the array's closing bracket."""

    head: str


@dataclass(frozen=True)
class UnclosedArray:
    """The stream ended before the array's closing bracket."""

    head: str


Element = str | OversizedLine | TrailingData | UnclosedArray


class JsonArraySplitter:
    """Splits the text of a JSON array into the raw text of its elements, chunk by chunk."""

    def __init__(self, limit: int, where: str):
        self.limit, self.where = limit, where
        self.started = self.closed = False
        self.depth = 0
        self.in_string = self.escape_pending = False
        self.pieces: list[str] = []
        self.size = 0
        self.head = ""

    def feed(self, chunk: str) -> Iterator[Element]:
        """The elements completed by this chunk."""
        start = 0
        if not self.started:
            stripped = chunk.lstrip()
            if not stripped:
                return
            if stripped[0] != "[":
                raise IngestError(f"{self.where}: expected a JSON array of records, found {stripped[:40]!r}")
            self.started, start = True, len(chunk) - len(stripped) + 1
        if self.closed:
            if chunk.strip():
                yield TrailingData(chunk.strip()[:200])
            return
        yield from self._scan(chunk, start)

    def _scan(self, chunk: str, start: int) -> Iterator[Element]:
        segment, skip_to = start, start
        if self.escape_pending:  # a backslash ended the last chunk: this chunk's first character is escaped
            self.escape_pending, skip_to = False, start + 1
        for match in STRUCTURAL.finditer(chunk, start):
            at = match.start()
            if at < skip_to:
                continue
            character = match.group()
            if self.in_string:
                skip_to = self._inside_string(character, at, len(chunk), skip_to)
            elif not self._nests(character) and self.depth == 0 and character in ",]":
                yield from self._finish(chunk[segment:at], last=character == "]")
                segment = at + 1
                if character == "]":
                    self.closed = True
                    if chunk[segment:].strip():
                        yield TrailingData(chunk[segment:].strip()[:200])
                    return
        self._keep(chunk[segment:])

    def _inside_string(self, character: str, at: int, chunk_length: int, skip_to: int) -> int:
        """Follow a string's escapes and its end; where scanning resumes."""
        if character == "\\":
            self.escape_pending = at + 1 == chunk_length
            return at + 2
        if character == '"':
            self.in_string = False
        return skip_to

    def _nests(self, character: str) -> bool:
        """Whether the character opens a string or moves the nesting depth (then it ends no element)."""
        if character == '"':
            self.in_string = True
        elif character in "[{":
            self.depth += 1
        elif character in "]}" and self.depth > 0:
            self.depth -= 1
        else:
            return False
        return True

    def _keep(self, piece: str) -> None:
        if self.size <= self.limit:
            self.pieces.append(piece)
            if self.size + len(piece) > self.limit:  # too long already: keep only its start and its size
                self.head = "".join(self.pieces)[:200]
                self.pieces = []
        self.size += len(piece)

    def _finish(self, piece: str, last: bool) -> Iterator[str | OversizedLine]:
        self._keep(piece)
        size, text = self.size, "".join(self.pieces)
        self.pieces, self.size = [], 0
        if size > self.limit:
            yield OversizedLine(size, self.head.lstrip().encode("utf-8", "backslashreplace"))
        elif text.strip() or not last:  # `[]` and a closing bracket after the last element hold nothing
            yield text.strip()

    def finish(self) -> Iterator[UnclosedArray]:
        """A file that ends inside the array: its unfinished last element."""
        if not self.started:
            raise IngestError(f"{self.where}: empty file; expected a JSON array of records")
        if not self.closed:
            yield UnclosedArray(("".join(self.pieces) or self.head).strip()[:200])


def json_array_elements(text: IO[str], limit: int, where: str) -> Iterator[Element]:
    """The raw text of each element of the stream's top-level array, none held longer than `limit` characters."""
    splitter = JsonArraySplitter(limit, where)
    while chunk := text.read(CHUNK_CHARACTERS):
        yield from splitter.feed(chunk)
    yield from splitter.finish()
