"""The Refinery code location: one Definitions object for `dagster dev` and the `refinery` CLI."""

from pathlib import Path

import dagster as dg

from assets.cleaning import clean_documents
from assets.deployment import deployed_model
from assets.evaluation import model_evaluation
from assets.ingestion import raw_documents
from assets.monitoring import batch_generations, batch_predictions, model_monitoring
from assets.readers.declared import load_sources
from assets.resources import LakeResource, LandingResource, ModelRegistryResource, TrainerResource
from assets.search import hyperparameter_search
from assets.selection import model_candidates
from assets.storage.home import RefineryHome
from assets.tokenization import tokenized_documents
from assets.training import fine_tuned_model
from assets.training_data import training_examples
from dagster_project.jobs import refinery_monitoring, refinery_pipeline
from dagster_project.sensors import (
    answer_feedback_sensor,
    build_source_sensors,
    drift_retraining_sensor,
    feedback_sensor,
    landing_sensor,
    service_monitoring_sensor,
)
from trainers.console import quiet_libraries

ASSETS = [
    raw_documents,
    clean_documents,
    tokenized_documents,
    training_examples,
    model_candidates,
    hyperparameter_search,
    fine_tuned_model,
    model_evaluation,
    deployed_model,
    batch_predictions,
    batch_generations,
    model_monitoring,
]


def build_resources(home: RefineryHome, sources_dir: Path | None = None) -> dict[str, dg.ConfigurableResource]:
    """Every resource, rooted in one `$REFINERY_HOME`."""
    return {
        "lake": LakeResource(root=home.lake_uri),
        "landing": LandingResource(
            root=str(home.landing), sources_dir=str(sources_dir or ""), datasets_dir=str(home.datasets)
        ),
        "registry": ModelRegistryResource(root=str(home.models), store_uri=home.models_uri),
        "trainer": TrainerResource(bundles_root=str(home.bundles), store_uri=home.models_uri),
    }


def build_definitions(home: RefineryHome, sources_dir: Path | None = None) -> dg.Definitions:
    """The code location for one home; declared sources (validated now) each get a sensor."""
    return dg.Definitions(
        assets=ASSETS,
        jobs=[refinery_pipeline, refinery_monitoring],
        sensors=[
            landing_sensor,
            drift_retraining_sensor,
            feedback_sensor,
            answer_feedback_sensor,
            service_monitoring_sensor,
            *build_source_sensors(load_sources(sources_dir)),
        ],
        resources=build_resources(home, sources_dir),
    )


quiet_libraries()  # the code server's log: Dagster's beta notices about parameters used on purpose
defs = build_definitions(RefineryHome.from_env())
