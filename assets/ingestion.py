"""raw_documents: a version's records streamed from its landing folder into Delta; unparseable ones to quarantine."""

import dagster as dg
from pydantic import Field

from assets.metadata import per_dataset
from assets.partitions import dataset_versions
from assets.readers.arrivals import open_reader
from assets.readers.http import HttpSourceError
from assets.readers.shards import DEFAULT_SHARD_BYTES, ShardedRead, ShardSettings, ingest_version
from assets.resources import LakeResource, LandingResource
from assets.storage.catalog import record_ingest
from assets.storage.records import reason_counts
from contracts.tables import QUARANTINE, RAW_DOCUMENTS


class IngestConfig(dg.Config):
    """How a large drop is split: files over `shard_bytes` in all are read in shards by parallel processes."""

    shard_bytes: int = Field(DEFAULT_SHARD_BYTES, description="a drop larger than this in all is read in shards of it")
    workers: int = Field(
        0, description="shard-reading processes; 0 = one per CPU this step may use, at most one per shard"
    )


@dg.asset(
    partitions_def=dataset_versions,
    group_name="ingest",
    kinds={"polars", "delta"},
    code_version="2",
)
def raw_documents(
    context: dg.AssetExecutionContext, config: IngestConfig, landing: LandingResource, lake: LakeResource
) -> dg.MaterializeResult:
    """Every record of the version's landing drop, as read; unparseable records go to quarantine."""
    version = context.partition_key
    try:
        rules_hash = landing.rule_book(version).digest
        settings = ShardSettings(config.shard_bytes, config.workers)
        source, manifest = open_reader(landing.folder(version), landing.sources())
        reader, delta_version = ingest_version(lake, RAW_DOCUMENTS, source, version, settings)
    except (ValueError, HttpSourceError) as error:  # IngestError, SourceDeclarationError, a bad partition key
        raise dg.Failure(description=f"version {version!r}: {error}") from error
    quarantine = reader.quarantine()
    lake.write_version(QUARANTINE, quarantine, version, scope={"stage": "ingest"})
    record_ingest(lake, version, manifest, reader)
    metadata = {
        "dagster/row_count": reader.rows,
        "records_read": reader.records_read,
        "quarantined": quarantine.height,
        "quarantined_by_rule": dg.MetadataValue.json(reason_counts(quarantine)),
        "files": dg.MetadataValue.json(reader.files),
        "shards": reader.shards if isinstance(reader, ShardedRead) else 1,
        "carried_source_columns": dg.MetadataValue.json(reader.extras),
        "delta_version": delta_version,
        "delta_table": dg.MetadataValue.path(lake.uri(RAW_DOCUMENTS)),
        "rules_hash": rules_hash,
    }
    return dg.MaterializeResult(metadata=per_dataset(landing.dataset(version).name, metadata))
