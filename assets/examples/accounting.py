"""Nothing lost: records read from the source = rows kept + rows quarantined (duplicates included)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from assets.storage.delta import Lake
from contracts.tables import QUARANTINE, RAW_DOCUMENTS


@dataclass(frozen=True)
class RecordAccount:
    """Where every record of one version went."""

    records_read: int
    rows_kept: int
    quarantined_by_stage: dict[str, int]

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined_by_stage.values())

    @property
    def unaccounted(self) -> int:
        return self.records_read - self.rows_kept - self.rows_quarantined


def account_for_records(lake: Lake, version: str, kept: int) -> RecordAccount:
    """Count a version's raw rows, ingest rejects and quarantined rows per stage against the rows kept."""
    raw = lake.scan(RAW_DOCUMENTS, [version]).select(pl.len()).collect().item()
    quarantine = lake.scan(QUARANTINE, [version]).group_by("stage").len().collect()
    by_stage = dict(zip(quarantine["stage"].to_list(), quarantine["len"].to_list(), strict=True))
    return RecordAccount(raw + by_stage.get("ingest", 0), kept, by_stage)
