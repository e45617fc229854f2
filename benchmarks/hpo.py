"""`python -m benchmarks.hpo [PATH] [--trials N] [--fraction F]`: hyperparameter search against the defaults on
CLINC150 (../shared/data), in a budget that fits 30 minutes on 2 cores.

The default settings and the search's best settings each fine-tune the embedded MiniLM on the full train split
with the same epoch cap (`--final-epochs`); the search itself (TPE, median pruning per epoch, an SQLite study)
runs its trials on a stratified `--fraction` of train with at most 3 epochs, scored on val. Selection uses val
only; test is read once per final model, to report.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl
import pyarrow as pa

from benchmarks.clinc150 import DEFAULT_PATH
from benchmarks.common import result_line
from trainers.bundle import BundleManifest, write_bundle
from trainers.kinds import load_classifier
from trainers.params import TrainingParams
from trainers.search import DEFAULT_SPACE, SearchSettings, finished_trials, run_search, trials_table
from trainers.train import Reporter, train


def clinc_frames(data: dict) -> dict[str, pl.DataFrame]:
    return {
        name: pl.DataFrame(
            {
                "text": [t for t, _ in data[name] + data[f"oos_{name}"]],
                "label": [label for _, label in data[name] + data[f"oos_{name}"]],
            }
        )
        for name in ("train", "val", "test")
    }


def bundle_of(frames: dict[str, pl.DataFrame], folder: Path) -> Path:
    labels = sorted(set(frames["train"]["label"]))
    tables = {
        name: pa.table(
            {
                "doc_id": [f"{name}{i}" for i in range(frame.height)],
                "text": frame["text"].to_list(),
                "label": frame["label"].to_list(),
            }
        )
        for name, frame in frames.items()
    }
    manifest = BundleManifest(
        {label: i for i, label in enumerate(labels)},
        ["clinc150"],
        "none",
        {name: frame.height for name, frame in frames.items()},
    )
    return write_bundle(folder, tables, manifest)


def fine_tune(bundle: Path, folder: Path, settings: dict, test: pl.DataFrame) -> tuple[float, float]:
    """Val macro F1 of the exported (best) epoch and test accuracy of one full fine-tune."""
    with Reporter() as reporter:
        reported = train(bundle, folder, TrainingParams(**settings), reporter)
    predicted = [p.label for p in load_classifier(folder).predict(test["text"].to_list())]
    accuracy = sum(a == b for a, b in zip(predicted, test["label"].to_list(), strict=True)) / test.height
    return float(reported.get("exported_val_macro_f1", reported["val_macro_f1"])), accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--fraction", type=float, default=0.1, help="share of train each trial fits on")
    parser.add_argument("--final-epochs", type=int, default=3, help="the same cap for the default and tuned runs")
    args = parser.parse_args()
    frames = clinc_frames(json.loads(args.path.read_text()))
    sample = frames["train"].filter(
        pl.int_range(pl.len()).shuffle(seed=7).over("label") < pl.len().over("label") * args.fraction
    )
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        full = bundle_of(frames, root / "full")
        small = bundle_of({**frames, "train": sample, "test": frames["test"].head(0)}, root / "small")
        started = time.perf_counter()
        settings = SearchSettings(f"sqlite:///{root / 'study.db'}", "clinc150", trials=args.trials)
        with Reporter() as reporter:
            study = run_search(
                small, {"max_epochs": 3, "early_stopping_patience": 0}, DEFAULT_SPACE, settings, reporter
            )
        search_seconds = time.perf_counter() - started
        rows = trials_table(study)
        print(pl.DataFrame(rows))
        capped = {"max_epochs": args.final_epochs}
        default_val, default_test = fine_tune(full, root / "default", capped, frames["test"])
        tuned_val, tuned_test = fine_tune(full, root / "tuned", {**study.best_params, **capped}, frames["test"])
    print(f"best trial {study.best_trial.number}: {json.dumps(study.best_params)}")
    print(
        result_line(
            default_test_acc=round(default_test, 4),
            tuned_test_acc=round(tuned_test, 4),
            tuned_val_macro_f1=round(tuned_val, 4),
            default_val_macro_f1=round(default_val, 4),
            trials=finished_trials(study),
            pruned=sum(r["state"] == "PRUNED" for r in rows),
            search_s=round(search_seconds),
        )
    )


if __name__ == "__main__":
    main()
