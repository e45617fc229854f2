"""`python -m trainers.generative.train --train T.jsonl --val V.jsonl --output DIR --params JSON`: supervised
fine-tuning of a causal LM on prompt/response (or chat `messages`) records, exported with its card and evaluation.
Launched through dagster-pipes like the classifier trainer; runs under torchrun or on a pod the same way."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from trainers.console import quiet_libraries
from trainers.generative.export import export_causal_lm, held_out_evaluation, read_records, write_card
from trainers.generative.params import SftParams
from trainers.generative.sft import fit_sft
from trainers.registry import update_card
from trainers.reporter import Reporter


def run_sft(
    train: Sequence[Mapping],
    val: Sequence[Mapping],
    output: Path,
    params: SftParams,
    reporter: Reporter | None = None,
    checkpoints: Path | None = None,
    lineage: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """Fine-tune, export (rank 0), evaluate on held-out prompts, and report; returns what was reported."""
    result = fit_sft(train, val, params, checkpoints, reporter.log if reporter is not None else None)
    if not result.module.trainer.is_global_zero:
        return {}
    export_causal_lm(result, params, output)
    write_card(output, result, params, {}, lineage or {})
    evaluation = held_out_evaluation(output, val, params)
    card = update_card(output, held_out=evaluation)
    report = {
        "model_path": str(output),
        "model_kind": card["model_kind"],
        "val_loss_before": card["val_loss_before"],
        "val_loss": card["val_loss"],
        "val_perplexity": card["val_perplexity"],
        "rouge_l": evaluation["rouge_l"],
        "exact_match": evaluation["exact_match"],
        "train_rows": card["data"]["train_rows"],
        "train_seconds": card["train_seconds"],
        "precision": card["precision"],
    }
    if reporter is not None:
        reporter.report(report)
    return report


def train_on_bundle(
    bundle: Path, output: Path, params: SftParams, reporter: Reporter, checkpoints: Path | None = None
) -> dict[str, object]:
    """Fine-tune on a generation bundle's train split (val for loss and held-out answers); the model carries the
    bundle's lineage and text recipe (serving prepares prompts with it)."""
    import shutil

    from trainers.bundle import read_bundle_manifest
    from trainers.generative.evaluation import bundle_records
    from trainers.registry import RECIPE_FILE, write_json_atomically

    manifest = read_bundle_manifest(bundle)
    lineage = {
        **manifest.lineage,
        "dataset_versions": manifest.dataset_versions,
        "rules_hash": manifest.rules_hash,
        "row_counts": manifest.row_counts,
    }
    checkpoints = checkpoints or output.with_name(f".{output.name}.checkpoints")
    train, val = bundle_records(bundle, "train"), bundle_records(bundle, "val")
    report = run_sft(train, val, output, params, reporter, checkpoints, lineage)
    if report and manifest.text_recipe is not None:
        write_json_atomically(output / RECIPE_FILE, manifest.text_recipe)
    if report:
        shutil.rmtree(checkpoints, ignore_errors=True)  # the exported model supersedes them
    return report


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    parser = argparse.ArgumentParser(prog="python -m trainers.generative.train", description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True, help="JSON Lines of training records")
    parser.add_argument("--val", type=Path, required=True, help="JSON Lines of held-out records")
    parser.add_argument("--output", type=Path, required=True, help="model folder to export to")
    parser.add_argument("--params", default="{}", help="SftParams as JSON")
    parser.add_argument("--checkpoints", type=Path, help="resumable checkpoints")
    args = parser.parse_args(argv)
    params = SftParams.from_json(args.params)
    with Reporter() as reporter:
        run_sft(read_records(args.train), read_records(args.val), args.output, params, reporter, args.checkpoints)
    return 0


if __name__ == "__main__":
    sys.exit(main())
