"""`refinery demo`: the demo tickets through the whole pipeline to a deployed classifier; then, each optional, the
answered tickets (SFT of the shipped SmolLM2), reply pairs (DPO on the SFT model) and the desk's notes (continued
pre-training), each declared and run as any dataset is."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from assets.demo.answers import ANSWERS_DATASET, write_answers_declaration, write_answers_drop
from assets.demo.documents import NOTES_DATASET, write_notes_declaration, write_notes_drop
from assets.demo.preferences import TONE_DATASET, write_pairs_declaration, write_pairs_drop
from assets.demo.tickets import DEMO_DATASET, write_demo_declaration, write_demo_drop
from assets.storage.home import RefineryHome
from contracts.datasets import DATASET_VERSIONS
from dagster_project.cli import CliError
from dagster_project.cli.common import open_instance
from dagster_project.cli.pipeline import run_version, summarize_version
from dagster_project.versions import register_drop
from trainers.registry import PRODUCTION, ModelRegistry, registry_name

SERVE_HINT = "after   make serve"


@dataclass(frozen=True)
class DemoDataset:
    """One optional demo dataset: its name, how it is declared and generated, and what to try afterwards."""

    name: str
    what: str  # as the line announcing the generated version says it
    declare: Callable[[Path], Path]
    write_drop: Callable[[Path, int], object]
    hints: tuple[str, ...] = ()


def run_demo_dataset(home: RefineryHome, demo: DemoDataset, rows: int, *, log_level: str) -> None:
    """Declare and generate the demo dataset's first version (once), run it through the pipeline, summarize it."""
    instance, version = open_instance(home), f"{demo.name}-demo-v1"
    if not instance.has_dynamic_partition(DATASET_VERSIONS, version):
        demo.declare(home.datasets)
        with tempfile.TemporaryDirectory() as scratch:
            defects = demo.write_drop(Path(scratch) / demo.name, rows)
            register_drop(instance, home, Path(scratch) / demo.name, version, dataset=demo.name)
        print(f"\ngenerated the demo's {demo.what} ({rows}, planted defects: {defects}) as version {version}")
    ok = run_version(home, version, "*", {"loggers": {"console": {"config": {"log_level": log_level}}}})
    print(summarize_version(home, version))
    if not ok:
        raise CliError(f"the {demo.name} demo did not complete; see the messages above")
    for hint in demo.hints:
        print(hint)


def has_production(home: RefineryHome, dataset: str) -> bool:
    """Whether the dataset has a deployed model in this home."""
    return PRODUCTION in ModelRegistry(str(home.models), registry_name(dataset)).aliases()


def optional_demos(home: RefineryHome) -> dict[str, DemoDataset]:
    """The optional demo datasets by their command-line option; DPO starts from the SFT demo's model if deployed."""
    tuned = f"{ANSWERS_DATASET}@production" if has_production(home, ANSWERS_DATASET) else None
    generate = f'\ntry: refinery generate --dataset {{name}} "my vpn drops"   (or /generate/{{name}} {SERVE_HINT})'
    return {
        "generation_rows": DemoDataset(
            ANSWERS_DATASET,
            "answered tickets",
            write_answers_declaration,
            write_answers_drop,
            (generate.format(name=ANSWERS_DATASET),),
        ),
        "preference_pairs": DemoDataset(
            TONE_DATASET,
            "reply pairs (the house style chosen over a curt reply)",
            partial(write_pairs_declaration, base_model=tuned),
            write_pairs_drop,
            (generate.format(name=TONE_DATASET),),
        ),
        "pretraining_notes": DemoDataset(
            NOTES_DATASET, "service desk notes", write_notes_declaration, write_notes_drop
        ),
    }


def command_demo(args: argparse.Namespace, home: RefineryHome) -> int:
    """The classifier demo, then each optional demo asked for, in order."""
    instance = open_instance(home)
    if not instance.has_dynamic_partition(DATASET_VERSIONS, args.version):
        write_demo_declaration(home.datasets)
        with tempfile.TemporaryDirectory() as scratch:
            defects = write_demo_drop(Path(scratch) / "tickets", rows=args.rows)
            register_drop(instance, home, Path(scratch) / "tickets", args.version, dataset=DEMO_DATASET.name)
        print(f"generated the demo corpus ({args.rows} tickets, planted defects: {defects}) as version {args.version}")
    run_config = {
        "ops": {"fine_tuned_model": {"config": {"max_epochs": args.epochs}}},
        "loggers": {"console": {"config": {"log_level": args.log_level}}},
    }
    ok = run_version(home, args.version, "*", run_config)
    print(summarize_version(home, args.version))
    if not ok:
        raise CliError("the demo run did not complete; see the messages above")
    for option in ("generation_rows", "preference_pairs", "pretraining_notes"):  # in order: DPO tunes the SFT model
        if getattr(args, option):
            run_demo_dataset(home, optional_demos(home)[option], getattr(args, option), log_level=args.log_level)
    print('\ntry: refinery predict --dataset tickets "my vpn keeps dropping"   or   make serve')
    return 0
