"""Sensors that turn new data into dataset versions and runs."""

import json
from pathlib import Path

import dagster as dg

from dagster_project.jobs import refinery_pipeline
from dagster_project.partitions import DATASET_VERSIONS, dataset_versions
from dagster_project.resources import LandingResource
from dagster_project.versions import find_ready_drops


@dg.sensor(job=refinery_pipeline, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.STOPPED)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingResource) -> dg.SensorResult:
    """A complete new folder in landing/ becomes a dataset version and one pipeline run (run_key = version)."""
    pending = json.loads(context.cursor or "{}").get("pending", {})
    known = set(context.instance.get_dynamic_partitions(DATASET_VERSIONS))
    ready, pending, invalid = find_ready_drops(Path(landing.root), known, pending)
    for name in invalid:
        context.log.warning(f"landing/{name}: not a valid dataset version name; rename the folder")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=version, partition_key=version) for version in ready],
        dynamic_partitions_requests=[dataset_versions.build_add_request(ready)] if ready else [],
        cursor=json.dumps({"pending": pending}),
    )
