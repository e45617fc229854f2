"""The fast path for clean NDJSON: chunks of whole lines parsed by Arrow's JSON reader.

Arrow's reader is strict where the careful line-by-line parser must be careful: a line that is not one JSON
object, a key given twice, or a value whose JSON type changes from line to line fails the whole chunk, which
then goes to the careful parser to be isolated line by line. A chunk is taken only when every line is one
object starting at the line's first byte, none is over the size limit, and every value is a string, an
integer, a boolean or null — the values whose text is the careful path's (`json.dumps` of the value)
exactly; anything else (floats, lists, objects) goes the careful way too.
"""

from __future__ import annotations

import io

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.json as pa_json

OPEN_BRACE = ord("{")
TEXT_LIKE = (pa.types.is_string, pa.types.is_large_string, pa.types.is_null, pa.types.is_int64, pa.types.is_boolean)


def line_shape(data: bytes) -> tuple[int, int] | None:
    """Lines and bytes in the longest of them, when every line starts with `{`; else None. A blank line or one
    that starts with anything else is the careful parser's; Arrow would skip a blank line, and with a line of two
    objects elsewhere the rows would no longer match the lines."""
    array = np.frombuffer(data, np.uint8)
    breaks = np.flatnonzero(array == 10)
    starts = np.concatenate(([0], breaks + 1))
    if starts[-1] >= len(array) or (array[starts] != OPEN_BRACE).any():
        return None
    edges = np.concatenate(([-1], breaks, [len(array)]))
    return len(starts), int(np.diff(edges).max()) - 1


def read_objects(data: bytes, longest: int) -> pa.Table | None:
    """The chunk's objects with strings kept as strings (Arrow would turn ISO dates into timestamps), or None."""
    blocks = pa_json.ReadOptions(block_size=max(1 << 20, longest + 64))  # a line must fit in one block
    try:
        table = pa_json.read_json(io.BytesIO(data), read_options=blocks)
        dated = [f.name for f in table.schema if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)]
        if dated:
            schema = pa.schema([pa.field(f.name, pa.string() if f.name in dated else f.type) for f in table.schema])
            options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
            table = pa_json.read_json(io.BytesIO(data), read_options=blocks, parse_options=options)
        table.validate(full=True)  # Arrow's JSON reader lets invalid UTF-8 through into its strings
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        return None  # UnicodeDecodeError: a key whose bytes are not UTF-8 (Arrow decodes keys only when asked)
    return table


def parse_clean_ndjson(data: bytes, first_line: int, max_record_bytes: int) -> pl.DataFrame | None:
    """The chunk's records as strings with `source_row`, or None when the careful parser must read it."""
    body = data[:-1] if data.endswith(b"\n") else data
    shape = line_shape(body) if body and b"\x00" not in body else None
    if shape is None or shape[1] > max_record_bytes:
        return None
    lines, longest = shape
    table = read_objects(body + b"\n", longest)
    if table is None or table.num_rows != lines or not all(any(t(f.type) for t in TEXT_LIKE) for f in table.schema):
        return None
    rows = pl.int_range(first_line, first_line + lines, eager=True, dtype=pl.Int64).alias("source_row")
    if not table.num_columns:  # every line `{}`
        return pl.DataFrame([rows])
    return pl.from_arrow(table).select(pl.all().cast(pl.String)).with_columns(rows)
