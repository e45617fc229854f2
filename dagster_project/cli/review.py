"""`refinery review export` and `import`: a person decides on the suspected label errors of a version, and the
decisions become a new version that supersedes it."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import polars as pl

from assets.datasets.declaration import load_datasets
from assets.examples.review import ReviewError, check_relabels, read_decisions, review_sheet, reviewed_records
from assets.readers.mapping import RecordMapping
from assets.storage.delta import Lake
from assets.storage.home import RefineryHome, check_version_name
from assets.storage.records import read_version
from assets.storage.version_manifest import dataset_name_of
from contracts.tables import LABEL_ISSUES, RAW_DOCUMENTS, TRAINING_EXAMPLES
from dagster_project.cli import CliError
from dagster_project.cli.common import open_instance, registered_versions
from dagster_project.versions import register_drop

REVIEWED_FILE = "reviewed.parquet"


def _reviewed_version(home: RefineryHome, dataset: str | None, version: str | None) -> str:
    """The version named, or the newest screened version of the dataset (the home's only one when not named)."""
    if version is not None:
        return version
    declared = sorted(load_datasets(home.datasets))
    if dataset is None and len(declared) != 1:
        raise CliError(f"name the dataset with --dataset (declared: {', '.join(declared) or 'none'})")
    dataset = dataset or declared[0]
    lake = Lake(str(home.lake))
    screened = set(lake.scan(TRAINING_EXAMPLES).select("dataset_version").unique().collect()["dataset_version"])
    candidates = [v for v in registered_versions(home, dataset) if v in screened]
    if not candidates:
        raise CliError(f"no version of {dataset!r} has training examples yet: materialize its training_examples")
    return candidates[-1]


def command_review_export(args: argparse.Namespace, home: RefineryHome) -> int:
    lake = Lake(str(home.lake))
    if not lake.exists(LABEL_ISSUES):
        raise CliError("no label issues yet: materialize a version's training_examples first")
    version = _reviewed_version(home, args.dataset, args.dataset_version)
    sheet = review_sheet(read_version(lake, LABEL_ISSUES, version), version)
    sheet.write_csv(args.output)
    print(f"wrote {sheet.height} label issues of {version} to {args.output}; fill in decision (keep, relabel or drop)")
    print(f"and label, then: refinery review import {args.output}")
    return 0


def command_review_import(args: argparse.Namespace, home: RefineryHome) -> int:
    lake = Lake(str(home.lake))
    path = Path(args.file)
    try:
        reviewed, decisions = read_decisions(path)
        if not (home.landing / check_version_name(reviewed)).is_dir():
            raise ReviewError(f"{path}: dataset version {reviewed!r} is not in {home.landing}")
        check_relabels(path, decisions, set(read_version(lake, TRAINING_EXAMPLES, reviewed)["label"].drop_nulls()))
        decisions = decisions.drop("line")
        records, counts = reviewed_records(read_version(lake, RAW_DOCUMENTS, reviewed), decisions)
    except ReviewError as error:
        raise CliError(str(error)) from error
    dataset = dataset_name_of(home.landing / reviewed, home.datasets)
    review = {
        "supersedes": [reviewed],
        "review": {
            "reviewed_version": reviewed,
            "sheet": str(path.resolve()),
            "decisions": counts,
            "changes": decisions.filter(pl.col("decision") != "keep").to_dicts(),
        },
    }
    with tempfile.TemporaryDirectory() as scratch:
        drop = Path(scratch) / "reviewed"
        drop.mkdir()
        records.write_parquet(drop / REVIEWED_FILE)
        mapping = RecordMapping(text_column="text", label_column="label", format="parquet")
        version = register_drop(
            open_instance(home), home, drop, args.dataset_version, mapping, dataset, manifest=review
        )
    changed = f"{counts['relabel']} labels corrected, {counts['drop']} rows dropped, {counts['keep']} kept"
    print(f"registered {version}: {reviewed} reviewed ({changed}); it supersedes {reviewed}")
    print(f"run it with: refinery run --dataset-version {version}")
    return 0
