"""Registering a drop as a dataset version: land it, then add its partition (the CLI and the demo use this)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.datasets.declaration import load_datasets
from assets.datasets.resolve import declaration_for
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
    dataset: str | None = None,
    *,
    manifest: dict[str, object] | None = None,
) -> str:
    """Land a drop for a dataset (its declared source mapping unless one is given; `manifest`: fields added to its
    version manifest) and add its version to the `dataset_versions` partitions; returns the version."""
    if dataset is None:
        declared = load_datasets(home.datasets)
        dataset = next(iter(declared)) if len(declared) == 1 else None  # a home of one dataset needs no --dataset
    if dataset is not None:
        declaration = declaration_for(home.datasets, dataset)
        mapping = mapping or declaration.mapping
    known = set(instance.get_dynamic_partitions(DATASET_VERSIONS))
    version = land_new_version(home, source, known, version, mapping, dataset, manifest=manifest)
    instance.add_dynamic_partitions(DATASET_VERSIONS, [version])
    return version
