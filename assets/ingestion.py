"""Ingestion stage: a version's landing drop streamed into the `raw_documents` Delta table."""

import dagster as dg

from assets.catalog import record_ingest
from assets.documents import reason_counts
from assets.metadata import QUARANTINE
from assets.sources import DropReader, IngestError
from dagster_project.partitions import dataset_versions
from dagster_project.resources import LakeResource, LandingResource
from rules import default_rule_book

RAW_DOCUMENTS = "raw_documents"


@dg.asset(
    partitions_def=dataset_versions,
    group_name="ingest",
    kinds={"polars", "delta"},
    code_version="2",
)
def raw_documents(
    context: dg.AssetExecutionContext, landing: LandingResource, lake: LakeResource
) -> dg.MaterializeResult:
    """Every record of the version's landing drop, as read; unparseable records go to quarantine."""
    version = context.partition_key
    try:
        reader = DropReader(landing.folder(version))
        delta_version = lake.write_version_stream(RAW_DOCUMENTS, reader.schema, reader.batches(), version)
    except IngestError as error:
        raise dg.Failure(description=f"version {version}: {error}") from error
    quarantine = reader.quarantine()
    lake.write_version(QUARANTINE, quarantine, version, scope={"stage": "ingest"})
    record_ingest(
        lake, version, source=f"landing/{version}", files=reader.files, records_read=reader.records_read,
        rows_ingested=reader.rows, quarantined_at_ingest=quarantine.height,
    )  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": reader.rows,
            "records_read": reader.records_read,
            "quarantined": quarantine.height,
            "quarantined_by_rule": dg.MetadataValue.json(reason_counts(quarantine)),
            "files": dg.MetadataValue.json(reader.files),
            "carried_source_columns": dg.MetadataValue.json(reader.extras),
            "delta_version": delta_version,
            "delta_table": dg.MetadataValue.path(lake.uri(RAW_DOCUMENTS)),
            "rules_hash": default_rule_book().digest,
        }
    )
