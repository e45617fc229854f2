"""Commands that register data and run the pipeline: ingest, run, status, demo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import dagster as dg

from assets.datasets.resolve import declaration_for
from assets.partitions import DATASET_VERSIONS
from assets.storage.home import RefineryHome
from assets.storage.version_manifest import dataset_name_of
from dagster_project.cli import CliError, did_you_mean
from dagster_project.cli.common import open_instance, registered_versions
from dagster_project.cli.summary import render_summary, version_summary
from dagster_project.jobs import CLASSIFIER_ONLY, ON_DEMAND, PIPELINE_JOB
from rules.overrides import overlay_documents
from rules.yaml_reader import load_control_file


def run_version(home: RefineryHome, version: str, select: str = "*", run_config: dict | None = None) -> bool:
    """Materialize `select` for one version in-process against the persistent instance."""
    instance = open_instance(home)
    if not instance.has_dynamic_partition(DATASET_VERSIONS, version):
        raise CliError(
            f"unknown dataset version {version!r}; register it with: refinery ingest PATH --dataset-version {version}"
        )
    from dagster_project.definitions import build_definitions  # the asset graph loads torch: only once a run starts

    defs = build_definitions(home)
    selection = dg.AssetSelection.from_coercible(select.split(","))
    try:
        keys = selection.resolve(defs.resolve_asset_graph())
    except Exception as error:  # Dagster raises several types for a bad selection
        raise CliError(f"bad --select {select!r}: {error}") from error
    named = set(select.replace("*", "").replace("+", "").split(","))
    skipped = set(ON_DEMAND)
    if declaration_for(home.datasets, dataset_name_of(home.landing / version)).generative:
        skipped |= set(CLASSIFIER_ONLY)  # a causal LM labels nothing: its answers are batch_generations
    keys = {key for key in keys if key.to_user_string() not in skipped or key.to_user_string() in named}
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}, **(run_config or {})}
    check_run_config(run_config, defs)
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
    for message in failed_check_messages(result.all_events):
        print(message, file=sys.stderr)
    skipped = [e.step_key for e in result.all_events if e.is_step_skipped]
    if skipped:
        print(f"skipped (blocked by a failed check upstream): {', '.join(skipped)}", file=sys.stderr)
    return result.success and not skipped


def failed_check_messages(events: list[dg.DagsterEvent]) -> list[str]:
    """What each failed blocking (error) check says, with its detail."""
    messages = []
    for event in events:
        if event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        evaluation = event.event_specific_data
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        detail = evaluation.metadata.get("detail")
        simple = {k: v.value for k, v in evaluation.metadata.items() if isinstance(v.value, int | float | str)}
        text = str(detail.value) if detail is not None else ", ".join(f"{k} {v}" for k, v in simple.items())
        messages.append(f"{evaluation.check_name} of {evaluation.asset_key.to_user_string()} failed: {text}")
    return messages


DAGSTER_SECTIONS = ("ops", "resources", "loggers", "execution")


def dagster_run_config(config: dict) -> dict:
    """A run config as Dagster takes it: a file's flat asset sections (`fine_tuned_model: {max_epochs: 2}`) go
    under `ops`, beside any section already written Dagster's way."""
    if not isinstance(config, dict):
        raise CliError(f"a run config is a mapping of asset names to their settings, got {config!r}")
    flat = {name: settings for name, settings in config.items() if name not in DAGSTER_SECTIONS}
    nested = {name: section for name, section in config.items() if name in DAGSTER_SECTIONS}
    if not flat:
        return config
    return overlay_documents(nested, {"ops": {name: {"config": settings} for name, settings in flat.items()}})


def check_run_config(run_config: dict, defs: dg.Definitions) -> None:
    """Refuse an asset or a setting the graph does not have, by name and with the closest valid one, before the
    run starts (Dagster's own error is a traceback)."""
    graph = defs.resolve_asset_graph()
    assets = sorted(key.to_user_string() for key in graph.get_all_asset_keys())
    for name, section in (run_config.get("ops") or {}).items():
        if name not in assets:
            raise CliError(f"run config: no asset {name!r}{did_you_mean(name, assets)}")
        schema = defs.resolve_assets_def(name).op.config_schema
        known = sorted(getattr(schema.config_type, "fields", None) or {}) if schema is not None else []
        if not isinstance(section or {}, dict):
            raise CliError(f"run config: {name}'s section must be a mapping, got {section!r}")
        settings = (section or {}).get("config") or {}
        if not isinstance(settings, dict):
            raise CliError(f"run config: {name}'s settings must be a mapping, got {settings!r}")
        for key in settings:
            if key not in known:
                listed = ", ".join(known) or "none"
                raise CliError(
                    f"run config: {name} has no setting {key!r}{did_you_mean(key, known)} (its settings: {listed})"
                )


def run_config_of(args: argparse.Namespace) -> dict:
    """`--config-file` (YAML) with `--config` (JSON) merged over it, and the console log level."""
    config: dict = {}
    if args.config_file:
        loaded = load_control_file(Path(args.config_file), CliError)
        if not isinstance(loaded, dict):
            raise CliError(f"{args.config_file}: expected a mapping of run config")
        config = dagster_run_config(loaded)
    if args.config:
        try:
            config = overlay_documents(config, dagster_run_config(json.loads(args.config)))
        except json.JSONDecodeError as error:
            raise CliError(f"--config is not valid JSON: {error}") from error
    return {"loggers": {"console": {"config": {"log_level": args.log_level}}}, **config}


def command_run(args: argparse.Namespace, home: RefineryHome) -> int:
    version = args.version or newest_version(home, args.dataset)
    ok = run_version(home, version, args.select, run_config_of(args))
    summary = version_summary(home, version)
    print(json.dumps({**summary, "succeeded": ok}, indent=2) if args.json else render_summary(summary, home))
    if not ok:
        dataset = dataset_name_of(home.landing / version)
        raise CliError(
            f"run for version {version} did not complete; see the messages above or the UI. To change the label "
            f"sets or rules, edit {home.datasets / f'{dataset}.yaml'} (refinery init writes one), then run again"
        )
    return 0


def newest_version(home: RefineryHome, dataset: str | None = None) -> str:
    """The most recently registered version (of `dataset` when given)."""
    versions = registered_versions(home, dataset)
    if not versions:
        raise CliError(f"no dataset versions{f' of {dataset!r}' if dataset else ''} yet; try: refinery init PATH")
    return versions[-1]


def summarize_version(home: RefineryHome, version: str) -> str:
    """Records read, kept, quarantined by reason, model metrics and deployment of one version, as text."""
    return render_summary(version_summary(home, version), home)
