"""`python -m benchmarks.clinc150 [PATH] [--epochs N]`: fine-tune the default MiniLM on CLINC150 through
the real trainer entry point and report in-scope accuracy and out-of-scope recall on its test split.

Reads ../shared/data/clinc150_data_full.json by default (CC BY 3.0, Larson et al., EMNLP 2019); "oos"
is its own class and the trainer's abstain label, so texts the model is unsure of are answered "oos"
below a confidence threshold fitted on the val split. The budget (in-scope val accuracy the threshold
may cost) trades in-scope accuracy for oos recall; the run prints the test scores for several budgets.
The paper's BERT: 96.9% in-scope accuracy, 40.3% out-of-scope recall.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import torch

from benchmarks.common import result_line
from trainers.abstain import apply_abstain, fit_abstain_threshold
from trainers.bundle import BundleManifest, write_bundle
from trainers.inference import Classifier
from trainers.kinds import load_classifier
from trainers.params import TrainingParams
from trainers.train import Reporter, train

DEFAULT_PATH = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "clinc150_data_full.json"


def build_bundle(data: dict, folder: Path) -> Path:
    """train + oos_train, val + oos_val, test + oos_test, as a training bundle."""
    splits = {name: data[name] + data[f"oos_{name}"] for name in ("train", "val", "test")}
    labels = sorted({label for rows in splits.values() for _, label in rows})
    tables = {
        name: pa.table(
            {
                "doc_id": [f"{name}{i}" for i in range(len(rows))],
                "text": [t for t, _ in rows],
                "label": [label for _, label in rows],
            }
        )
        for name, rows in splits.items()
    }
    manifest = BundleManifest(
        {label: i for i, label in enumerate(labels)},
        ["clinc150"],
        "none",
        {name: len(rows) for name, rows in splits.items()},
    )
    return write_bundle(folder, tables, manifest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--head-learning-rate", type=float, default=1e-3)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--abstain-budget", type=float, default=0.002)
    args = parser.parse_args()
    data = json.loads(args.path.read_text())
    with tempfile.TemporaryDirectory() as scratch:
        bundle = build_bundle(data, Path(scratch) / "bundle")
        params = TrainingParams(
            max_epochs=args.epochs,
            batch_size=32,
            learning_rate=args.learning_rate,
            head_learning_rate=args.head_learning_rate,
            label_smoothing=args.label_smoothing,
            max_length=48,
            warmup_ratio=0.06,
            abstain_label="oos",
            abstain_budget=args.abstain_budget,
        )
        started = time.perf_counter()
        with Reporter() as reporter:
            train(bundle, Path(scratch) / "model", params, reporter)
        seconds = time.perf_counter() - started
        classifier = load_classifier(Path(scratch) / "model")
        in_scope, oos = data["test"], data["oos_test"]
        texts = [t for t, _ in in_scope + oos]
        test_probabilities = classifier.probabilities(texts)
        predicted = classifier.decide(test_probabilities)
        print(json.dumps(vars(args), default=str))
        print_budget_sweep(classifier, data, test_probabilities)
    print(f"abstain threshold {classifier.abstain_threshold:.4f} (budget {args.abstain_budget}); {seconds:.0f}s")
    in_acc, oos_rec = scope_scores([p.label for p in predicted], in_scope, len(in_scope))
    print(result_line(in_scope_acc=in_acc, oos_recall=oos_rec, train_s=round(seconds)))


def print_budget_sweep(classifier: Classifier, data: dict, test_probabilities: torch.Tensor) -> None:
    """Test-split scores of the same model for several abstain budgets, each threshold fitted on val."""
    val_rows = data["val"] + data["oos_val"]
    val_probabilities = classifier.probabilities([t for t, _ in val_rows])
    val_targets = torch.tensor([classifier.labels.index(label) for _, label in val_rows])
    abstain_id = classifier.labels.index("oos")
    for budget in (0.0, 0.001, 0.002, 0.005, 0.01):
        threshold = fit_abstain_threshold(val_probabilities, val_targets, abstain_id, budget)
        labels = [classifier.labels[i] for i in apply_abstain(test_probabilities, abstain_id, threshold).tolist()]
        in_acc, oos_rec = scope_scores(labels, data["test"], len(data["test"]))
        print(f"budget {budget:<6} threshold {threshold:.4f}: in-scope {in_acc:.3f}%, oos recall {oos_rec:.3f}%")
    argmax = [classifier.labels[i] for i in test_probabilities.argmax(dim=-1).tolist()]
    in_acc, oos_rec = scope_scores(argmax, data["test"], len(data["test"]))
    print(f"argmax, no abstain label: in-scope accuracy {in_acc:.3f}%, oos recall {oos_rec:.3f}%")


def scope_scores(labels: list[str], in_scope: list[list[str]], count: int) -> tuple[float, float]:
    """In-scope accuracy and out-of-scope recall, in percent, of labels for in-scope rows followed by oos rows."""
    hits = sum(label == gold for label, (_, gold) in zip(labels[:count], in_scope, strict=True))
    oos_hits = sum(label == "oos" for label in labels[count:])
    return 100 * hits / count, 100 * oos_hits / (len(labels) - count)


if __name__ == "__main__":
    main()
