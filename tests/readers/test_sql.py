"""SQL sources: each new watermark range becomes one version, read from SQLite and a real PostgreSQL."""

import os
import sqlite3
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.ingestion import raw_documents
from assets.partitions import DATASET_VERSIONS
from assets.readers.arrivals import sql_tick
from assets.readers.declared import SourceDeclarationError, load_sources
from assets.readers.sql import SqlReader, max_watermark
from assets.storage.catalog import catalog_entry
from dagster_project.definitions import build_resources
from tests.servers import postgres_bin, running_postgres

SOURCES = """\
sources:
  - name: helpdesk
    kind: sql
    uri: {uri}
    query: SELECT id, body, queue, channel, updated_at FROM tickets
    watermark_column: updated_at
    {password}
    mapping: {{text_column: body, label_column: queue, id_column: id}}
    batch_size: 2
"""

ROWS = [
    (1, "vpn drops every hour", "vpn_access", "mail", "2026-11-01T08:00:00"),
    (2, "printer on floor 2 jammed", "printer_issue", "phone", "2026-11-01T09:30:00"),
    (3, "reset my password please", "password_reset", "portal", "2026-11-02T10:00:00"),
]


def _sqlite(path: Path, rows: list[tuple]) -> None:
    with sqlite3.connect(path) as connection:
        columns = "id INTEGER PRIMARY KEY, body TEXT, queue TEXT, channel TEXT, updated_at TEXT"
        connection.execute(f"CREATE TABLE IF NOT EXISTS tickets ({columns})")
        connection.executemany("INSERT INTO tickets VALUES (?, ?, ?, ?, ?)", rows)


def _declare(folder: Path, uri: str, password_env: str | None = None) -> dict:
    folder.mkdir(exist_ok=True)
    password = f"password_env: {password_env}" if password_env else ""
    (folder / "sources.yaml").write_text(SOURCES.format(uri=uri, password=password))
    return load_sources(folder)


def _materialize_raw(home, instance, sources_dir: Path, version: str) -> pl.DataFrame:
    instance.add_dynamic_partitions(DATASET_VERSIONS, [version])
    result = dg.materialize(
        [raw_documents], partition_key=version, instance=instance, resources=build_resources(home, sources_dir)
    )
    assert result.success
    return pl.read_delta(str(home.lake / "raw_documents")).filter(pl.col("dataset_version") == version)


def test_each_new_watermark_range_becomes_one_version_with_only_its_rows(home, instance, tmp_path: Path) -> None:
    database = tmp_path / "helpdesk.db"
    _sqlite(database, ROWS[:2])
    sources = _declare(tmp_path / "sources", f"sqlite:///{database}")
    source = sources["helpdesk"]

    first, cursor = sql_tick(source, home.landing, set(), None)
    assert (first, cursor) == ("helpdesk-2026-11-01T09-30-00", "2026-11-01T09:30:00")
    assert sql_tick(source, home.landing, {first}, cursor) == (None, cursor)
    raw = _materialize_raw(home, instance, tmp_path / "sources", first)
    assert raw.sort("source_row").select("source_id", "text", "label", "channel", "source").rows() == [
        ("1", "vpn drops every hour", "vpn_access", "mail", "sql:helpdesk"),
        ("2", "printer on floor 2 jammed", "printer_issue", "phone", "sql:helpdesk"),
    ]

    _sqlite(database, ROWS[2:])
    second, cursor = sql_tick(source, home.landing, {first}, cursor)
    assert second == "helpdesk-2026-11-02T10-00-00"
    raw = _materialize_raw(home, instance, tmp_path / "sources", second)
    assert raw["source_id"].to_list() == ["3"]
    entry = catalog_entry(build_resources(home)["lake"], second)
    assert (entry["watermark_low"], entry["watermark_high"], entry["records_read"]) == (
        "2026-11-01T09:30:00",
        "2026-11-02T10:00:00",
        1,
    )


def test_a_mapped_column_missing_from_the_query_is_a_clear_error(tmp_path: Path) -> None:
    database = tmp_path / "helpdesk.db"
    _sqlite(database, ROWS)
    (tmp_path / "sources.yaml").write_text(
        SOURCES.format(uri=f"sqlite:///{database}", password="").replace("id_column: id", "id_column: ticket_no")
    )
    source = load_sources(tmp_path)["helpdesk"]
    with pytest.raises(SourceDeclarationError, match="mapped column 'ticket_no' not in the query's columns"):
        SqlReader(source)


@pytest.fixture(scope="module")
def postgres():
    if postgres_bin() is None and not os.environ.get("CI"):
        pytest.skip("PostgreSQL server binaries not installed here (.ci/run installs them)")
    with running_postgres() as server:
        yield server


def test_postgres_source_reads_ranges_with_the_password_from_the_environment(
    postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1",
        port=postgres.port,
        user=postgres.user,
        password=postgres.password,
        dbname=postgres.database,
        autocommit=True,
    ) as connection:
        connection.execute("DROP TABLE IF EXISTS tickets")
        connection.execute("CREATE TABLE tickets (id int, body text, queue text, channel text, updated_at timestamp)")
        for row in ROWS:
            connection.execute("INSERT INTO tickets VALUES (%s, %s, %s, %s, %s)", row)
    source = _declare(tmp_path, postgres.uri, password_env="HELPDESK_PG_PASSWORD")["helpdesk"]
    monkeypatch.delenv("HELPDESK_PG_PASSWORD", raising=False)
    with pytest.raises(SourceDeclarationError, match="environment variable HELPDESK_PG_PASSWORD is not set"):
        max_watermark(source)
    monkeypatch.setenv("HELPDESK_PG_PASSWORD", postgres.password)
    assert max_watermark(source) == "2026-11-02T10:00:00"
    reader = SqlReader(source, low="2026-11-01T08:00:00", high="2026-11-02T10:00:00")
    documents = pl.concat([pl.from_arrow(batch) for batch in reader.batches()])
    assert documents.select("source_id", "label", "updated_at").rows() == [
        ("2", "printer_issue", "2026-11-01T09:30:00"),
        ("3", "password_reset", "2026-11-02T10:00:00"),
    ]
    assert reader.records_read == 2
