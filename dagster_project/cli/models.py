"""Commands on models: predict, serve, models, rollback."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from assets.storage.home import RefineryHome
from contracts.model_folder import CLASSIFIER
from dagster_project.cli import CliError, check_dataset
from service.access import TOKEN_VARIABLE, InsecureHostError, check_host
from trainers.model_store import ModelStore, StoreMirror, mirror_store
from trainers.registry import (
    ModelRegistry,
    alias_history,
    list_models,
    new_model_version,
    read_card,
    registries,
    registry_name,
    resolve_alias,
    rollback,
)


def model_root_for(home: RefineryHome, dataset: str | None, family: str | None = None) -> Path:
    """The registry of `dataset`'s models; unnamed, of the home's only dataset with a deployed model (of `family`,
    classifier or generator, when the command serves one)."""
    if check_dataset(home, dataset) is not None:
        return ModelRegistry(str(home.models), registry_name(dataset)).model_root
    every = registries(home.models)
    found = every
    if family is not None and len(every) > 1:
        found = {name: root for name, root in every.items() if family_of(root) == family}
    if len(found) > 1:
        of_family = f"{family}s" if family else "models"
        raise CliError(f"{of_family} of several datasets ({', '.join(found)}); name one with --dataset")
    if not found and every:
        raise CliError(f"no dataset here has a deployed {family} (datasets with models: {', '.join(every)})")
    return next(iter(found.values()), ModelRegistry(str(home.models)).model_root)


def family_of(model_root: Path) -> str | None:
    """What a registry's production model does (classifier or generator), or None when it cannot be read."""
    from trainers.kinds import kind_of

    try:
        return kind_of(resolve_alias(model_root)).family
    except (LookupError, ValueError, OSError):
        return None


def read_texts(source: str, column: str) -> list[str]:
    """Texts from a CSV or JSONL file (their `column`), or a text file (one per line); `-` reads stdin."""
    import csv
    import io
    import sys

    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    suffix = "" if source == "-" else Path(source).suffix.lower()
    if suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        if rows and column not in rows[0]:
            raise CliError(f"{source}: no column {column!r} (columns: {', '.join(rows[0])}); use --text-column")
        return [row[column] for row in rows]
    if suffix in (".jsonl", ".ndjson"):
        texts = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                record = json.loads(line)
                if not isinstance(record, dict) or not isinstance(record.get(column), str):
                    raise CliError(f"{source}: line {number}: expected an object with a string {column!r}")
                texts.append(record[column])
        return texts
    return [line for line in text.splitlines() if line.strip()]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell starting so as a formula


def spreadsheet_safe(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, quoted with a leading apostrophe (OWASP's advice)."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def write_predictions(rows: list[dict], output: str) -> None:
    """Predictions as CSV or JSONL, by the output file's suffix."""
    import csv

    path = Path(output)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
        return
    with path.open("w", newline="", encoding="utf-8") as handle:
        fields = list(dict.fromkeys(key for row in rows for key in row))  # a multi-task model adds <task>_label
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows({key: spreadsheet_safe(value) for key, value in row.items()} for row in rows)


def command_predict(args: argparse.Namespace, home: RefineryHome) -> int:
    from trainers.kinds import load_classifier  # torch: only this command pays for it

    texts = list(args.texts) + (read_texts(args.file, args.text_column) if args.file else [])
    if not texts:
        raise CliError("nothing to predict: give texts, or --file PATH (- for stdin)")
    model_root = model_root_for(home, args.dataset, CLASSIFIER)
    try:
        folder = resolve_alias(model_root)
    except LookupError as error:
        raise CliError(str(error)) from error
    try:
        classifier = load_classifier(folder)
    except ValueError as error:  # a generator's folder, or a kind this version does not know
        raise CliError(f'{error}; answer prompts with: refinery generate --dataset ... "prompt"') from error
    predictions = classifier.predict(texts)
    rows = [
        {
            "text": text,
            "label": p.label,
            "score": None if p.score is None else round(p.score, 4),
            "refused": p.refused,
            "prepared_text": p.text,
            **({f"{task}_label": t.label for task, t in p.tasks.items()} if p.tasks else {}),
        }
        for text, p in zip(texts, predictions, strict=True)
    ]
    if args.output:
        write_predictions(rows, args.output)
        print(f"wrote {len(rows)} predictions of {folder.name} to {args.output}")
    elif args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        for row in rows:  # one line each: the text as the model saw it
            if row["refused"] is not None:
                print(f"refused\t-\t{row['prepared_text']}\t({row['refused']})")
            else:
                tasks = "".join(f"\t{k.removesuffix('_label')}={v}" for k, v in row.items() if k.endswith("_label"))
                print(f"{row['label']}\t{row['score']:.4f}\t{row['prepared_text']}{tasks}")
    return 0


def command_serve(args: argparse.Namespace, home: RefineryHome) -> int:
    from service.server import serve  # FastAPI and torch: only this command pays for them

    try:
        check_host(args.host, args.insecure)
    except InsecureHostError as error:
        raise CliError(str(error)) from error
    models, mirror = served_models(home)
    found = registries(models)
    if not found:
        raise CliError(f"nothing to serve: no deployed model under {home.models_uri or models}; run the pipeline first")
    auth = f"bearer token from {TOKEN_VARIABLE}" if os.environ.get(TOKEN_VARIABLE) else "no auth"
    print(
        f"serving the production models of {', '.join(found)} on http://{args.host}:{args.port} ({auth}): "
        "classifiers on POST /predict/{dataset} and /feedback; generators on POST /generate/{dataset}, "
        "/v1/chat/completions and GET /v1/models; GET /health, GET /metrics",
        flush=True,
    )
    quantize = False if args.no_quantize else None
    try:
        serve(models, home.lake_uri, args.host, args.port, quantize=quantize, insecure=args.insecure)
    finally:
        if mirror:
            mirror.stop()
    return 0


def served_models(home: RefineryHome) -> tuple[Path, StoreMirror | None]:
    """The models root to serve: the home's registries, or a local mirror of $REFINERY_MODELS_URI kept current by
    a thread (a service on another machine than the pipeline)."""
    if not home.models_uri:
        return home.models, None
    try:
        store = ModelStore(home.models_uri)
        _, failed = mirror_store(store, home.model_cache)
    except (OSError, ValueError) as error:  # unreachable or malformed: the cache may still hold models to serve
        if not registries(home.model_cache):
            raise CliError(f"{home.models_uri}: cannot read the model store: {error}") from error
        print(f"{home.models_uri}: cannot read the model store ({error}); serving the cached models", flush=True)
        return home.model_cache, None
    for name, error in failed.items():
        print(f"{home.models_uri}/{name}: not mirrored ({error}); serving what the cache holds", flush=True)
    return home.model_cache, StoreMirror(store, home.model_cache).start()


SHOWN_METRICS = {  # a test report's metric -> its short name in `refinery models`, classifiers' then generators'
    "accuracy": "acc",
    "macro_f1": "F1",
    "rouge_l": "ROUGE-L",
    "perplexity": "ppl",
    "gain_over_base": "gain",
    "perplexity_gain": "ppl gain",
    "preference_accuracy": "pref acc",
}


def metrics_cell(metrics: dict) -> str:
    """A model's test metrics in a few characters: accuracy and macro F1, or ROUGE-L, perplexity and gain over base."""
    shown = [
        f"{short} {metrics[name]:+.4f}" if name == "gain_over_base" else f"{short} {metrics[name]:.4f}"
        for name, short in SHOWN_METRICS.items()
        if metrics.get(name) is not None
    ]
    return " ".join(shown) or "-"


def command_models(args: argparse.Namespace, home: RefineryHome) -> int:
    found = registries(home.models)
    if args.dataset is not None or len(found) < 2:
        return print_models(model_root_for(home, args.dataset), args.json)
    if args.json:  # several datasets, none named: each one's models
        report = {
            name: {"models": list_models(root), "alias_history": alias_history(root)} for name, root in found.items()
        }
        print(json.dumps({"datasets": report}, indent=2))
        return 0
    for name, root in found.items():
        print(f"dataset {name}")
        print_models(root, False)
        print()
    return 0


def print_models(model_root: Path, as_json: bool) -> int:
    """One registry's versions, aliases, metrics and alias moves."""
    rows, history = list_models(model_root), alias_history(model_root)
    if as_json:
        print(json.dumps({"models": rows, "alias_history": history}, indent=2))
        return 0
    if not rows:
        print("no models yet; run the pipeline first (refinery demo)")
        return 0
    width = max(len(str(row["version"])) for row in rows) + 1
    print(f"{'version':<{width}} {'aliases':<20} {'test metrics':<40} {'gate':<7} {'created':<20} data")
    for row in rows:
        print(
            f"{row['version']:<{width}} {','.join(row['aliases']) or '-':<20} {metrics_cell(row['test_metrics']):<40} "
            f"{row['gate'] or '-':<7} {row['created_at']:<20} {','.join(row['dataset_versions'])} "
            f"(rules {str(row['rules_hash'])[:12]})"
        )
    if history:
        print("\nalias moves, newest last:")
        for move in history[-20:]:
            print(f"  {move['at']}  {move['reason']:<40} production {move['after'].get('production', '-')}")
    return 0


def command_rollback(args: argparse.Namespace, home: RefineryHome) -> int:
    model_root = model_root_for(home, args.dataset)
    aliases = rollback(model_root)
    if home.models_uri:  # services elsewhere follow the store's aliases
        ModelStore(home.models_uri).publish_aliases(model_root.name, model_root)
    print(
        f"production is {aliases['production']} again (previous: {aliases['previous']}); "
        "a running `refinery serve` swaps to it within a second"
    )
    return 0


def command_add_labels(args: argparse.Namespace, home: RefineryHome) -> int:
    from dagster_project.cli.pipeline import run_version
    from trainers.add_labels import add_labels, read_examples  # torch: only this command pays for it

    model_root = model_root_for(home, args.dataset)
    try:
        source = resolve_alias(model_root)
    except LookupError as error:
        raise CliError(str(error)) from error
    dataset_version = ModelRegistry(str(model_root.parent), model_root.name).dataset_version_of(source.name)
    output = model_root / new_model_version(dataset_version)
    bundle = home.bundles / ((read_card(source).get("lineage") or {}).get("evaluation_bundle") or source.name)
    known = None
    if (bundle / "val.parquet").is_file():  # the source's val split keeps the known labels' accuracy in check
        import pyarrow.parquet as pq

        val = pq.read_table(bundle / "val.parquet", columns=["text", "label"])
        known = (val.column("text").to_pylist(), val.column("label").to_pylist())
    added = add_labels(source, read_examples(Path(args.examples)), output, known)
    print(
        f"{output.name}: {source.name} with {', '.join(f'{k} ({n} examples)' for k, n in added['added'].items())}"
        f" in {added['seconds']:.2f}s"
    )
    if args.no_deploy:
        return 0
    if not run_version(home, dataset_version, "model_evaluation,deployed_model"):
        raise CliError(f"{output.name} did not pass the gate against {source.name}; production is unchanged")
    print(f"production is {resolve_alias(model_root).name}")
    return 0
