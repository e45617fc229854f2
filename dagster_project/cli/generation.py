"""`refinery generate`: answers from a generation dataset's deployed causal LM, printed or written as JSON Lines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from assets.storage.home import RefineryHome
from contracts.model_folder import GENERATOR
from dagster_project.cli import CliError
from dagster_project.cli.models import model_root_for, read_texts
from trainers.registry import resolve_alias

MAX_NEW_TOKENS = 512  # on the command line; the service allows less per request


def command_generate(args: argparse.Namespace, home: RefineryHome) -> int:
    from trainers.generative.generation import Generator, Limits  # torch: only this command pays for it
    from trainers.kinds import kind_of

    prompts = list(args.prompts) + (read_texts(args.file, args.text_column) if args.file else [])
    if not prompts:
        raise CliError('nothing to answer: give prompts ("..."), or --file PATH (- for stdin)')
    if not 1 <= args.max_new_tokens <= MAX_NEW_TOKENS:
        raise CliError(f"--max-new-tokens must be from 1 to {MAX_NEW_TOKENS}")
    try:
        folder = resolve_alias(model_root_for(home, args.dataset, GENERATOR))
        kind = kind_of(folder)
    except (LookupError, ValueError) as error:
        raise CliError(str(error)) from error
    if kind.family != GENERATOR:
        raise CliError(f"{folder.name} is a {kind.name} model: it labels texts; use refinery predict")
    generator = Generator(folder)
    limits = Limits(max_new_tokens=args.max_new_tokens, temperature=args.temperature)
    rows = []
    for start in range(0, len(prompts), args.batch_size):
        batch = prompts[start : start + args.batch_size]
        answers = generator.answer([[{"role": "user", "content": p}] for p in batch], limits)
        rows += [
            {"prompt": prompt, "answer": text, "tokens": tokens, "model_version": folder.name}
            for prompt, (text, tokens) in zip(batch, answers, strict=True)
        ]
    write_answers(rows, args)
    return 0


def write_answers(rows: list[dict], args: argparse.Namespace) -> None:
    """To `--output` as JSON Lines, as JSON lines on stdout, or as the answers alone."""
    if args.output:
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {len(rows)} answers of {rows[0]['model_version']} to {args.output}")
    elif args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        for row in rows:
            print(row["answer"] if len(rows) == 1 else f"{row['prompt']}\n-> {row['answer']}\n")
