"""Ingestion stage: a version's landing drop streamed into the `raw_documents` Delta table."""

import dagster as dg

from assets.storage.catalog import record_ingest
from assets.readers.declared import SourceDeclarationError
from assets.storage.records import reason_counts
from assets.readers.http import HttpSourceError
from assets.metadata import QUARANTINE
from assets.readers.drop import DropReader, IngestError
from assets.readers.sql import SqlReader
from assets.storage.version_manifest import MANIFEST_FILE, read_manifest
from assets.partitions import dataset_versions
from assets.resources import LakeResource, LandingResource
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
    folder = landing.folder(version)
    manifest = read_manifest(folder)
    watermark = None
    try:
        if manifest["kind"] == "sql":
            source = landing.sources().get(str(manifest["source"]))
            if source is None:
                raise IngestError(f"{folder / MANIFEST_FILE}: source {manifest['source']!r} is no longer declared")
            watermark = (manifest.get("watermark_low"), manifest.get("watermark_high"))
            reader = SqlReader(source, *watermark)
        else:
            reader = DropReader(folder)
        delta_version = lake.write_version_stream(RAW_DOCUMENTS, reader.schema, reader.batches(), version)
    except (IngestError, SourceDeclarationError, HttpSourceError) as error:
        raise dg.Failure(description=f"version {version}: {error}") from error
    quarantine = reader.quarantine()
    lake.write_version(QUARANTINE, quarantine, version, scope={"stage": "ingest"})
    record_ingest(
        lake, version, source=f"{manifest['kind']}:{manifest.get('source', f'landing/{version}')}",
        files=reader.files, records_read=reader.records_read, rows_ingested=reader.rows,
        quarantined_at_ingest=quarantine.height,
        watermark=tuple(str(w) if w is not None else None for w in watermark) if watermark else None,
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
