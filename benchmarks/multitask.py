"""`python -m benchmarks.multitask [PATH] [--epochs E]`: CLINC150's intent (150 labels) and domain (10) tasks,
learned by one multi-task model against two single-task models.

The domains come from ../shared/data/clinc150_domains.json; out-of-scope queries are left out. All three
models start from the embedded MiniLM with the same settings (E epochs, max length 48). Accuracy is on the
official test split; serving time is the mean milliseconds per text to answer the test split in batches of
32 on the CPU (float32): one forward pass for both tasks against one per single-task model.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from benchmarks.clinc150 import DEFAULT_PATH
from benchmarks.common import result_line
from trainers.bundle import BundleManifest, task_column, write_bundle
from trainers.kinds import load_classifier
from trainers.multitask import fit_multitask
from trainers.params import TrainingParams
from trainers.train import Reporter, train


def domain_of(path: Path) -> dict[str, str]:
    """Each intent's domain."""
    domains = json.loads(path.with_name("clinc150_domains.json").read_text())
    return {intent: domain for domain, intents in domains.items() for intent in intents}


def write_task_bundle(data: dict, domains: dict[str, str], task: str | None, folder: Path) -> Path:
    """A bundle labelled by one task (intent or domain), or by both when `task` is None."""
    rows = {name: data[name] for name in ("train", "val", "test")}
    maps = {"intent": sorted(domains), "domain": sorted(set(domains.values()))}
    tables = {}
    for name, split in rows.items():
        intents = [label for _, label in split]
        columns = {
            "doc_id": [f"{name}{i}" for i in range(len(split))],
            "text": [t for t, _ in split],
            "intent": intents,
            "domain": [domains[i] for i in intents],
        }
        primary = columns[task or "intent"]
        tables[name] = pa.table(
            {
                "doc_id": columns["doc_id"],
                "text": columns["text"],
                "label": primary,
                **({task_column(t): columns[t] for t in maps} if task is None else {}),
            }
        )
    tasks = {t: {label: i for i, label in enumerate(labels)} for t, labels in maps.items()}
    label_map = tasks[task or "intent"]
    manifest = BundleManifest(
        label_map, ["clinc150"], "none", {n: len(r) for n, r in rows.items()}, tasks=tasks if task is None else {}
    )
    return write_bundle(folder, tables, manifest)


def serve_ms(folder: Path, texts: list[str]) -> float:
    classifier = load_classifier(folder)
    started = time.perf_counter()
    classifier.predict(texts, batch_size=32)
    return 1000 * (time.perf_counter() - started) / len(texts)


def accuracy(predicted: list[str], gold: list[str]) -> float:
    return 100 * sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="default", help="encoder folder or hub id (default: the embedded MiniLM)")
    args = parser.parse_args()
    data, domains = json.loads(args.path.read_text()), domain_of(args.path)
    texts = [t for t, _ in data["test"]]
    gold = {"intent": [label for _, label in data["test"]], "domain": [domains[label] for _, label in data["test"]]}
    params = TrainingParams(
        model_name_or_path=args.model, max_epochs=args.epochs, max_length=48, early_stopping_patience=0
    )
    scores, seconds, serving = {}, {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        fit_multitask(write_task_bundle(data, domains, None, root / "multi-bundle"), root / "multi", params)
        seconds["multi"] = time.perf_counter() - started
        answers = load_classifier(root / "multi").predict_tasks(texts)
        for task in gold:
            scores[f"{task}_acc_multi"] = accuracy([a[task].label for a in answers], gold[task])
        serving["multi"] = serve_ms(root / "multi", texts)
        for task in gold:
            started = time.perf_counter()
            with Reporter() as reporter:
                train(write_task_bundle(data, domains, task, root / f"{task}-bundle"), root / task, params, reporter)
            seconds[task] = time.perf_counter() - started
            scores[f"{task}_acc_single"] = accuracy(
                [p.label for p in load_classifier(root / task).predict(texts)], gold[task]
            )
            serving[task] = serve_ms(root / task, texts)
    print(
        result_line(
            intent_acc_multi=round(scores["intent_acc_multi"], 2),
            intent_acc_single=round(scores["intent_acc_single"], 2),
            domain_acc_multi=round(scores["domain_acc_multi"], 2),
            domain_acc_single=round(scores["domain_acc_single"], 2),
            train_s_multi=round(seconds["multi"], 1),
            train_s_single_total=round(seconds["intent"] + seconds["domain"], 1),
            serve_ms_multi=round(serving["multi"], 3),
            serve_ms_single_total=round(serving["intent"] + serving["domain"], 3),
        )
    )


if __name__ == "__main__":
    main()
