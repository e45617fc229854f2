"""The `refinery` command: register data, run the pipeline, inspect it, predict and serve."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from assets.storage.home import RefineryHome

DEMO_VERSION = "demo-v1"


class CliError(Exception):
    """An error shown to the user as one line."""


def _instance(home: RefineryHome):
    import dagster as dg

    home.ensure()
    os.environ["DAGSTER_HOME"] = str(home.dagster)
    return dg.DagsterInstance.get()


def _mapping(args: argparse.Namespace):
    from assets.readers.drop import SourceConfig

    given = {k: getattr(args, k) for k in ("text_column", "label_column", "id_column") if getattr(args, k)}
    return SourceConfig(**given) if given else None


def command_ingest(args: argparse.Namespace, home: RefineryHome) -> int:
    from dagster_project.versions import register_drop

    version = register_drop(_instance(home), home, Path(args.path), args.version, _mapping(args))
    print(f"registered dataset version {version} (landing/{version}); run it with: refinery run --version {version}")
    return 0


def run_version(home: RefineryHome, version: str, select: str = "*", run_config: dict | None = None) -> bool:
    """Materialize `select` for one version in-process against the persistent instance."""
    import dagster as dg

    from dagster_project.definitions import build_definitions
    from dagster_project.jobs import PIPELINE_JOB
    from assets.partitions import DATASET_VERSIONS

    instance = _instance(home)
    if not instance.has_dynamic_partition(DATASET_VERSIONS, version):
        raise CliError(
            f"unknown dataset version {version!r}; register it with: refinery ingest PATH --version {version}"
        )
    defs = build_definitions(home)
    selection = dg.AssetSelection.from_coercible(select.split(","))
    try:
        keys = selection.resolve(defs.resolve_asset_graph())
    except Exception as error:  # Dagster raises several types for a bad selection
        raise CliError(f"bad --select {select!r}: {error}") from error
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}, **(run_config or {})}
    result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(
        partition_key=version,
        instance=instance,
        asset_selection=list(keys),
        run_config=run_config,
        raise_on_error=False,
    )
    for event in result.all_events:
        if event.is_step_failure:
            print(f"step {event.step_key} failed: {event.event_specific_data.error.message.strip()}", file=sys.stderr)
    skipped = [e.step_key for e in result.all_events if e.is_step_skipped]
    if skipped:
        print(f"skipped (blocked by a failed check upstream): {', '.join(skipped)}", file=sys.stderr)
    return result.success and not skipped


def command_run(args: argparse.Namespace, home: RefineryHome) -> int:
    run_config = json.loads(args.config) if args.config else None
    ok = run_version(home, args.version, args.select, run_config)
    print(summarize_version(home, args.version))
    if not ok:
        raise CliError(f"run for version {args.version} did not complete; see the messages above or the UI")
    return 0


def summarize_version(home: RefineryHome, version: str) -> str:
    """Records read, kept, quarantined by reason, model metrics and deployment of one version."""
    from assets.storage.catalog import catalog_entry
    from dagster_project.definitions import build_resources
    from trainers.registry import read_card

    resources = build_resources(home)
    lake, registry = resources["lake"], resources["registry"]
    lines = [f"dataset version {version}"]
    entry = catalog_entry(lake, version) or {}
    for label, key in (("records read", "records_read"), ("training examples", "rows_kept"),
                       ("quarantined", "quarantined_total")):  # fmt: skip
        if entry.get(key) is not None:
            lines.append(f"  {label:<19} {entry[key]}")
    if entry.get("files"):
        for item in json.loads(entry["files"]):
            counts = f"{item['records']} records, {item['rejected']} rejected"
            lines.append(f"    file  {item['file']}  {counts}  sha256 {item['sha256'][:12]}")
    if lake.exists("quarantine"):
        quarantine = lake.scan("quarantine", [version]).group_by("stage", "rule").len().sort("len", descending=True)
        for row in quarantine.collect().iter_rows(named=True):
            lines.append(f"    quarantined  {row['stage']:<9} {row['rule']:<22} {row['len']}")
    folder = registry.version_folder(version)
    if (folder / "model_card.json").is_file():
        card = read_card(folder)
        metrics = card.get("test_evaluation", {}).get("metrics") or {}
        names = ("accuracy", "macro_precision", "macro_recall", "macro_f1")
        shown = ", ".join(f"{k} {metrics[k]:.3f}" for k in names if k in metrics)
        lines.append(f"  model               {folder}")
        lines.append(f"  test metrics        {shown or 'not evaluated yet'}")
    aliases = registry.aliases()
    if aliases.get("production"):
        lines.append(f"  deployed model      {registry.version_folder(aliases['production'])} (production)")
    lines.append(f"  open the UI         REFINERY_HOME={home.root} make ui   ->  http://127.0.0.1:3000")
    return "\n".join(lines)


def command_status(args: argparse.Namespace, home: RefineryHome) -> int:
    from assets.partitions import DATASET_VERSIONS

    versions = _instance(home).get_dynamic_partitions(DATASET_VERSIONS)
    if not versions:
        print(f"no dataset versions yet in {home.root}; try: refinery demo")
        return 0
    for version in versions:
        print(summarize_version(home, version))
    return 0


def command_demo(args: argparse.Namespace, home: RefineryHome) -> int:
    import tempfile

    from assets.demo.tickets import write_demo_drop
    from assets.partitions import DATASET_VERSIONS
    from dagster_project.versions import register_drop

    instance = _instance(home)
    if not instance.has_dynamic_partition(DATASET_VERSIONS, args.version):
        with tempfile.TemporaryDirectory() as scratch:
            defects = write_demo_drop(Path(scratch) / "tickets", rows=args.rows)
            register_drop(instance, home, Path(scratch) / "tickets", args.version)
        print(f"generated the demo corpus ({args.rows} tickets, planted defects: {defects}) as version {args.version}")
    run_config = {"ops": {"fine_tuned_model": {"config": {"max_epochs": args.epochs}}}}
    ok = run_version(home, args.version, "*", run_config)
    print(summarize_version(home, args.version))
    if not ok:
        raise CliError("the demo run did not complete; see the messages above")
    print('\ntry: refinery predict "my vpn keeps dropping"   or   make serve')
    return 0


def command_predict(args: argparse.Namespace, home: RefineryHome) -> int:
    from assets.resources import ModelRegistryResource
    from trainers.export import Classifier
    from trainers.registry import resolve_alias

    model_root = ModelRegistryResource(root=str(home.models)).model_root
    try:
        folder = resolve_alias(model_root)
    except LookupError as error:
        raise CliError(str(error)) from error
    for text, prediction in zip(args.texts, Classifier(folder).predict(args.texts), strict=True):
        print(f"{prediction.label}\t{prediction.score:.4f}\t{text}")
    return 0


def command_serve(args: argparse.Namespace, home: RefineryHome) -> int:
    from assets.resources import ModelRegistryResource
    from trainers.registry import resolve_alias
    from trainers.serving.app import TOKEN_VARIABLE
    from trainers.serving.server import serve

    model_root = ModelRegistryResource(root=str(home.models)).model_root
    try:
        resolve_alias(model_root)
    except (LookupError, FileNotFoundError) as error:
        raise CliError(f"nothing to serve: {error}") from error
    auth = f"bearer token from {TOKEN_VARIABLE}" if os.environ.get(TOKEN_VARIABLE) else "no auth"
    print(f"serving {model_root} on http://{args.host}:{args.port} ({auth}): POST /predict, POST /feedback, "
          "GET /health, GET /metrics", flush=True)  # fmt: skip
    serve(model_root, home.lake, args.host, args.port, quantize=False if args.no_quantize else None)
    return 0


def command_models(args: argparse.Namespace, home: RefineryHome) -> int:
    from assets.resources import ModelRegistryResource
    from trainers.registry import list_models

    rows = list_models(ModelRegistryResource(root=str(home.models)).model_root)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no models yet; run the pipeline first (refinery demo)")
        return 0
    print(f"{'version':<20} {'aliases':<20} {'accuracy':>8} {'macro_f1':>8} {'gate':<7} {'created':<20} data")
    for row in rows:
        accuracy = f"{row['accuracy']:.4f}" if row["accuracy"] is not None else "-"
        macro_f1 = f"{row['macro_f1']:.4f}" if row["macro_f1"] is not None else "-"
        print(f"{row['version']:<20} {','.join(row['aliases']) or '-':<20} {accuracy:>8} {macro_f1:>8} "
              f"{row['gate'] or '-':<7} {row['created_at']:<20} {','.join(row['dataset_versions'])} "
              f"(rules {str(row['rules_hash'])[:12]})")  # fmt: skip
    return 0


def command_rollback(args: argparse.Namespace, home: RefineryHome) -> int:
    from assets.resources import ModelRegistryResource
    from trainers.registry import rollback

    aliases = rollback(ModelRegistryResource(root=str(home.models)).model_root)
    print(f"production is {aliases['production']} again (previous: {aliases['previous']}); "
          "a running `refinery serve` swaps to it within a second")  # fmt: skip
    return 0


def command_ui(args: argparse.Namespace, home: RefineryHome) -> int:
    from assets.resources import PROJECT_ROOT

    _instance(home)
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    command = [dagster, "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port)]
    environment = {**os.environ, "DAGSTER_HOME": str(home.dagster), "REFINERY_HOME": str(home.root)}
    print(f"Dagster UI on http://{args.host}:{args.port}  (DAGSTER_HOME={home.dagster})", flush=True)
    return subprocess.call(command, env=environment, cwd=PROJECT_ROOT)


def command_rules_check(args: argparse.Namespace, home: RefineryHome) -> int:
    from assets.readers.declared import load_sources
    from rules import load_rule_book
    from rules.compiler import default_rules_dir

    directory = Path(args.directory) if args.directory else default_rules_dir()
    book = load_rule_book(directory)
    for name, rule_set in sorted(book.rule_sets.items()):
        row_rules = sorted({r.name for r in rule_set.row_rules.values() if r.order >= 0})
        print(f"{rule_set.path.name}: {name}: {len(row_rules)} row rules, {len(rule_set.dataset_rules)} dataset rules")
    sources = load_sources(Path(args.sources)) if args.sources else load_sources()
    print(f"rules hash {book.digest}; {len(sources)} declared sources valid")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refinery", description="Validated training data and fine-tuned models.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="generate the demo corpus and run the whole pipeline on it")
    demo.add_argument("--version", default=DEMO_VERSION)
    demo.add_argument("--rows", type=int, default=3000)
    demo.add_argument("--epochs", type=int, default=3)
    demo.set_defaults(handler=command_demo)

    ingest = commands.add_parser("ingest", help="register a file or folder as a new dataset version")
    ingest.add_argument("path")
    ingest.add_argument("--version", help="version name (default: name + content hash)")
    ingest.add_argument("--text-column")
    ingest.add_argument("--label-column")
    ingest.add_argument("--id-column")
    ingest.set_defaults(handler=command_ingest)

    run = commands.add_parser("run", help="materialize assets for one dataset version")
    run.add_argument("--version", required=True)
    run.add_argument("--select", default="*", help="asset selection, as `dagster asset materialize --select`")
    run.add_argument("--config", help='run config as JSON, e.g. \'{"ops": {"fine_tuned_model": {...}}}\'')
    run.set_defaults(handler=command_run)

    status = commands.add_parser("status", help="dataset versions, their counts and the deployed model")
    status.set_defaults(handler=command_status)

    predict = commands.add_parser("predict", help="label texts with the deployed model")
    predict.add_argument("texts", nargs="+")
    predict.set_defaults(handler=command_predict)

    models = commands.add_parser("models", help="every model with its aliases, lineage and test metrics")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(handler=command_models)

    rollback = commands.add_parser("rollback", help="move the production alias back to the previous model")
    rollback.set_defaults(handler=command_rollback)

    rules = commands.add_parser("rules", help="data rules")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_commands.add_parser("check", help="compile every rules file and declared source; exit 1 on an error")
    check.add_argument("directory", nargs="?", help="rules folder (default: rules/ or REFINERY_RULES_DIR)")
    check.add_argument("--sources", help="sources folder (default: sources/ or REFINERY_SOURCES_DIR)")
    check.set_defaults(handler=command_rules_check)

    for name, port, handler in (("serve", 8080, command_serve), ("ui", 3000, command_ui)):
        sub = commands.add_parser(
            name, help="serve the deployed model over HTTP" if name == "serve" else "start the Dagster UI"
        )
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--port", type=int, default=port)
        if name == "serve":
            sub.add_argument("--no-quantize", action="store_true", help="serve float32 weights on CPU too")
        sub.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    home = RefineryHome.from_env()
    try:
        return args.handler(args, home)
    except CliError as error:
        print(f"refinery: error: {error}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, LookupError) as error:
        print(f"refinery: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
