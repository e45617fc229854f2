"""Arrivals: a landing drop, a new SQL watermark or an API pull becomes a `landing/<version>/` folder."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from assets.readers.declared import HttpSource, SqlSource
from assets.readers.drop import DropReader, data_files, sha256_file
from assets.readers.http import fetch_records, records_digest
from assets.readers.mapping import MAPPING_FILE, RecordMapping
from assets.readers.protocol import IngestError, Reader
from assets.readers.sql import SqlReader, max_watermark
from assets.storage.home import RefineryHome, check_version_name
from assets.storage.version_manifest import (
    VERSION_MANIFEST_FILE,
    only_declared_dataset,
    read_version_manifest,
    write_version_manifest,
)

SUCCESS_MARKER = "_SUCCESS"


class RegistrationError(ValueError):
    """A drop that cannot become a dataset version; the message says why."""


def content_digest(source: Path) -> str:
    """sha256 over the data files' names and contents: equal for equal drops."""
    digest = hashlib.sha256()
    base = source if source.is_dir() else source.parent
    for path in data_files(source):
        digest.update(path.relative_to(base).as_posix().encode() + b"\0" + sha256_file(path).encode())
    return digest.hexdigest()


def default_version_name(source: Path, digest: str) -> str:
    """`<name>-<8 hex of the content digest>` (the dataset's name, else the file's): the same content always gets
    the same name, and the UI's partition keys say which dataset each version belongs to."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", source.stem if source.is_file() else source.name).strip("-._") or "drop"
    return f"{stem[:40]}-{digest[:8]}"


def known_digests(landing: Path, versions: set[str]) -> dict[str, str]:
    """Content digest -> version, for registered versions whose manifest records one."""
    digests = {}
    for version in versions:
        try:
            digest = read_version_manifest(landing / version).get("content_sha256")
        except ValueError:  # a damaged manifest: that version's content cannot be compared
            continue
        if digest:
            digests[str(digest)] = version
    return digests


def drop_signature(folder: Path) -> str:
    """Names, sizes and modification times of a drop's files: equal on two ticks means it is complete."""
    entries = sorted(
        (p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    )
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16]


@dataclass
class LandingScan:
    """What one look at landing/ found."""

    ready: list[str] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)  # folder -> the version with the same content
    refused: dict[str, str] = field(default_factory=dict)  # folder -> why it cannot be read (e.g. a symbolic link)


def find_ready_drops(landing: Path, known: set[str], pending: dict[str, str]) -> LandingScan:
    """New landing folders that are complete (a `_SUCCESS` marker, or unchanged since the last tick).

    A complete folder whose content equals a registered version's is reported as a duplicate, not
    registered; folders made by the SQL and HTTP sensors are theirs to register.
    """
    scan = LandingScan()
    if not landing.is_dir():
        return scan
    digests = None
    for folder in sorted(p for p in landing.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        if folder.name in known:
            continue
        try:
            if read_version_manifest(folder).get("kind") != "files":
                continue  # the SQL, HTTP and feedback sensors register their own folders
        except ValueError as error:
            scan.refused[folder.name] = str(error)
            continue
        try:
            check_version_name(folder.name)
        except ValueError:
            scan.invalid.append(folder.name)
            continue
        signature = drop_signature(folder)
        if not ((folder / SUCCESS_MARKER).exists() or pending.get(folder.name) == signature):
            scan.pending[folder.name] = signature
            continue
        digests = known_digests(landing, known) if digests is None else digests
        try:
            digest = content_digest(folder)
        except IngestError as error:
            scan.refused[folder.name] = str(error)
            continue
        if digest in digests:
            scan.duplicates[folder.name] = digests[digest]
            continue
        dataset = only_declared_dataset(landing.parent / "datasets")  # recorded now: a later declaration moves nothing
        write_version_manifest(folder, "files", content_sha256=digest, **({"dataset": dataset} if dataset else {}))
        digests[digest] = folder.name
        scan.ready.append(folder.name)
    return scan


def refuse_links(source: Path) -> None:
    """Refuse a drop holding a symbolic link anywhere, control names (`_x`, `.x`) included: copying would
    follow it (`_x -> /` would copy the disk)."""
    if source.is_symlink():
        raise RegistrationError(f"{source}: a symbolic link; give the file or folder it points to")
    if not source.is_dir():
        return
    for folder, folders, files in os.walk(source):  # does not follow links into folders
        for name in sorted(folders + files):
            path = Path(folder) / name
            if path.is_symlink():
                raise RegistrationError(f"{path}: a symbolic link -> {path.readlink()}; copy the data into the drop")


def land_drop(
    home: RefineryHome,
    source: Path,
    version: str,
    digest: str,
    mapping: RecordMapping | None,
    dataset: str | None = None,
    *,
    manifest: dict[str, object] | None = None,
) -> str:
    """Copy a file or folder into `landing/<version>/`, with its mapping, manifest (naming its dataset) and a
    `_SUCCESS` marker."""
    target = home.landing / version
    if target.exists():
        raise RegistrationError(f"dataset version {version!r} already exists at {target}")
    refuse_links(source)
    staging = home.landing / f".{version}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        if source.is_dir():  # links copied as links, never followed, should one appear after the check
            shutil.copytree(source, staging, symlinks=True, ignore=shutil.ignore_patterns(SUCCESS_MARKER))
        else:
            staging.mkdir(parents=True)
            shutil.copy2(source, staging / source.name)
            if (source.parent / MAPPING_FILE).exists() and mapping is None:
                shutil.copy2(source.parent / MAPPING_FILE, staging / MAPPING_FILE)
        if mapping is not None:
            (staging / MAPPING_FILE).write_text(mapping.to_yaml())
        (staging / VERSION_MANIFEST_FILE).unlink(missing_ok=True)
        named = {"dataset": dataset} if dataset else {}
        write_version_manifest(staging, "files", content_sha256=digest, **named, **(manifest or {}))
        (staging / SUCCESS_MARKER).touch()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # no half-copied drop left behind
        raise
    return version


def land_new_version(
    home: RefineryHome,
    source: Path,
    known: set[str],
    version: str | None = None,
    mapping: RecordMapping | None = None,
    dataset: str | None = None,
    *,
    manifest: dict[str, object] | None = None,
) -> str:
    """Land a drop as a new version unless its name or content is already registered; returns the version.
    `manifest` adds fields to its manifest (a reviewed copy's `supersedes` and `review`) before it is visible."""
    if version is not None and check_version_name(version) in known:
        raise RegistrationError(f"dataset version {version!r} is already registered")
    if not source.exists():
        raise RegistrationError(f"{source}: no such file or folder")
    if not data_files(source):
        raise RegistrationError(f"{source}: no data files to ingest")
    digest = content_digest(source)  # reads every file: once per registration
    same = known_digests(home.landing, known).get(digest)
    if same:
        raise RegistrationError(f"{source}: same content as dataset version {same!r}; nothing to register")
    name = check_version_name(version or default_version_name(Path(dataset) if dataset else source, digest))
    return land_drop(home, source, name, digest, mapping, dataset, manifest=manifest)


def watermark_version(source_name: str, high: object) -> str:
    """The version name of a SQL source's watermark range: `<source>-<high watermark>`."""
    mark = re.sub(r"[^A-Za-z0-9._-]+", "-", str(high)).strip("-._") or "0"
    return check_version_name(f"{source_name}-{mark}"[:64])


def _advanced(high: object, last: object) -> bool:
    if last is None:
        return True
    try:
        return high > last  # type: ignore[operator]
    except TypeError:
        return high != last


def _publish(staging: Path, target: Path) -> None:
    (staging / SUCCESS_MARKER).touch()
    staging.rename(target)


def sql_tick(source: SqlSource, landing: Path, known: set[str], last: object) -> tuple[str | None, object]:
    """Poll a SQL source's watermark; a higher one becomes a version folder. Returns (version, new cursor)."""
    high = max_watermark(source)
    if high is None or not _advanced(high, last):
        return None, last
    version = watermark_version(source.name, high)
    if version in known or (landing / version).exists():
        return None, high
    staging = landing / f".{version}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write_version_manifest(staging, "sql", source=source.name, watermark_low=last, watermark_high=high)
    _publish(staging, landing / version)
    return version, high


def http_tick(source: HttpSource, landing: Path, known: set[str]) -> str | None:
    """Pull an API; content not seen before becomes a version folder of NDJSON records."""
    records = list(fetch_records(source))
    if not records:
        return None
    digest = records_digest(records)
    version = check_version_name(f"{source.name}-{digest[:12]}")
    if version in known or (landing / version).exists():
        return None
    land_records(
        landing, version, records, source.mapping, "http", source=source.name, content_sha256=digest, url=source.url
    )
    return version


def land_records(
    landing: Path,
    version: str,
    records: list[dict],
    mapping: RecordMapping,
    kind: str,
    **manifest: object,
) -> Path:
    """Publish records as `landing/<version>/records.ndjson` with their mapping, a manifest (`kind` and the
    `manifest` fields, e.g. the content hash that named the version) and `_SUCCESS`."""
    staging = landing / f".{version}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with (staging / "records.ndjson").open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    (staging / MAPPING_FILE).write_text(mapping.to_yaml())
    write_version_manifest(staging, kind, **manifest, records=len(records))
    _publish(staging, landing / version)
    return landing / version


def open_reader(folder: Path, sources: dict[str, SqlSource | HttpSource]) -> tuple[Reader, dict[str, object]]:
    """The reader for a version's landing folder (its files, or the SQL range its manifest names), and the manifest."""
    manifest = read_version_manifest(folder)
    if manifest["kind"] != "sql":
        return DropReader(folder), manifest
    source = sources.get(str(manifest["source"]))
    if not isinstance(source, SqlSource):
        raise IngestError(f"{folder / VERSION_MANIFEST_FILE}: source {manifest['source']!r} is no longer declared")
    return SqlReader(source, manifest.get("watermark_low"), manifest.get("watermark_high")), manifest
