"""The fast path for clean CSV: chunks proven well-formed are parsed by Polars' native reader.

A chunk ends at a line break outside quotes. Before Polars sees it, numpy checks in a few vectorised passes
what the careful line-by-line parser would otherwise find: every quote opens at a field's start and closes at
its end, every record has the header's field count, no record is empty or over the size and line limits, and
there are no NUL bytes or bare carriage returns. A chunk that passes gives exactly the careful parser's records
and line numbers (a property test pins this); one that fails goes to the careful parser, which isolates each
bad line with its file, line and raw text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import polars as pl

from assets.readers.mapping import RecordMapping

CHUNK_BYTES = 8 << 20
MAX_CHUNK_BYTES = 64 << 20  # a quoted field left open this long: the careful parser takes the rest
LF, CR = 10, 13


@dataclass(frozen=True)
class Chunk:
    """Whole records of a file (as far as quote parity tells), and the line number of its first line."""

    data: bytes
    first_line: int
    rest: IO[bytes] | None = None  # quotes still open at the size cap: `data` then `rest` go to the careful parser


class PrefixedStream(io.RawIOBase):
    """Bytes already read, then the rest of a stream: for the careful parser to continue where chunking gave up."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        self.prefix, self.offset, self.rest = prefix, 0, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.offset < len(self.prefix):
            piece = self.prefix[self.offset : self.offset + len(buffer)]
            self.offset += len(piece)
        else:
            piece = self.rest.read(len(buffer))
        buffer[: len(piece)] = piece
        return len(piece)


def record_chunks(stream: IO[bytes], quote: int, first_line: int, size: int | None = None) -> Iterator[Chunk]:
    """The stream cut after a line break outside quotes every `size` (default CHUNK_BYTES) bytes or so."""
    size, pending = size or CHUNK_BYTES, b""
    while True:
        block = stream.read(size)
        data = pending + block
        if not data:
            return
        if len(block) < size:  # the end of the file: whatever is left (its last line may lack a line break)
            if data:
                yield Chunk(data, first_line)
            return
        cut = last_closed_line_break(data, quote)
        if cut < 0:
            if len(data) > max(MAX_CHUNK_BYTES, 8 * size):
                yield Chunk(data, first_line, rest=io.BufferedReader(PrefixedStream(data, stream)))
                return
            pending = data
            continue
        chunk, pending = data[: cut + 1], data[cut + 1 :]
        yield Chunk(chunk, first_line)
        first_line += chunk.count(b"\n")


def last_closed_line_break(data: bytes, quote: int) -> int:
    """The offset of the last line break with an even number of quotes before it, or -1."""
    array = np.frombuffer(data, np.uint8)
    breaks = np.flatnonzero(array == LF)
    if not len(breaks):
        return -1
    quotes = np.flatnonzero(array == quote)
    before = np.searchsorted(quotes, breaks)  # quotes before each line break
    even = breaks[(before & 1) == 0]
    return int(even[-1]) if len(even) else -1


def terminated(data: bytes) -> bytes:
    """The bytes with a final line break (a file's last line may lack one: it is a record all the same)."""
    return data if data.endswith(b"\n") else data + b"\n"


def clean_records(chunk: Chunk, fields: int, delimiter: int, quote: int, max_bytes: int, max_lines: int):
    """Where each record of a chunk starts and its first line number, if every record is provably clean; else None.

    Quote parity is looked up at the few bytes that matter (line breaks, separators, carriage returns) by
    binary search over the quote positions, rather than counted over every byte.
    """
    array = np.frombuffer(terminated(chunk.data), np.uint8)
    if chunk.rest is not None or (array == 0).any():
        return None
    quotes = np.flatnonzero(array == quote)

    def outside(positions: np.ndarray) -> np.ndarray:  # an even number of quotes before each position
        return (np.searchsorted(quotes, positions) & 1) == 0

    all_breaks = np.flatnonzero(array == LF)
    ends = all_breaks[outside(all_breaks)]
    if not len(ends) or ends[-1] != len(array) - 1:
        return None
    starts = np.concatenate(([0], ends[:-1] + 1))
    if not quotes_well_placed(array, quotes, delimiter, quote):
        return None
    carriage = np.flatnonzero(array == CR)
    if len(carriage) and (
        carriage[-1] + 1 >= len(array) or (array[carriage + 1] != LF).any() or not outside(carriage).all()
    ):
        return None  # a bare CR, or one inside quotes: the careful parser decides
    content = ends - starts - (array[np.maximum(ends - 1, 0)] == CR)
    if (content <= 0).any() or (ends - starts + 1 > max_bytes).any():
        return None
    separators = np.flatnonzero(array == delimiter)
    separators = separators[outside(separators)]
    per_record = np.searchsorted(separators, ends) - np.searchsorted(separators, starts)
    if (per_record != fields - 1).any():
        return None
    lines_before = np.searchsorted(all_breaks, starts)
    if (np.searchsorted(all_breaks, ends) - lines_before + 1 > max_lines).any():
        return None
    return chunk.first_line + lines_before


def quotes_well_placed(array: np.ndarray, quotes: np.ndarray, delimiter: int, quote: int) -> bool:
    """Every opening quote starts a field (or doubles a quote) and every closing quote ends one (or is doubled)."""
    if not len(quotes):
        return True
    opening, closing = quotes[0::2], quotes[1::2]  # the 1st, 3rd, ... quote opens; the 2nd, 4th, ... closes
    previous = np.where(opening > 0, array[np.maximum(opening - 1, 0)], LF)
    following = np.where(closing + 1 < len(array), array[np.minimum(closing + 1, len(array) - 1)], LF)
    starts_ok = np.isin(previous, [delimiter, LF, quote])
    ends_ok = np.isin(following, [delimiter, LF, CR, quote])
    return bool(starts_ok.all() and ends_ok.all())


def parse_clean_chunk(
    chunk: Chunk, header: list[str], delimiter: str, quote: str, max_bytes: int, max_lines: int
) -> pl.DataFrame | None:
    """The chunk's records as strings with `source_row`, when provably clean and UTF-8; else None."""
    lines = clean_records(chunk, len(header), ord(delimiter), ord(quote), max_bytes, max_lines)
    if lines is None:
        return None
    try:
        frame = pl.read_csv(
            io.BytesIO(terminated(chunk.data)),
            has_header=False,
            separator=delimiter,
            quote_char=quote,
            schema={name: pl.String for name in header},
            empty_string_is_null=False,
            encoding="utf8",
            raise_if_empty=False,
            truncate_ragged_lines=False,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, UnicodeDecodeError):
        return None  # invalid UTF-8, or anything else Polars refuses: the careful parser says which line
    if frame.height != len(lines):
        return None
    return frame.with_columns(pl.Series("source_row", lines, dtype=pl.Int64))


def fast_header(
    stream: IO[bytes], path: Path, encoding: str, delimiter: str, config: RecordMapping
) -> list[str] | None:
    """The header for the fast path (the first line, or the declared columns); None when only the careful parser
    should read this file (a header with a line break inside quotes, or one that does not decode)."""
    if not config.has_header:
        return list(config.columns) if config.columns else None
    line = stream.readline(config.max_record_bytes + 1)
    if not line.endswith(b"\n") or line.count(config.quote_char.encode()) % 2:
        return None
    try:
        fields = next(
            csv.reader([line.decode(encoding)], delimiter=delimiter, quotechar=config.quote_char, strict=True)
        )
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return None
    names = [name.strip() for name in fields]
    return names if names and "" not in names and len(set(names)) == len(names) else None
