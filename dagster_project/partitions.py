"""The dataset-version partitions every data asset shares."""

import dagster as dg

DATASET_VERSIONS = "dataset_versions"

dataset_versions = dg.DynamicPartitionsDefinition(name=DATASET_VERSIONS)
