"""`landing/<version>/_version.yaml`: what a dataset version is (files, a SQL watermark range, an API pull)."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

VERSION_MANIFEST_FILE = "_version.yaml"
KINDS = ("files", "sql", "http", "feedback")


def write_version_manifest(folder: Path, kind: str, **fields: object) -> dict[str, object]:
    """Write a version's manifest (kind, source, watermark range or content hash, registration time)."""
    if kind not in KINDS:
        raise ValueError(f"unknown version kind {kind!r}")
    manifest = {"kind": kind, **fields, "registered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (folder / VERSION_MANIFEST_FILE).write_text(yaml.safe_dump(manifest, sort_keys=False))
    return manifest


def read_version_manifest(folder: Path) -> dict[str, object]:
    """A version's manifest; a drop made by hand without one is a files version."""
    path = folder / VERSION_MANIFEST_FILE
    return yaml.safe_load(path.read_text()) if path.is_file() else {"kind": "files"}
