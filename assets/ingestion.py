"""Ingestion stage: a version's landing drop into the `raw_documents` Delta table."""

import dagster as dg

from assets.metadata import write_stage
from assets.sources import IngestError, read_drop
from dagster_project.partitions import dataset_versions
from dagster_project.resources import LakeResource, LandingResource
from rules import default_rule_book

RAW_DOCUMENTS = "raw_documents"


@dg.asset(
    partitions_def=dataset_versions,
    group_name="ingest",
    kinds={"polars", "delta"},
    code_version="1",
)
def raw_documents(
    context: dg.AssetExecutionContext, landing: LandingResource, lake: LakeResource
) -> dg.MaterializeResult:
    """Every record of the version's landing drop, as read; unparseable records go to quarantine."""
    version = context.partition_key
    try:
        drop = read_drop(landing.folder(version))
    except IngestError as error:
        raise dg.Failure(description=f"version {version}: {error}") from error
    metadata = write_stage(
        lake, RAW_DOCUMENTS, "ingest", version, drop.documents, drop.quarantine, default_rule_book().digest
    )
    metadata["records_read"] = drop.records_read
    metadata["files"] = dg.MetadataValue.json(drop.files)
    return dg.MaterializeResult(metadata=metadata)
