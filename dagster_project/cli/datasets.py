"""`refinery init`: profile a user's file, declare it as a dataset with fitted rules, and register it."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from assets.datasets.chat_formats import ChatFormatError, chosen_chat_format
from assets.datasets.declaration import dataset_file, declaration_yaml
from assets.datasets.generation_profile import generation_declaration, generation_profile
from assets.datasets.profile import DatasetProfile, fitted_declaration, profile_frame, read_sample
from assets.datasets.training_settings import commented_training
from assets.storage.home import RefineryHome
from contracts.model_folder import DEFAULT_BASE_MODEL
from dagster_project.cli import CliError
from dagster_project.cli.common import open_instance
from dagster_project.versions import register_drop


def dataset_name_for(path: Path) -> str:
    """A dataset name from a file or folder name: `Support Tickets.csv` -> `support-tickets`."""
    stem = path.name.split(".")[0].lower()
    name = re.sub(r"[^a-z0-9_-]+", "-", stem).strip("-_")[:32] or "dataset"
    return name if name[0].isalpha() else f"d-{name}"[:32]


def profile_lines(profile: DatasetProfile) -> list[str]:
    """The profile as a person reads it."""
    lines = [f"profiled {profile.rows} records"]
    for column in profile.columns:
        lines.append(
            f"  column {column.name:<24} {column.dtype:<8} {column.non_null} filled, "
            f"{column.distinct} distinct, mean length {column.mean_length:g}"
        )
    lines.append(f"text column:    {profile.text_column} ({profile.text_reason})")
    for index, (name, reason) in enumerate(profile.label_reasons.items()):
        role = "label column:" if index == 0 else "also label-like:"
        lines.append(f"{role:<16}{name} ({reason})")
    for name, counts in profile.label_counts.items():
        shown = ", ".join(f"{label} {count}" for label, count in list(counts.items())[:12])
        more = f" ... ({len(counts)} labels)" if len(counts) > 12 else f" ({len(counts)} labels)"
        lines.append(f"  labels of {name}: {shown}{more}")
    q = profile.text_length_quantiles
    lines.append(f"text length:   min {q['p0']}, p1 {q['p1']}, median {q['p50']}, p99 {q['p99']}, max {q['p100']}")
    lines.append(f"languages:     {', '.join(f'{k} {v}' for k, v in profile.languages.items())} (of a sample)")
    lines.append(f"duplicates:    {profile.duplicate_rate:.1%} of texts repeat another")
    pii = ", ".join(f"{kind} {count}" for kind, count in profile.pii_counts.items()) or "none found"
    lines.append(f"PII:           {pii}")
    return lines


def generation_lines(found: dict) -> list[str]:
    """An instruction, chat or preference sample's profile as `refinery init` prints it."""
    lengths = found["lengths"]
    lines = [f"format:        {found['format']} ({found['found']}); {found['rows']} records sampled"]
    if found["malformed"]:
        lines.append(f"malformed:     {found['malformed']} records (quarantined with their reason when ingested)")
    for side, q in lengths.items():
        lines.append(f"{side + ' length:':<17}median {q['p50']}, p95 {q['p95']}, max {q['p100']} characters")
    lines.append(f"languages:     {', '.join(f'{k} {v}' for k, v in found['languages'].items())} (of a sample)")
    pii = {side: ", ".join(f"{k} {v}" for k, v in counts.items()) or "none" for side, counts in found["pii"].items()}
    lines.append(f"PII:           {'; '.join(f'{side} {found}' for side, found in pii.items())}")
    return lines


def command_init(args: argparse.Namespace, home: RefineryHome) -> int:
    source = Path(args.path)
    if not source.exists():
        raise CliError(f"{source}: no such file or folder")
    name = args.name or dataset_name_for(source)
    path = dataset_file(home.datasets, name)
    if path.exists():
        raise CliError(
            f"{path}: dataset {name!r} is already declared; add versions with: refinery ingest PATH --dataset {name}"
        )
    sample = read_sample(source)
    try:
        chat = chosen_chat_format(
            sample,
            response_column=args.response_column,
            text_column=args.text_column,
            label_column=args.label_column,
            requested=args.format,
            messages_column=args.messages_column,
        )
    except ChatFormatError as error:
        raise CliError(f"{source}: {error}") from error
    if chat is not None:  # prompts and responses: a causal LM learns to answer
        found = generation_profile(sample, chat)
        print(json.dumps(found, indent=2) if args.json else "\n".join(generation_lines(found)))
        declaration = generation_declaration(name, found, chat.mapping, args.base_model)
        if not args.base_model:
            print(f"base model: {DEFAULT_BASE_MODEL} (set training: model_name_or_path in {path} to change it)")
    else:
        profile = profile_frame(sample, args.text_column, args.label_column)
        print(json.dumps(profile.to_dict(), indent=2) if args.json else "\n".join(profile_lines(profile)))
        declaration = fitted_declaration(name, profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Dataset {name}, declared by `refinery init {source}`. Edit freely.\n"
    training = commented_training(declaration.primary.kind, declaration.training)
    path.write_text(declaration_yaml(declaration, header) + training)
    try:
        version = register_drop(open_instance(home), home, source, None, declaration.mapping, name)
    except BaseException:
        path.unlink()  # nothing half-declared: the declaration goes with a failed registration
        raise
    print(f"declared dataset {name} in {path}")
    print(f"registered version {version}; next: refinery run   (or refinery run --dataset-version {version})")
    return 0
