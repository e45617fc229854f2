"""The `refinery` command: register data, run the pipeline, inspect it, predict and serve.

Each command's module is imported only when that command runs, so `refinery predict` does not load
Dagster and `refinery status` does not load torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from assets.storage.home import RefineryHome

DEMO_VERSION = "demo-v1"
COMMAND_MODULES = {
    "init": "datasets", "ingest": "pipeline", "run": "pipeline", "status": "pipeline", "demo": "pipeline",
    "predict": "models", "serve": "models", "models": "models", "rollback": "models",
    "ui": "tools", "rules_check": "tools", "lake_maintain": "tools",
}  # fmt: skip


class CliError(Exception):
    """An error shown to the user as one line."""


def handler(name: str) -> str:
    """`module:function` of a command, resolved when it runs."""
    module = COMMAND_MODULES[name]
    return f"dagster_project.cli.{module}:command_{name}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refinery", description="Validated training data and fine-tuned models.")
    parser.add_argument("--version", action="version", version=f"refinery {program_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="profile a file or folder, declare it as a dataset and register it")
    init.add_argument("path", help="a data file or folder (CSV/TSV, NDJSON, JSON, Parquet, text folders)")
    init.add_argument("--name", help="dataset name (default: from the file name)")
    init.add_argument("--text-column", help="the text column (default: detected, see the profile)")
    init.add_argument("--label-column", help="the label column (default: detected, see the profile)")
    init.add_argument("--json", action="store_true", help="print the profile as JSON")
    init.set_defaults(handler=handler("init"))

    demo = commands.add_parser("demo", help="generate the demo corpus and run the whole pipeline on it")
    demo.add_argument("--version", default=DEMO_VERSION)
    demo.add_argument("--rows", type=int, default=3000)
    demo.add_argument("--epochs", type=int, default=3)
    demo.set_defaults(handler=handler("demo"))

    ingest = commands.add_parser("ingest", help="register a file or folder as a new dataset version")
    ingest.add_argument("path")
    ingest.add_argument("--version", help="version name (default: name + content hash)")
    ingest.add_argument("--text-column")
    ingest.add_argument("--label-column")
    ingest.add_argument("--id-column")
    ingest.add_argument("--dataset", help="the declared dataset it belongs to (default: the home's only one)")
    ingest.set_defaults(handler=handler("ingest"))

    run = commands.add_parser("run", help="materialize assets for one dataset version")
    run.add_argument("--version", help="dataset version (default: the newest one, of --dataset if given)")
    run.add_argument("--dataset", help="with no --version: run this dataset's newest version")
    run.add_argument("--select", default="*", help="asset selection, as `dagster asset materialize --select`")
    run.add_argument("--config", help='run config as JSON, e.g. \'{"ops": {"fine_tuned_model": {...}}}\'')
    run.set_defaults(handler=handler("run"))

    status = commands.add_parser("status", help="dataset versions, their counts and the deployed model")
    status.set_defaults(handler=handler("status"))

    predict = commands.add_parser("predict", help="label texts with the deployed model")
    predict.add_argument("texts", nargs="+")
    predict.set_defaults(handler=handler("predict"))

    models = commands.add_parser("models", help="every model with its aliases, lineage and test metrics")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(handler=handler("models"))

    rollback = commands.add_parser("rollback", help="move the production alias back to the previous model")
    rollback.set_defaults(handler=handler("rollback"))

    add_rules_and_lake_commands(commands)

    for name, port in (("serve", 8080), ("ui", 3000)):
        sub = commands.add_parser(
            name, help="serve the deployed model over HTTP" if name == "serve" else "start the Dagster UI"
        )
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--port", type=int, default=port)
        if name == "serve":
            sub.add_argument("--no-quantize", action="store_true", help="serve float32 weights on CPU too")
            sub.add_argument("--insecure", action="store_true", help="serve a non-loopback host without a token")
        sub.set_defaults(handler=handler(name))
    return parser


def add_rules_and_lake_commands(commands: argparse._SubParsersAction) -> None:
    """`refinery rules check` and `refinery lake maintain`."""
    rules = commands.add_parser("rules", help="data rules")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_commands.add_parser("check", help="compile every rules file and declared source; exit 1 on an error")
    check.add_argument("directory", nargs="?", help="rules folder (default: rules/ or REFINERY_RULES_DIR)")
    check.add_argument("--sources", help="sources folder (default: sources/ or REFINERY_SOURCES_DIR)")
    check.set_defaults(handler=handler("rules_check"))

    lake = commands.add_parser("lake", help="the Delta tables of the home")
    lake_commands = lake.add_subparsers(dest="lake_command", required=True)
    maintain = lake_commands.add_parser("maintain", help="compact small files and vacuum unreferenced ones")
    maintain.add_argument("tables", nargs="*", help="table names (default: every table)")
    maintain.add_argument(
        "--retention-hours", type=int, default=168, help="keep what versions of the last N hours read (default: a week)"
    )
    maintain.set_defaults(handler=handler("lake_maintain"))


def program_version() -> str:
    """The installed distribution's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("refinery")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    home = RefineryHome.from_env()
    module, function = args.handler.split(":")
    command = getattr(importlib.import_module(module), function)
    try:
        return command(args, home)
    except (CliError, ValueError, FileNotFoundError, LookupError) as error:
        print(f"refinery: error: {error}", file=sys.stderr)
        return 1
