"""`refinery status`: what each dataset version read, kept and quarantined, and its models; no torch, no asset graph."""

from __future__ import annotations

import argparse
import json

from assets.storage.home import RefineryHome
from dagster_project.cli import check_dataset
from dagster_project.cli.common import registered_versions
from dagster_project.cli.summary import render_summary, version_summary


def command_status(args: argparse.Namespace, home: RefineryHome) -> int:
    dataset = check_dataset(home, args.dataset)
    summaries = [version_summary(home, version) for version in registered_versions(home, dataset)]
    if args.json:
        print(json.dumps({"home": str(home.root), "versions": summaries}, indent=2))
    elif not summaries:
        print(f"no dataset versions yet in {home.root}; try: refinery init PATH, or refinery demo")
    for summary in [] if args.json else summaries:
        print(render_summary(summary, home))
    return 0
