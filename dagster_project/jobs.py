"""Jobs: the whole pipeline for one dataset version, and batch scoring with drift monitoring."""

import dagster as dg

from assets.partitions import dataset_versions

PIPELINE_JOB = "refinery_pipeline"
MONITORING_JOB = "refinery_monitoring"
MONITOR_GROUP = "monitor"

# materialized when asked for, not with every version: a search takes minutes to hours; answers are wanted for
# some versions of a generation dataset only
ON_DEMAND = ("hyperparameter_search", "batch_generations")
CLASSIFIER_ONLY = ("batch_predictions", "model_monitoring")  # left out of a generation dataset's runs

refinery_pipeline = dg.define_asset_job(
    PIPELINE_JOB,
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(MONITOR_GROUP) - dg.AssetSelection.assets(*ON_DEMAND),
    partitions_def=dataset_versions,
    description="Ingest, prepare, validate, train, evaluate and deploy one dataset version.",
)

refinery_monitoring = dg.define_asset_job(
    MONITORING_JOB,
    selection=dg.AssetSelection.groups(MONITOR_GROUP),
    partitions_def=dataset_versions,
    description="Score one dataset version with the production model and compare it with the training data.",
)
