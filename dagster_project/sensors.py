"""Sensors that turn new data into dataset versions and runs."""

import json
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from assets.datasets.answer_feedback import answer_feedback_tick
from assets.models.retraining import retraining_version
from assets.monitoring import MODEL_MONITORING
from assets.partitions import DATASET_VERSIONS, dataset_versions
from assets.readers.arrivals import find_ready_drops, http_tick, sql_tick
from assets.readers.declared import HttpSource, Source, SqlSource
from assets.readers.feedback import feedback_tick
from assets.resources import LakeResource, LandingResource, ModelRegistryResource
from contracts.tables import SERVICE_PREDICTIONS
from dagster_project.jobs import refinery_monitoring, refinery_pipeline
from trainers.registry import read_card

if TYPE_CHECKING:  # what define_asset_job returns; dagster does not export the name
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def build_landing_sensor(
    job: "dg.JobDefinition | UnresolvedAssetJobDefinition" = refinery_pipeline,
) -> dg.SensorDefinition:
    """The landing sensor, requesting runs of `job` (the whole pipeline unless a deployment chooses a part)."""

    @dg.sensor(
        name="landing_sensor",
        job=job,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="A complete new folder in landing/ becomes a dataset version and one run (run_key = version).",
    )
    def _sensor(context: dg.SensorEvaluationContext, landing: LandingResource) -> dg.SensorResult:
        pending = json.loads(context.cursor or "{}").get("pending", {})
        known = set(context.instance.get_dynamic_partitions(DATASET_VERSIONS))
        scan = find_ready_drops(Path(landing.root), known, pending)
        for name in scan.invalid:
            context.log.warning(f"landing/{name}: not a valid dataset version name; rename the folder")
        for name, same in scan.duplicates.items():
            context.log.warning(f"landing/{name}: same content as dataset version {same}; not registered")
        for name, reason in scan.refused.items():
            context.log.warning(f"landing/{name}: not registered: {reason}")
        return register_versions(scan.ready, {"pending": scan.pending})

    return _sensor


landing_sensor = build_landing_sensor()


def register_versions(versions: list[str], cursor: object) -> dg.SensorResult:
    """Add versions to the partitions and request one run each (run_key = version: never twice)."""
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=version, partition_key=version) for version in versions],
        dynamic_partitions_requests=[dataset_versions.build_add_request(versions)] if versions else [],
        cursor=json.dumps(cursor),
    )


def build_sql_sensor(source: SqlSource) -> dg.SensorDefinition:
    """A sensor that turns each new watermark range of a SQL source into a version and a run."""

    @dg.sensor(
        name=f"sql_{source.name.replace('-', '_')}_sensor",
        job=refinery_pipeline,
        minimum_interval_seconds=source.interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"New rows of SQL source {source.name!r} (watermark {source.watermark_column}) become a version.",
    )
    def _sensor(context: dg.SensorEvaluationContext, landing: LandingResource) -> dg.SensorResult:
        last = json.loads(context.cursor) if context.cursor else None
        known = set(context.instance.get_dynamic_partitions(DATASET_VERSIONS))
        version, high = sql_tick(source, Path(landing.root), known, last)
        return register_versions([version] if version else [], high)

    return _sensor


def build_http_sensor(source: HttpSource) -> dg.SensorDefinition:
    """A sensor that polls an HTTP source and turns content it has not seen into a version and a run."""

    @dg.sensor(
        name=f"http_{source.name.replace('-', '_')}_sensor",
        job=refinery_pipeline,
        minimum_interval_seconds=source.interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Polls {source.url}; changed content becomes a version.",
    )
    def _sensor(context: dg.SensorEvaluationContext, landing: LandingResource) -> dg.SensorResult:
        known = set(context.instance.get_dynamic_partitions(DATASET_VERSIONS))
        version = http_tick(source, Path(landing.root), known)
        return register_versions([version] if version else [], None)

    return _sensor


def build_source_sensors(sources: dict[str, Source]) -> list[dg.SensorDefinition]:
    """One sensor per declared source."""
    return [
        build_sql_sensor(source) if source.kind == "sql" else build_http_sensor(source)
        for source in sources.values()
        if source.kind == "http" or source.watermark_column
    ]


@dg.asset_sensor(
    asset_key=dg.AssetKey(MODEL_MONITORING),
    job=refinery_pipeline,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Drift beyond the fail thresholds retrains on the newest version, if the production model has not "
    "seen it.",
)
def drift_retraining_sensor(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry, registry: ModelRegistryResource
):
    """Request a run of the newest dataset version when monitoring asks for retraining and there is new data."""
    materialization = asset_event.asset_materialization
    requested = materialization.metadata.get("retraining_requested") if materialization else None
    if requested is None or not requested.value:
        return dg.SkipReason("the latest monitoring run found no drift beyond its fail thresholds")
    production = registry.aliases().get("production")
    card = read_card(registry.version_folder(production)) if production else None
    version, reason = retraining_version(context.instance.get_dynamic_partitions(DATASET_VERSIONS), card)
    if version is None:
        context.log.info(f"drift found, retraining skipped: {reason}")
        return dg.SkipReason(reason)
    return dg.RunRequest(
        run_key=f"retrain-{version}-after-{production}",
        partition_key=version,
        tags={"refinery/trigger": "drift", "refinery/drifted_partition": materialization.partition or ""},
    )


@dg.sensor(job=refinery_pipeline, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED)
def feedback_sensor(context: dg.SensorEvaluationContext, lake: LakeResource, landing: LandingResource):
    """Labels posted to the service's /feedback become a dataset version of their own and one pipeline run."""
    after = json.loads(context.cursor) if context.cursor else None
    known = set(context.instance.get_dynamic_partitions(DATASET_VERSIONS))
    versions, cursor = feedback_tick(lake, Path(landing.root), known, after)
    if not versions:
        return dg.SkipReason("no new feedback labels")
    return register_versions(versions, cursor)


@dg.sensor(job=refinery_pipeline, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED)
def answer_feedback_sensor(context: dg.SensorEvaluationContext, lake: LakeResource, landing: LandingResource):
    """Corrections and ratings of the service's answers become a version of the preference dataset declared to tune
    the generation dataset's production model, and one pipeline run: preference run, gate, deploy."""
    cursor = json.loads(context.cursor) if context.cursor else None
    known = set(context.instance.get_dynamic_partitions(DATASET_VERSIONS))
    versions, cursor, undeclared = answer_feedback_tick(lake, Path(landing.root), landing.datasets(), known, cursor)
    if undeclared:
        context.log.warning(undeclared_message(undeclared, landing.datasets()))
    if not versions:
        waits = f"; {undeclared_message(undeclared, landing.datasets())}" if undeclared else ""
        return dg.SkipReason(f"no new corrections or ratings of answers to land{waits}")
    return register_versions(versions, cursor)


def undeclared_message(datasets: list[str], datasets_dir: Path) -> str:
    """How to let waiting feedback land: declare the preference dataset that tunes each one's production model."""
    examples = ", ".join(
        f"{datasets_dir / f'{name}-preferences.yaml'} (model_name_or_path: {name}@production)" for name in datasets
    )
    return f"feedback on {', '.join(datasets)} waits for a preference dataset to tune its model; declare {examples}"


@dg.sensor(job=refinery_monitoring, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED)
def service_monitoring_sensor(context: dg.SensorEvaluationContext, lake: LakeResource, registry: ModelRegistryResource):
    """When the service has logged new predictions, monitor them against the production model's training data."""
    production = registry.aliases().get("production")
    if production is None or not lake.exists(SERVICE_PREDICTIONS):
        return dg.SkipReason("no production model or no logged predictions yet")
    table_version = lake.table_version(SERVICE_PREDICTIONS)
    if context.cursor == str(table_version):
        return dg.SkipReason(f"no new predictions since Delta version {table_version}")
    context.update_cursor(str(table_version))
    return dg.RunRequest(
        run_key=f"service-{table_version}",
        partition_key=registry.dataset_version_of(production),
        asset_selection=[dg.AssetKey(MODEL_MONITORING)],
        run_config={"ops": {MODEL_MONITORING: {"config": {"source": "service"}}}},
    )
