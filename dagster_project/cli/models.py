"""Commands on models: predict, serve, models, rollback."""

from __future__ import annotations

import argparse
import json
import os

from assets.storage.home import RefineryHome
from dagster_project.cli import CliError
from trainers.registry import ModelRegistry, alias_history, list_models, resolve_alias, rollback
from trainers.serving.access import TOKEN_VARIABLE, InsecureHostError, check_host


def command_predict(args: argparse.Namespace, home: RefineryHome) -> int:
    from trainers.inference import Classifier  # torch: only this command pays for it

    model_root = ModelRegistry(str(home.models)).model_root
    try:
        folder = resolve_alias(model_root)
    except LookupError as error:
        raise CliError(str(error)) from error
    for prediction in Classifier(folder).predict(args.texts):  # one line each: the text as the model saw it
        if prediction.refused is not None:
            print(f"refused\t-\t{prediction.text}\t({prediction.refused})")
        else:
            print(f"{prediction.label}\t{prediction.score:.4f}\t{prediction.text}")
    return 0


def command_serve(args: argparse.Namespace, home: RefineryHome) -> int:
    from trainers.serving.server import serve  # FastAPI and torch: only this command pays for them

    try:
        check_host(args.host, args.insecure)
    except InsecureHostError as error:
        raise CliError(str(error)) from error
    model_root = ModelRegistry(str(home.models)).model_root
    try:
        resolve_alias(model_root)
    except (LookupError, FileNotFoundError) as error:
        raise CliError(f"nothing to serve: {error}") from error
    auth = f"bearer token from {TOKEN_VARIABLE}" if os.environ.get(TOKEN_VARIABLE) else "no auth"
    print(f"serving {model_root} on http://{args.host}:{args.port} ({auth}): POST /predict, POST /feedback, "
          "GET /health, GET /metrics", flush=True)  # fmt: skip
    quantize = False if args.no_quantize else None
    serve(model_root, home.lake, args.host, args.port, quantize=quantize, insecure=args.insecure)
    return 0


def command_models(args: argparse.Namespace, home: RefineryHome) -> int:
    model_root = ModelRegistry(str(home.models)).model_root
    rows, history = list_models(model_root), alias_history(model_root)
    if args.json:
        print(json.dumps({"models": rows, "alias_history": history}, indent=2))
        return 0
    if not rows:
        print("no models yet; run the pipeline first (refinery demo)")
        return 0
    width = max(len(str(row["version"])) for row in rows) + 1
    print(f"{'version':<{width}} {'aliases':<20} {'accuracy':>8} {'macro_f1':>8} {'gate':<7} {'created':<20} data")
    for row in rows:
        accuracy = f"{row['accuracy']:.4f}" if row["accuracy"] is not None else "-"
        macro_f1 = f"{row['macro_f1']:.4f}" if row["macro_f1"] is not None else "-"
        print(f"{row['version']:<{width}} {','.join(row['aliases']) or '-':<20} {accuracy:>8} {macro_f1:>8} "
              f"{row['gate'] or '-':<7} {row['created_at']:<20} {','.join(row['dataset_versions'])} "
              f"(rules {str(row['rules_hash'])[:12]})")  # fmt: skip
    if history:
        print("\nalias moves, newest last:")
        for move in history[-20:]:
            print(f"  {move['at']}  {move['reason']:<40} production {move['after'].get('production', '-')}")
    return 0


def command_rollback(args: argparse.Namespace, home: RefineryHome) -> int:
    aliases = rollback(ModelRegistry(str(home.models)).model_root)
    print(f"production is {aliases['production']} again (previous: {aliases['previous']}); "
          "a running `refinery serve` swaps to it within a second")  # fmt: skip
    return 0
