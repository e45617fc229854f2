"""Registering a drop as a dataset version: land it, then add its partition (the CLI and the demo use this)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.partitions import DATASET_VERSIONS
from assets.readers.arrivals import land_new_version
from assets.readers.mapping import RecordMapping
from assets.storage.home import RefineryHome


def register_drop(
    instance: dg.DagsterInstance,
    home: RefineryHome,
    source: Path,
    version: str | None = None,
    mapping: RecordMapping | None = None,
) -> str:
    """Land a drop and add its version to the `dataset_versions` partitions; returns the version."""
    known = set(instance.get_dynamic_partitions(DATASET_VERSIONS))
    version = land_new_version(home, source, known, version, mapping)
    instance.add_dynamic_partitions(DATASET_VERSIONS, [version])
    return version
