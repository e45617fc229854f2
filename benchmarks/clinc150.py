"""`python -m benchmarks.clinc150 [PATH] [--epochs N]`: fine-tune the default MiniLM on CLINC150 through
the real trainer entry point and report in-scope accuracy and out-of-scope recall on its test split.

Reads ../shared/data/clinc150_data_full.json by default (CC BY 3.0, Larson et al., EMNLP 2019); "oos"
is its own class. The paper's BERT: 96.9% in-scope accuracy, 40.3% out-of-scope recall.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from benchmarks.common import result_line
from trainers.bundle import BundleManifest, write_bundle
from trainers.export import Classifier
from trainers.train import Reporter, TrainingParams, train

DEFAULT_PATH = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "clinc150_data_full.json"


def build_bundle(data: dict, folder: Path) -> Path:
    """train + oos_train, val + oos_val, test + oos_test, as a training bundle."""
    splits = {name: data[name] + data[f"oos_{name}"] for name in ("train", "val", "test")}
    labels = sorted({label for rows in splits.values() for _, label in rows})
    tables = {
        name: pa.table({"doc_id": [f"{name}{i}" for i in range(len(rows))], "text": [t for t, _ in rows],
                        "label": [label for _, label in rows]})
        for name, rows in splits.items()
    }  # fmt: skip
    manifest = BundleManifest({label: i for i, label in enumerate(labels)}, ["clinc150"], "none",
                              {name: len(rows) for name, rows in splits.items()})  # fmt: skip
    return write_bundle(folder, tables, manifest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    args = parser.parse_args()
    data = json.loads(args.path.read_text())
    with tempfile.TemporaryDirectory() as scratch:
        bundle = build_bundle(data, Path(scratch) / "bundle")
        params = TrainingParams(max_epochs=args.epochs, batch_size=32, learning_rate=args.learning_rate, max_length=48,
                                warmup_ratio=0.06)  # fmt: skip
        started = time.perf_counter()
        with Reporter() as reporter:
            train(bundle, Path(scratch) / "model", params, reporter)
        seconds = time.perf_counter() - started
        classifier = Classifier(Path(scratch) / "model")
        in_scope, oos = data["test"], data["oos_test"]
        predicted = classifier.predict([t for t, _ in in_scope + oos])
    in_scope_hits = sum(p.label == label for p, (_, label) in zip(predicted[: len(in_scope)], in_scope, strict=True))
    oos_hits = sum(p.label == "oos" for p in predicted[len(in_scope) :])
    print(f"{args.epochs} epochs, lr {args.learning_rate}: {seconds:.0f}s")
    print(result_line(in_scope_acc=100 * in_scope_hits / len(in_scope), oos_recall=100 * oos_hits / len(oos),
                      train_s=round(seconds)))  # fmt: skip


if __name__ == "__main__":
    main()
