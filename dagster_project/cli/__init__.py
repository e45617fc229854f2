"""The `refinery` command: register data, run the pipeline, inspect it, predict and serve.

Each command's module is imported only when that command runs, so `refinery predict` does not load
Dagster and `refinery status` does not load torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from assets.storage.home import RefineryHome
from contracts.chat import CHAT_FORMATS
from trainers.console import quiet_libraries

DEMO_VERSION = "demo-v1"
COMMAND_MODULES = {
    "init": "datasets",
    "ingest": "ingest",
    "run": "pipeline",
    "status": "status",
    "demo": "demo",
    "predict": "models",
    "generate": "generation",
    "serve": "models",
    "models": "models",
    "rollback": "models",
    "add_labels": "models",
    "explain": "evidence",
    "review_export": "review",
    "review_import": "review",
    "ui": "tools",
    "rules_check": "tools",
    "lake_maintain": "tools",
}


class CliError(Exception):
    """An error shown to the user as one line."""


def handler(name: str) -> str:
    """`module:function` of a command, resolved when it runs."""
    module = COMMAND_MODULES[name]
    return f"dagster_project.cli.{module}:command_{name}"


VERSION_FLAGS = ("--dataset-version", "--version")  # `--version` alone is the program's; kept here as before


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that shows an option's default when it has one and its text does not say it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "(default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def count(text: str) -> int:
    """A command-line count: a whole number, 0 or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is below 0")
    return value


def subcommand(
    commands: argparse._SubParsersAction, name: str, text: str, command: str | None = None
) -> argparse.ArgumentParser:
    """A command (`command` names its handler, default `name`) whose help shows every option's default."""
    parser = commands.add_parser(name, help=text, description=text, formatter_class=DefaultsFormatter)
    parser.set_defaults(handler=handler(command or name))
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refinery", description="Validated training data and fine-tuned models.")
    parser.add_argument("--version", action="version", version=f"refinery {program_version()}")
    parser.add_argument("--home", help="the Refinery home (default: $REFINERY_HOME, else ./.refinery)")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_const",
        const="DEBUG",
        dest="log_level",
        default="INFO",
        help="show Dagster's debug events",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_const", const="WARNING", dest="log_level", help="show warnings and errors only"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_data_commands(commands)
    add_model_commands(commands)
    add_rules_and_lake_commands(commands)
    return parser


def add_data_commands(commands: argparse._SubParsersAction) -> None:
    """init, demo, ingest, run, status."""
    init = subcommand(commands, "init", "profile a file or folder, declare it as a dataset and register it")
    init.add_argument("path", help="a data file or folder (CSV/TSV, NDJSON, JSON, Parquet, text folders)")
    init.add_argument("--name", help="dataset name (default: from the file name)")
    init.add_argument("--text-column", help="the text column (default: detected, see the profile)")
    init.add_argument("--label-column", help="the label column (default: detected, see the profile)")
    init.add_argument("--json", action="store_true", help="print the profile as JSON")
    init.add_argument("--response-column", help="declare a generation dataset: this column holds the responses")
    init.add_argument("--messages-column", help="declare a chat dataset: this column holds the conversations")
    init.add_argument(
        "--format",
        choices=CHAT_FORMATS,
        help="the instruction, chat or preference format (default: detected); documents: a pretraining dataset",
    )
    init.add_argument(
        "--base-model",
        help="a generation dataset's causal LM to fine-tune (a folder, GGUF file or hub id; default "
        "SmolLM2-135M-Instruct)",
    )

    demo = subcommand(commands, "demo", "generate the demo corpus and run the whole pipeline on it")
    demo.add_argument(*VERSION_FLAGS, dest="version", default=DEMO_VERSION, help="dataset version name")
    demo.add_argument("--rows", type=int, default=3000, help="tickets to generate")
    demo.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs")
    demo.add_argument(
        "--generation-rows",
        type=count,
        default=240,
        help="answered tickets of the generation demo (SmolLM2-135M fine-tuned with LoRA); 0: none",
    )
    demo.add_argument(
        "--preference-pairs",
        type=count,
        default=0,
        help="reply pairs of the preference demo (DPO on the generation demo's model); e.g. 96; 0: none",
    )
    demo.add_argument(
        "--pretraining-notes",
        type=count,
        default=0,
        help="service desk notes of the continued pre-training demo (SmolLM2-135M with LoRA); e.g. 120; 0: none",
    )

    ingest = subcommand(commands, "ingest", "register a file or folder as a new dataset version")
    ingest.add_argument("path", help="a data file or folder")
    ingest.add_argument(*VERSION_FLAGS, dest="version", help="version name (default: name + content hash)")
    ingest.add_argument("--text-column", help="source column holding the text (default: the dataset's, or text)")
    ingest.add_argument("--label-column", help="source column holding the label (default: the dataset's, or label)")
    ingest.add_argument("--id-column", help="source column holding a record id (default: none)")
    ingest.add_argument("--dataset", help="the declared dataset it belongs to (default: the home's only one)")

    run = subcommand(commands, "run", "materialize assets for one dataset version")
    run.add_argument(*VERSION_FLAGS, dest="version", help="dataset version (default: the newest, of --dataset)")
    run.add_argument("--dataset", help="with no version given: run this dataset's newest version")
    run.add_argument("--select", default="*", help="asset selection, as `dagster asset materialize --select`")
    run.add_argument("--config", help='run config as JSON, e.g. \'{"ops": {"fine_tuned_model": {...}}}\'')
    run.add_argument("--config-file", help="run config as a YAML file (merged under --config)")
    run.add_argument("--json", action="store_true", help="print the version's summary as JSON")

    status = subcommand(commands, "status", "dataset versions, their counts and the deployed model")
    status.add_argument("--dataset", help="only this dataset's versions (default: every dataset)")
    status.add_argument("--json", action="store_true", help="print JSON")


def add_model_commands(commands: argparse._SubParsersAction) -> None:
    """predict, generate, models, rollback, serve, ui."""
    predict = subcommand(commands, "predict", "label texts with the deployed model")
    predict.add_argument("texts", nargs="*", help="texts to label (or --file)")
    predict.add_argument("-f", "--file", help="texts from a CSV, JSONL or text file (one per line); - for stdin")
    predict.add_argument("--text-column", default="text", help="the text column of a CSV or JSONL --file")
    predict.add_argument("-o", "--output", help="write CSV or JSONL (by suffix) instead of printing")
    predict.add_argument("--json", action="store_true", help="print JSON lines")

    generate = subcommand(commands, "generate", "answer prompts with a generation dataset's deployed model")
    generate.add_argument("prompts", nargs="*", help="prompts to answer (or --file)")
    generate.add_argument("-f", "--file", help="prompts from a CSV, JSONL or text file (one per line); - for stdin")
    generate.add_argument("--text-column", default="prompt", help="the prompt column of a CSV or JSONL --file")
    generate.add_argument("-o", "--output", help="write JSON Lines instead of printing")
    generate.add_argument("--json", action="store_true", help="print JSON lines")
    generate.add_argument("--max-new-tokens", type=int, default=128, help="the longest answer, in tokens")
    generate.add_argument("--temperature", type=float, default=0.0, help="0: greedy (the same answer each time)")
    generate.add_argument("--batch-size", type=int, default=8, help="prompts answered together")

    models = subcommand(commands, "models", "every model with its aliases, lineage and test metrics")
    models.add_argument("--json", action="store_true", help="print JSON")
    explain = subcommand(commands, "explain", "the training examples nearest to a served prediction, with their source")
    explain.add_argument("prediction_id", help="the id the service answered with (its prediction log keeps it)")
    explain.add_argument("-k", type=int, default=5, help="how many training examples")
    explain.add_argument("--json", action="store_true", help="print JSON")
    rollback = subcommand(commands, "rollback", "move the production alias back to the previous model")
    add = subcommand(
        commands,
        "add-labels",
        "add labels from a few examples each to the production model (a "
        "prototype head), then evaluate and deploy the new version through the gate",
        "add_labels",
    )
    add.add_argument("examples", help='JSON lines, one {"text": ..., "label": ...} per example')
    add.add_argument("--no-deploy", action="store_true", help="only write the new model version")
    for command in (predict, generate, models, rollback, add):
        command.add_argument("--dataset", help="whose models (default: the home's only dataset with models)")

    for name, port in (("serve", 8080), ("ui", 3000)):
        text = "serve every dataset's deployed model over HTTP" if name == "serve" else "start the Dagster UI"
        sub = subcommand(commands, name, text)
        sub.add_argument("--host", default="127.0.0.1", help="interface to listen on")
        sub.add_argument("--port", type=int, default=port, help="port to listen on")
        if name == "serve":
            sub.add_argument("--no-quantize", action="store_true", help="serve float32 weights on CPU too")
            sub.add_argument("--insecure", action="store_true", help="serve a non-loopback host without a token")
        else:
            sub.add_argument(
                "--insecure", action="store_true", help="listen on a non-loopback host (the UI has no login)"
            )


def add_rules_and_lake_commands(commands: argparse._SubParsersAction) -> None:
    """`refinery rules check` and `refinery lake maintain`."""
    rules = commands.add_parser("rules", help="data rules")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    text = "compile every rules file, dataset and source; exit 1 on an error"
    check = subcommand(rules_commands, "check", text, "rules_check")
    check.add_argument("directory", nargs="?", help="rules folder (default: rules/ or REFINERY_RULES_DIR)")
    check.add_argument("--sources", help="sources folder (default: sources/ or REFINERY_SOURCES_DIR)")
    check.add_argument("--json", action="store_true", help="print JSON")

    review = commands.add_parser("review", help="suspected label errors, decided on by a person")
    review_commands = review.add_subparsers(dest="review_command", required=True)
    text = "write a version's suspected label errors as a CSV to decide on (keep, relabel, drop)"
    export = subcommand(review_commands, "export", text, "review_export")
    export.add_argument("--dataset", help="whose newest screened version (default: the home's only dataset)")
    export.add_argument("--dataset-version", help="the version to review (default: the dataset's newest screened)")
    export.add_argument("-o", "--output", default="suspects.csv", help="the CSV to write")
    text = "turn a decided CSV into a new dataset version that supersedes the reviewed one"
    imported = subcommand(review_commands, "import", text, "review_import")
    imported.add_argument("file", help="the CSV review export wrote, with decision and label filled in")
    imported.add_argument("--dataset-version", help="the new version's name (default: derived from its content)")

    lake = commands.add_parser("lake", help="the Delta tables of the home")
    lake_commands = lake.add_subparsers(dest="lake_command", required=True)
    text = "compact small files and vacuum unreferenced ones"
    maintain = subcommand(lake_commands, "maintain", text, "lake_maintain")
    maintain.add_argument("tables", nargs="*", help="table names (default: every table)")
    maintain.add_argument("--retention-hours", type=int, default=168, help="keep what the last N hours' versions read")


def program_version() -> str:
    """The installed distribution's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("refinery")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    args = build_parser().parse_args(argv)
    if args.home:  # what the command starts (dagster dev, a trainer) reads the same home
        os.environ["REFINERY_HOME"] = str(Path(args.home).expanduser().resolve())
    home = RefineryHome.from_env()
    module, function = args.handler.split(":")
    command = getattr(importlib.import_module(module), function)
    try:
        return command(args, home)
    except (CliError, ValueError, FileNotFoundError, LookupError) as error:
        print(f"refinery: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `refinery ... | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
        return 0


def known_datasets(home: RefineryHome) -> list[str]:
    """The datasets a home has: those declared, and those with models."""
    declared = {path.stem for path in home.datasets.glob("*.yaml")} if home.datasets.is_dir() else set()
    with_models = {path.name for path in home.models.iterdir() if path.is_dir()} if home.models.is_dir() else set()
    return sorted(declared | with_models)


def check_dataset(home: RefineryHome, name: str | None) -> str | None:
    """`name` when the home has that dataset (or None when none was named), else the error listing the known ones."""
    known = known_datasets(home)
    if name is not None and name not in known:
        raise unknown_dataset(name, known)
    return name


def unknown_dataset(name: str, known: list[str]) -> CliError:
    """The error for a dataset name the home does not have: the known ones, and the closest as a suggestion."""
    return CliError(
        f"no dataset {name!r} in this home (known: {', '.join(sorted(known)) or 'none'}){did_you_mean(name, known)}"
    )


def did_you_mean(name: str, known: list[str]) -> str:
    """ "; did you mean 'x'?" for the known name closest to a mistyped one, else nothing."""
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
