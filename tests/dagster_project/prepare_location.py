"""A code location for the concurrency test: Refinery's own data assets, resources and landing sensor, with the
sensor requesting runs of the data stages only (what the test measures is the instance, not the fine-tune)."""

import dagster as dg

from assets.cleaning import clean_documents
from assets.ingestion import raw_documents
from assets.partitions import dataset_versions
from assets.storage.home import RefineryHome
from assets.tokenization import tokenized_documents
from assets.training_data import training_examples
from dagster_project.definitions import build_resources
from dagster_project.sensors import build_landing_sensor

DATA_ASSETS = [raw_documents, clean_documents, tokenized_documents, training_examples]
PREPARE_JOB = "refinery_prepare"

prepare = dg.define_asset_job(PREPARE_JOB, selection=DATA_ASSETS, partitions_def=dataset_versions)

defs = dg.Definitions(
    assets=DATA_ASSETS,
    jobs=[prepare],
    sensors=[build_landing_sensor(prepare)],
    resources=build_resources(RefineryHome.from_env()),
)
