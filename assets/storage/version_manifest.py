"""`landing/<version>/_version.yaml`: what a dataset version is (files, a SQL watermark range, an API pull)."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from contracts.datasets import UNDECLARED
from rules.yaml_reader import load_control_file

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
    if not path.exists() and not path.is_symlink():
        return {"kind": "files"}
    manifest = load_control_file(path, ValueError)
    if not isinstance(manifest, dict) or manifest.get("kind") not in KINDS:
        raise ValueError(f"{path}: not a version manifest (a mapping whose kind is one of {', '.join(KINDS)})")
    return manifest


def only_declared_dataset(datasets_dir: Path) -> str | None:
    """The name of a home's one declared dataset, None when it has none or several."""
    declared = sorted(datasets_dir.glob("*.yaml")) if datasets_dir.is_dir() else []
    return declared[0].stem if len(declared) == 1 else None


def dataset_name_of(landing_folder: Path, datasets_dir: Path | None = None) -> str:
    """The dataset of a landed version: `dataset` in its manifest; for a version without one (a folder dropped
    for the landing sensor, feedback), the home's only declared dataset, else the undeclared default."""
    name = read_version_manifest(landing_folder).get("dataset")
    if name:
        return str(name)
    return only_declared_dataset(datasets_dir or landing_folder.parent.parent / "datasets") or UNDECLARED


def superseded_versions(landing_folder: Path) -> list[str]:
    """The versions a landed version replaces (`supersedes` in its manifest: a reviewed copy replaces the original)."""
    replaced = read_version_manifest(landing_folder).get("supersedes") or []
    return [str(version) for version in replaced] if isinstance(replaced, list) else [str(replaced)]
