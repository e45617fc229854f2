"""Registering a landing drop as a dataset version, the same way for the CLI and the sensor."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import dagster as dg

from assets.sources import SOURCE_FILE, SourceConfig, data_files, sha256_file
from dagster_project.home import RefineryHome, check_version_name
from dagster_project.partitions import DATASET_VERSIONS

SUCCESS_MARKER = "_SUCCESS"


class RegistrationError(ValueError):
    """A drop that cannot become a dataset version; the message says why."""


def default_version_name(source: Path) -> str:
    """`<name>-<8 hex of the content hash>`: the same content always gets the same name."""
    digest = hashlib.sha256()
    for path in data_files(source):
        digest.update(path.name.encode() + b"\0" + sha256_file(path).encode())
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", source.stem if source.is_file() else source.name).strip("-._") or "drop"
    return f"{stem[:40]}-{digest.hexdigest()[:8]}"


def drop_signature(folder: Path) -> str:
    """Names, sizes and modification times of a drop's files: equal on two ticks means it is complete."""
    entries = sorted(
        (p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    )
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16]


def find_ready_drops(
    landing: Path, known: set[str], pending: dict[str, str]
) -> tuple[list[str], dict[str, str], list[str]]:
    """New landing folders that are complete (a `_SUCCESS` marker, or unchanged since the last tick).

    Returns (ready versions, still-pending signatures, invalid folder names).
    """
    ready, still_pending, invalid = [], {}, []
    if not landing.is_dir():
        return ready, still_pending, invalid
    for folder in sorted(p for p in landing.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        if folder.name in known:
            continue
        try:
            check_version_name(folder.name)
        except ValueError:
            invalid.append(folder.name)
            continue
        signature = drop_signature(folder)
        if (folder / SUCCESS_MARKER).exists() or pending.get(folder.name) == signature:
            ready.append(folder.name)
        else:
            still_pending[folder.name] = signature
    return ready, still_pending, invalid


def land_drop(home: RefineryHome, source: Path, version: str | None, mapping: SourceConfig | None) -> str:
    """Copy a file or folder into `landing/<version>/`, with its mapping and a `_SUCCESS` marker."""
    if not source.exists():
        raise RegistrationError(f"{source}: no such file or folder")
    files = data_files(source)
    if not files:
        raise RegistrationError(f"{source}: no data files to ingest")
    version = check_version_name(version or default_version_name(source))
    target = home.landing / version
    if target.exists():
        raise RegistrationError(f"dataset version {version!r} already exists at {target}")
    staging = home.landing / f".{version}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    if source.is_dir():
        shutil.copytree(source, staging, ignore=shutil.ignore_patterns(SUCCESS_MARKER))
    else:
        staging.mkdir(parents=True)
        shutil.copy2(source, staging / source.name)
        if (source.parent / SOURCE_FILE).exists() and mapping is None:
            shutil.copy2(source.parent / SOURCE_FILE, staging / SOURCE_FILE)
    if mapping is not None:
        (staging / SOURCE_FILE).write_text(mapping.to_yaml())
    (staging / SUCCESS_MARKER).touch()
    staging.rename(target)
    return version


def register_drop(
    instance: dg.DagsterInstance,
    home: RefineryHome,
    source: Path,
    version: str | None = None,
    mapping: SourceConfig | None = None,
) -> str:
    """Land a drop and add its version to the `dataset_versions` partitions; returns the version."""
    if version is not None and instance.has_dynamic_partition(DATASET_VERSIONS, version):
        raise RegistrationError(f"dataset version {version!r} is already registered")
    version = land_drop(home, source, version, mapping)
    instance.add_dynamic_partitions(DATASET_VERSIONS, [version])
    return version
