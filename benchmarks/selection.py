"""`python -m benchmarks.selection [PATH]`: the selection matrix on CLINC150 (../shared/data), val split only.

Candidates (default: all four kinds): TF-IDF over the lemmas and stems `tokenized_documents` computes (word and
character n-grams) with a logistic regression; the embedded MiniLM frozen as a sentence encoder with a
logistic-regression head; MiniLM fully fine-tuned; MiniLM with LoRA adapters (both for the same epoch budget,
best val epoch kept). Each is fitted on the train split (out-of-scope queries included as their own class) and
scored on val; the test split is not read. Prints the matrix and a RESULT line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl

from assets.models.selection import (
    KINDS,
    FineTuneBudget,
    candidate_data,
    parse_candidates,
    run_selection,
    with_analyzed_text,
)
from assets.text.tokenize import tokenize_documents
from benchmarks.clinc150 import DEFAULT_PATH
from benchmarks.common import result_line
from recipe.words import load_tokenizer


def clinc_split(data: dict, name: str) -> pl.DataFrame:
    rows = data[name] + data[f"oos_{name}"]
    return pl.DataFrame(
        {
            "doc_id": [f"{name}{i}" for i in range(len(rows))],
            "text": [t for t, _ in rows],
            "label": [label for _, label in rows],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--candidates", nargs="+", default=list(KINDS), help="kinds, or kind@model")
    parser.add_argument("--epochs", type=int, default=2, help="epoch budget of each fine-tune candidate")
    args = parser.parse_args()
    data = json.loads(args.path.read_text())
    started = time.perf_counter()
    tokenizer = load_tokenizer("en")
    splits = {name: clinc_split(data, name) for name in ("train", "val")}  # test is never read here
    splits = {name: with_analyzed_text(frame, tokenize_documents(frame, tokenizer)) for name, frame in splits.items()}
    labels = sorted(set(splits["train"]["label"]))
    label_map = {label: index for index, label in enumerate(labels)}
    with tempfile.TemporaryDirectory() as scratch:
        result = run_selection(
            candidate_data(splits["train"], label_map),
            candidate_data(splits["val"], label_map),
            len(labels),
            Path(scratch),
            parse_candidates(args.candidates, "default"),
            budget=FineTuneBudget(epochs=args.epochs),
        )
    matrix_seconds = time.perf_counter() - started
    with pl.Config(tbl_cols=-1, tbl_width_chars=300, fmt_str_lengths=40):
        print(
            pl.DataFrame(result.rows, infer_schema_length=None)
            .drop("settings")
            .with_columns(pl.col(pl.Float64).round(4))
        )
    print(f"chosen: {result.chosen} ({result.reason}); Pareto front: {sorted(result.front)}")
    scores = {row["candidate"]: row["val_macro_f1"] for row in result.rows}
    print(
        result_line(
            best=result.chosen,
            best_val_macro_f1=round(scores[result.chosen], 4),
            tfidf_val_macro_f1=round(scores["tfidf-logreg"], 4),
            minilm_val_macro_f1=round(max(v for k, v in scores.items() if k.startswith("encoder-")), 4),
            **{f"{k.replace('-', '_')}_val_macro_f1": round(v, 4) for k, v in scores.items()},
            matrix_s=round(matrix_seconds, 1),
        )
    )


if __name__ == "__main__":
    main()
