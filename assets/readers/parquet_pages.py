"""The uncompressed size of a Parquet column chunk's largest page, read from the page headers alone.

Arrow decompresses a whole page before it yields any of its rows, and a page's size shows nowhere in the file's
footer: a 200 KB file can hold one page of 500 MB. The headers are Thrift compact-protocol structs in front of each
page; reading their first fields (and seeking past everything else) says how large each page is before any of it
is decoded. Only what the walk needs of the protocol is here: field headers, varints, and skipping any value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pyarrow.parquet as pq

from assets.readers.protocol import IngestError

MAX_DEPTH = 16  # nested structs in a page header are two deep; more is a crafted file
STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)
UNCOMPRESSED_PAGE_SIZE, COMPRESSED_PAGE_SIZE = 2, 3  # field ids in PageHeader


class PageHeaderError(ValueError):
    """A page header that is not compact-protocol Thrift as Parquet writes it."""


class HeaderStream:
    """A Parquet file read for its page headers: every read and skip stays inside the file, and the bytes walked
    in all stay within a budget of the file's size, so overlapping or crafted chunk ranges cannot make the walk
    loop or run long."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream, self.size = stream, size
        self.budget = size  # each header byte is walked once in a file whose chunks do not overlap

    def seek(self, position: int) -> None:
        if not 0 <= position < self.size:
            raise PageHeaderError(f"a page header at byte {position}, outside the file's {self.size} bytes")
        self.stream.seek(position)

    def tell(self) -> int:
        return self.stream.tell()

    def skip(self, count: int) -> None:
        if count < 0 or self.tell() + count > self.size:
            raise PageHeaderError(f"a value of {count} bytes at byte {self.tell()} runs past the end of the file")
        self._spend(count)
        self.stream.seek(count, 1)

    def byte(self) -> int:
        read = self.stream.read(1)
        if not read:
            raise PageHeaderError("the file ends inside a page header")
        self._spend(1)
        return read[0]

    def remaining(self) -> int:
        return self.size - self.tell()

    def _spend(self, count: int) -> None:
        self.budget -= count
        if self.budget < 0:
            raise PageHeaderError("the column chunks' page headers overlap (more header bytes than the file has)")


def _varint(stream: HeaderStream) -> int:
    value, shift = 0, 0
    while shift < 64:
        byte = stream.byte()
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7
    raise PageHeaderError("a varint longer than ten bytes")


def _zigzag(stream: HeaderStream) -> int:
    value = _varint(stream)
    return (value >> 1) ^ -(value & 1)


def _skip(stream: HeaderStream, kind: int, depth: int) -> None:
    """Move past one value of `kind`, seeking over binary contents rather than reading them."""
    if depth > MAX_DEPTH:
        raise PageHeaderError(f"structs nested past {MAX_DEPTH} levels")
    if kind in (TRUE, FALSE):
        return
    if kind == BYTE:
        stream.byte()
    elif kind in (I16, I32, I64):
        _varint(stream)
    elif kind == DOUBLE:
        stream.skip(8)
    elif kind == BINARY:
        stream.skip(_varint(stream))
    elif kind in (LIST, SET):
        _skip_list(stream, depth)
    elif kind == MAP:
        _skip_map(stream, depth)
    elif kind == STRUCT:
        _struct_fields(stream, depth + 1, wanted=())
    else:
        raise PageHeaderError(f"unknown compact-protocol type {kind}")


def _elements(stream: HeaderStream, size: int) -> int:
    """A list or map's element count, refused when its elements could not fit in what is left of the file."""
    if size > stream.remaining():  # every element takes at least a byte
        raise PageHeaderError(f"a list of {size} elements at byte {stream.tell()}, past the end of the file")
    return size


def _skip_list(stream: HeaderStream, depth: int) -> None:
    header = stream.byte()
    size, kind = header >> 4, header & 0x0F
    if size == 15:
        size = _varint(stream)
    for _ in range(_elements(stream, size)):
        if kind in (TRUE, FALSE):
            stream.byte()  # inside a list a boolean takes a byte of its own
        else:
            _skip(stream, kind, depth + 1)


def _skip_map(stream: HeaderStream, depth: int) -> None:
    size = _elements(stream, _varint(stream))
    if size:
        kinds = stream.byte()
        for _ in range(size):
            _skip(stream, kinds >> 4, depth + 1)
            _skip(stream, kinds & 0x0F, depth + 1)


def _struct_fields(stream: HeaderStream, depth: int, *, wanted: tuple[int, ...]) -> dict[int, int]:
    """Read one struct to its stop field; the integer fields in `wanted` are returned by id, the rest skipped."""
    found: dict[int, int] = {}
    field = 0
    while (header := stream.byte()) != STOP:
        delta, kind = header >> 4, header & 0x0F
        field = field + delta if delta else _zigzag(stream)
        if field in wanted and kind in (I16, I32, I64):
            found[field] = _zigzag(stream)
        else:
            _skip(stream, kind, depth)
    return found


def chunk_start(column: pq.ColumnChunkMetaData) -> int:
    """Where a column chunk's first page starts: its dictionary page when there is one, as Arrow reads it (an offset
    of 0, which some writers leave, means none)."""
    dictionary = column.dictionary_page_offset if column.has_dictionary_page else None
    if dictionary and 0 < dictionary < column.data_page_offset:
        return dictionary
    return column.data_page_offset


def largest_page_bytes(stream: HeaderStream, column: pq.ColumnChunkMetaData) -> int:
    """The largest uncompressed page of one column chunk, walking its page headers from the chunk's start."""
    start = chunk_start(column)
    end = start + column.total_compressed_size
    if start < 4 or end > stream.size:
        raise PageHeaderError(f"the chunk's bytes {start} to {end} are not inside the file's {stream.size}")
    largest, position = 0, start
    while position < end:
        stream.seek(position)
        sizes = _struct_fields(stream, 0, wanted=(UNCOMPRESSED_PAGE_SIZE, COMPRESSED_PAGE_SIZE))
        uncompressed = sizes.get(UNCOMPRESSED_PAGE_SIZE, -1)
        compressed = sizes.get(COMPRESSED_PAGE_SIZE, -1)
        if uncompressed < 0 or compressed < 0:
            raise PageHeaderError(f"a page header at byte {position} without its sizes")
        largest = max(largest, uncompressed)
        position = stream.tell() + compressed
    return largest


@contextmanager
def page_headers(path: Path) -> Iterator[HeaderStream]:
    """The file opened for its page headers, one walking budget for all its row groups."""
    with open(path, "rb") as file:
        yield HeaderStream(file, path.stat().st_size)


def row_group_largest_page(
    stream: HeaderStream, metadata: pq.FileMetaData, group: int, *, source: str
) -> tuple[int, str]:
    """A row group's largest uncompressed page and the column it is in, refused with the file's name if unreadable."""
    row_group = metadata.row_group(group)
    largest, name = 0, ""
    for index in range(row_group.num_columns):
        column = row_group.column(index)
        try:
            size = largest_page_bytes(stream, column)
        except (PageHeaderError, OSError, ValueError) as error:
            raise IngestError(f"{source}: row group {group}, column {column.path_in_schema}: {error}") from None
        if size > largest:
            largest, name = size, column.path_in_schema
    return largest, name
