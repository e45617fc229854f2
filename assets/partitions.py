"""The dataset-version partitions every data asset shares."""

import dagster as dg

DATASET_VERSIONS = "dataset_versions"

dataset_versions = dg.DynamicPartitionsDefinition(name=DATASET_VERSIONS)


def earlier_versions(instance: dg.DagsterInstance, version: str) -> list[str]:
    """The dataset versions registered before `version`, oldest first."""
    registered = instance.get_dynamic_partitions(DATASET_VERSIONS)
    return registered[: registered.index(version)] if version in registered else registered


TRAINER_POOL = "refinery_trainer"  # fine-tunes and search trials queue in it for the same devices
