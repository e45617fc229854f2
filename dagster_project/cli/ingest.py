"""`refinery ingest`: register a file or folder as a dataset version; the asset graph is not loaded."""

from __future__ import annotations

import argparse
from pathlib import Path

from assets.readers.mapping import RecordMapping
from assets.storage.home import RefineryHome
from dagster_project.cli.common import open_instance
from dagster_project.versions import register_drop


def _mapping(args: argparse.Namespace) -> RecordMapping | None:
    given = {k: getattr(args, k) for k in ("text_column", "label_column", "id_column") if getattr(args, k)}
    return RecordMapping(**given) if given else None


def command_ingest(args: argparse.Namespace, home: RefineryHome) -> int:
    version = register_drop(open_instance(home), home, Path(args.path), args.version, _mapping(args), args.dataset)
    print(f"registered dataset version {version} (landing/{version})")
    print(f"run it with: refinery run --dataset-version {version}")
    return 0
