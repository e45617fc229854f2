"""Commands around the pipeline: the Dagster UI and the rules check."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from assets.readers.declared import load_sources
from assets.storage.delta import Lake
from assets.storage.home import PROJECT_ROOT, RefineryHome
from assets.storage.maintenance import lake_tables, maintain_table
from dagster_project.cli import CliError
from dagster_project.cli.common import open_instance
from rules import load_rule_book
from rules.compiler import default_rules_dir


def command_ui(args: argparse.Namespace, home: RefineryHome) -> int:
    open_instance(home)
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    command = [dagster, "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port)]
    environment = {**os.environ, "DAGSTER_HOME": str(home.dagster), "REFINERY_HOME": str(home.root)}
    print(f"Dagster UI on http://{args.host}:{args.port}  (DAGSTER_HOME={home.dagster})", flush=True)
    return subprocess.call(command, env=environment, cwd=PROJECT_ROOT)


def command_rules_check(args: argparse.Namespace, home: RefineryHome) -> int:
    directory = Path(args.directory) if args.directory else default_rules_dir()
    book = load_rule_book(directory)
    for name, rule_set in sorted(book.rule_sets.items()):
        row_rules = sorted({r.name for r in rule_set.row_rules.values() if r.order >= 0})
        print(f"{rule_set.path.name}: {name}: {len(row_rules)} row rules, {len(rule_set.dataset_rules)} dataset rules")
    sources = load_sources(Path(args.sources)) if args.sources else load_sources()
    print(f"rules hash {book.digest}; {len(sources)} declared sources valid")
    return 0


def command_lake_maintain(args: argparse.Namespace, home: RefineryHome) -> int:
    lake = Lake(str(home.lake))
    tables = args.tables or lake_tables(lake)
    for table in tables:
        if table not in lake_tables(lake):
            raise CliError(f"no Delta table {table!r} in {home.lake}")
        done = maintain_table(lake, table, args.retention_hours)
        print(f"{done.table:<22} compacted {done.files_compacted} files into {done.files_added}, "
              f"vacuumed {done.files_vacuumed}; {done.bytes_before:,} -> {done.bytes_after:,} bytes")  # fmt: skip
    return 0
