"""Jobs: the whole pipeline for one dataset version."""

import dagster as dg

from dagster_project.partitions import dataset_versions

PIPELINE_JOB = "refinery_pipeline"

refinery_pipeline = dg.define_asset_job(
    PIPELINE_JOB,
    selection=dg.AssetSelection.all(),
    partitions_def=dataset_versions,
    description="Ingest, prepare, validate, train, evaluate and deploy one dataset version.",
)
