"""The uncompressed size of a Parquet column chunk's largest page, read from the page headers alone.

Arrow decompresses a whole page before it yields any of its rows, and a page's size shows nowhere in the file's
footer: a 200 KB file can hold one page of 500 MB. The headers are Thrift compact-protocol structs in front of each
page; reading their first fields (and seeking past everything else) says how large each page is before any of it
is decoded. Only what the walk needs of the protocol is here: field headers, varints, and skipping any value.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pyarrow.parquet as pq

from assets.readers.protocol import IngestError

MAX_DEPTH = 16  # nested structs in a page header are two deep; more is a crafted file
STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)
UNCOMPRESSED_PAGE_SIZE, COMPRESSED_PAGE_SIZE = 2, 3  # field ids in PageHeader


class PageHeaderError(ValueError):
    """A page header that is not compact-protocol Thrift as Parquet writes it."""


def _byte(stream: BinaryIO) -> int:
    read = stream.read(1)
    if not read:
        raise PageHeaderError("the file ends inside a page header")
    return read[0]


def _varint(stream: BinaryIO) -> int:
    value, shift = 0, 0
    while shift < 64:
        byte = _byte(stream)
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7
    raise PageHeaderError("a varint longer than ten bytes")


def _zigzag(stream: BinaryIO) -> int:
    value = _varint(stream)
    return (value >> 1) ^ -(value & 1)


def _skip(stream: BinaryIO, kind: int, depth: int) -> None:
    """Move past one value of `kind`, seeking over binary contents rather than reading them."""
    if depth > MAX_DEPTH:
        raise PageHeaderError(f"structs nested past {MAX_DEPTH} levels")
    if kind in (TRUE, FALSE):
        return
    if kind == BYTE:
        _byte(stream)
    elif kind in (I16, I32, I64):
        _varint(stream)
    elif kind == DOUBLE:
        stream.seek(8, 1)
    elif kind == BINARY:
        stream.seek(_varint(stream), 1)
    elif kind in (LIST, SET):
        _skip_list(stream, depth)
    elif kind == MAP:
        _skip_map(stream, depth)
    elif kind == STRUCT:
        _struct_fields(stream, depth + 1, wanted=())
    else:
        raise PageHeaderError(f"unknown compact-protocol type {kind}")


def _skip_list(stream: BinaryIO, depth: int) -> None:
    header = _byte(stream)
    size, kind = header >> 4, header & 0x0F
    if size == 15:
        size = _varint(stream)
    for _ in range(size):
        if kind in (TRUE, FALSE):
            _byte(stream)  # inside a list a boolean takes a byte of its own
        else:
            _skip(stream, kind, depth + 1)


def _skip_map(stream: BinaryIO, depth: int) -> None:
    size = _varint(stream)
    if size:
        kinds = _byte(stream)
        for _ in range(size):
            _skip(stream, kinds >> 4, depth + 1)
            _skip(stream, kinds & 0x0F, depth + 1)


def _struct_fields(stream: BinaryIO, depth: int, *, wanted: tuple[int, ...]) -> dict[int, int]:
    """Read one struct to its stop field; the integer fields in `wanted` are returned by id, the rest skipped."""
    found: dict[int, int] = {}
    field = 0
    while (header := _byte(stream)) != STOP:
        delta, kind = header >> 4, header & 0x0F
        field = field + delta if delta else _zigzag(stream)
        if field in wanted and kind in (I16, I32, I64):
            found[field] = _zigzag(stream)
        else:
            _skip(stream, kind, depth)
    return found


def largest_page_bytes(stream: BinaryIO, column: pq.ColumnChunkMetaData) -> int:
    """The largest uncompressed page of one column chunk, walking its page headers from the chunk's start."""
    start = column.data_page_offset
    if column.has_dictionary_page and column.dictionary_page_offset is not None:
        start = min(start, column.dictionary_page_offset)
    end = start + column.total_compressed_size
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


def row_group_largest_page(path: Path, metadata: pq.FileMetaData, group: int, *, source: str) -> tuple[int, str]:
    """A row group's largest uncompressed page and the column it is in, refused with the file's name if unreadable."""
    row_group = metadata.row_group(group)
    largest, name = 0, ""
    with open(path, "rb") as stream:
        for index in range(row_group.num_columns):
            column = row_group.column(index)
            try:
                size = largest_page_bytes(stream, column)
            except PageHeaderError as error:
                raise IngestError(f"{source}: row group {group}, column {column.path_in_schema}: {error}") from None
            if size > largest:
                largest, name = size, column.path_in_schema
    return largest, name
