"""The document and quarantine schemas that every stage shares, and the helpers that build them."""

from __future__ import annotations

import json

import polars as pl

from assets.storage.delta import VERSION_COLUMN, Lake
from contracts.tables import QUARANTINE
from trainers.bundle import CHOSEN, CONTEXT, REJECTED, RESPONSE  # generation and preference columns, named once

DOCUMENT_SCHEMA: dict[str, pl.DataType] = {
    "doc_id": pl.String(),
    "source_id": pl.String(),
    "text": pl.String(),
    "label": pl.String(),
    "source": pl.String(),
    "source_row": pl.Int64(),
}

ANSWER_COLUMNS = (RESPONSE, CHOSEN, REJECTED)  # a generation's response, a preference pair's answers: prepared as text

# besides the document columns, a quarantined record keeps these: a generation dataset's response and context, a
# preference pair's answers, and its texts as they arrived
KEPT_IN_RECORDS = (
    "original_text",
    *(kept for column in ANSWER_COLUMNS for kept in (column, f"original_{column}")),
    CONTEXT,
    "original_context",
)

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "stage": pl.String(),
    "rule": pl.String(),
    "reason": pl.String(),
    "source": pl.String(),
    "source_row": pl.Int64(),
    "doc_id": pl.String(),
    "duplicate_of": pl.String(),
    "value": pl.String(),
    "record": pl.String(),
}


def content_hash(texts: pl.Series) -> pl.Series:
    """A stable 16-hex-digit sha256 prefix of each text (null hashes like the empty string), computed in Rust by
    polars-hash: the same digits as `hashlib.sha256(text.encode()).hexdigest()[:16]`, several times faster."""
    import polars_hash  # registers the `chash` namespace

    frame = texts.cast(pl.String).fill_null("").to_frame("text")
    return frame.select(polars_hash.col("text").chash.sha2_256().str.slice(0, 16)).to_series().alias(texts.name)


def empty_quarantine() -> pl.DataFrame:
    """A quarantine frame with no rows."""
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def quarantine_documents(
    documents: pl.DataFrame,
    stage: str,
    rule: str,
    reason: str,
    value: pl.Expr | None = None,
    duplicate_of: pl.Expr | None = None,
) -> pl.DataFrame:
    """Turn rejected document rows into quarantine rows that keep the whole original record."""
    record_columns = [c for c in documents.columns if c in DOCUMENT_SCHEMA or c in KEPT_IN_RECORDS]
    return documents.select(
        pl.lit(stage).alias("stage"),
        pl.lit(rule).alias("rule"),
        pl.lit(reason).alias("reason"),
        pl.col("source").cast(pl.String),
        pl.col("source_row").cast(pl.Int64),
        pl.col("doc_id").cast(pl.String),
        (duplicate_of if duplicate_of is not None else pl.lit(None)).cast(pl.String).alias("duplicate_of"),
        (value if value is not None else pl.lit(None)).cast(pl.String).alias("value"),
        pl.struct(record_columns).struct.json_encode().alias("record"),
    )


def quarantine_raw(source: str, row: int, rule: str, reason: str, raw: object) -> dict[str, object]:
    """One quarantine row for a record that never became a document (it could not be parsed)."""
    return {
        "stage": "ingest",
        "rule": rule,
        "reason": reason,
        "source": source,
        "source_row": row,
        "doc_id": None,
        "duplicate_of": None,
        "value": None,
        "record": raw if isinstance(raw, str) else json.dumps(raw, default=str),
    }


def reason_counts(quarantine: pl.DataFrame) -> dict[str, int]:
    """Quarantined rows per rule, for asset metadata."""
    if quarantine.is_empty():
        return {}
    counts = quarantine.group_by("rule").len().sort("rule")
    return dict(zip(counts["rule"].to_list(), counts["len"].to_list(), strict=True))


def read_version(lake: Lake, table: str, version: str) -> pl.DataFrame:
    """One version's rows of a table, without the partition column."""
    return lake.scan(table, [version]).drop(VERSION_COLUMN).collect()


def write_stage(lake: Lake, table: str, stage: str, version: str, kept: pl.DataFrame, rejected: pl.DataFrame) -> int:
    """Write a version's kept rows, and its rejected rows to the quarantine; returns the new Delta version."""
    delta_version = lake.write_version(table, kept, version)
    lake.write_version(QUARANTINE, rejected, version, scope={"stage": stage})
    return delta_version


def latest_earlier_rows(lake: Lake, table: str, earlier: list[str]) -> pl.DataFrame | None:
    """The rows of the latest of `earlier` versions present in `table` (None when there is none), for drift rules."""
    if not earlier or not lake.exists(table):
        return None
    present = set(lake.scan(table, earlier).select(VERSION_COLUMN).unique().collect()[VERSION_COLUMN])
    for version in reversed(earlier):
        if version in present:
            return lake.scan(table, [version]).collect()
    return None
