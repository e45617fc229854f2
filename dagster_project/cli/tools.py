"""Commands around the pipeline: the Dagster UI and the rules check."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from assets.datasets.declaration import load_datasets
from assets.datasets.resolve import rule_book_for
from assets.readers.declared import load_sources
from assets.storage.delta import Lake
from assets.storage.home import PROJECT_ROOT, RefineryHome
from assets.storage.maintenance import lake_tables, maintain_table
from dagster_project.cli import CliError
from dagster_project.cli.common import open_instance
from rules import load_rule_book
from rules.compiler import default_rules_dir
from service.access import is_loopback

GROUP_GRACE_S = 60.0  # what dagster dev's children may take to stop after it exits


def command_ui(args: argparse.Namespace, home: RefineryHome) -> int:
    if not is_loopback(args.host) and not args.insecure:
        raise CliError(
            f"refusing to start the Dagster UI on {args.host}: it has no login, and anyone who reaches it can "
            "launch runs; keep it on 127.0.0.1 behind an authenticating proxy, or pass --insecure"
        )
    open_instance(home)
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    command = [dagster, "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port)]
    environment = {**os.environ, "DAGSTER_HOME": str(home.dagster), "REFINERY_HOME": str(home.root)}
    print(f"Dagster UI on http://{args.host}:{args.port}  (DAGSTER_HOME={home.dagster})", flush=True)
    return run_in_own_group(command, env=environment, cwd=PROJECT_ROOT)


def run_in_own_group(command: list[str], **options) -> int:
    """Run `command` in a process group of its own and pass SIGTERM, SIGINT and SIGHUP on to the whole group, so
    that stopping this process stops everything it started (dagster dev's webserver, daemon and code servers);
    what is left of the group after `command` exits gets a grace period, then is killed."""
    started: list[int] = []
    pending: list[int] = []

    def forward(number: int, _frame) -> None:
        if not started:  # before the group exists: passed on once it does
            pending.append(number)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(started[0], number)

    numbers = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {number: signal.signal(number, forward) for number in numbers}
    try:
        process = subprocess.Popen(command, start_new_session=True, **options)
        started.append(process.pid)
        for number in pending:
            forward(number, None)
        return process.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if started:
            stop_leftovers(started[0])


def live_members(group: int) -> list[int]:
    """The processes of a process group still running (a zombie waiting for its reaper is not)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


def stop_leftovers(group: int, grace_s: float = GROUP_GRACE_S) -> None:
    """Give what is left of a process group `grace_s` to finish shutting down, then kill it."""
    deadline = time.monotonic() + grace_s
    while live_members(group) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        if live_members(group):
            os.killpg(group, signal.SIGKILL)


def command_rules_check(args: argparse.Namespace, home: RefineryHome) -> int:
    directory = Path(args.directory) if args.directory else default_rules_dir()
    book = load_rule_book(directory)
    report: dict[str, object] = {"rules": {}, "rules_hash": book.digest, "datasets": {}}
    for name, rule_set in sorted(book.rule_sets.items()):
        row_rules = sorted({r.name for r in rule_set.row_rules.values() if r.order >= 0})
        report["rules"][name] = {
            "file": rule_set.path.name,
            "row_rules": row_rules,
            "dataset_rules": [r.name for r in rule_set.dataset_rules],
        }
    for name, declaration in load_datasets(home.datasets).items():  # each compiles over the shipped rules
        report["datasets"][name] = {
            "rules_hash": rule_book_for(declaration).digest,
            "tasks": [task.name for task in declaration.tasks],
        }
    sources = load_sources(Path(args.sources)) if args.sources else load_sources()
    report["sources"] = sorted(sources)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for name, rules in report["rules"].items():
        print(
            f"{rules['file']}: {name}: {len(rules['row_rules'])} row rules, {len(rules['dataset_rules'])} dataset rules"
        )
    for name, dataset in report["datasets"].items():
        print(f"datasets/{name}.yaml: tasks {', '.join(dataset['tasks'])}; rules hash {dataset['rules_hash']}")
    print(f"rules hash {book.digest}; {len(sources)} declared sources valid")
    return 0


def command_lake_maintain(args: argparse.Namespace, home: RefineryHome) -> int:
    lake = Lake(home.lake_uri)
    tables = args.tables or lake_tables(lake)
    for table in tables:
        if table not in lake_tables(lake):
            raise CliError(f"no Delta table {table!r} in {home.lake_uri}")
        try:
            done = maintain_table(lake, table, args.retention_hours)
        except ValueError as error:
            raise CliError(str(error)) from error
        print(
            f"{done.table:<22} compacted {done.files_compacted} files into {done.files_added}, "
            f"vacuumed {done.files_vacuumed}; {done.bytes_before:,} -> {done.bytes_after:,} bytes"
        )
    return 0
