"""The dataset-version partitions every data asset shares."""

import dagster as dg

from contracts.datasets import DATASET_VERSIONS

dataset_versions = dg.DynamicPartitionsDefinition(name=DATASET_VERSIONS)


def earlier_versions(instance: dg.DagsterInstance, version: str) -> list[str]:
    """The dataset versions registered before `version`, oldest first."""
    registered = instance.get_dynamic_partitions(DATASET_VERSIONS)
    return registered[: registered.index(version)] if version in registered else registered
