"""Preference tuning on a bundle of pairs: fit (every rank), export the merged model with its card from rank 0,
and report held-out preference accuracy and reward margin before and after."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq

from contracts.model_folder import PREFERENCE
from trainers.bundle import CHOSEN, CONTEXT, REJECTED, read_bundle_manifest
from trainers.generative.base_model import base_origin, resolve_base_model
from trainers.generative.export import finish_export
from trainers.preference.fit import PreferenceResult, fit_preferences
from trainers.preference.params import PreferenceParams
from trainers.registry import MODEL_CARD, write_json_atomically
from trainers.reporter import Reporter


def bundle_pairs(bundle: Path, split: str) -> list[dict[str, object]]:
    """A preference bundle's split as pair records: a prompt, or a conversation where a row has earlier turns."""
    table = pq.read_table(bundle / f"{split}.parquet", columns=["text", CHOSEN, REJECTED, CONTEXT])
    pairs = []
    for prompt, chosen, rejected, context in zip(
        *(table.column(c).to_pylist() for c in table.column_names), strict=True
    ):
        if context:
            pairs.append(
                {
                    "messages": [*json.loads(context), {"role": "user", "content": prompt}],
                    CHOSEN: chosen,
                    REJECTED: rejected,
                }
            )
        else:
            pairs.append({"prompt": prompt, CHOSEN: chosen, REJECTED: rejected})
    return pairs


def export_preference_model(result: PreferenceResult, params: PreferenceParams, output: Path, lineage: dict) -> dict:
    """The tuned model with its adapters merged, its tokenizer, metrics.csv and card; the card."""
    output.mkdir(parents=True, exist_ok=True)
    model = result.module.model
    model = model.merge_and_unload() if params.lora_rank else model
    model.save_pretrained(output)
    result.tokenizer.save_pretrained(output)
    if result.metrics_csv:
        from trainers.reports import preference_curves_png, read_metrics_csv_text

        (output / "metrics.csv").write_text(result.metrics_csv)
        curves = preference_curves_png(read_metrics_csv_text(result.metrics_csv))
        (output / "training_curves.png").write_bytes(curves)
    base = resolve_base_model(params.model_name_or_path)
    card = {
        "model_kind": PREFERENCE,
        "base_model": base,  # the reference the rewards are measured against
        "base_origin": base_origin(base),
        "objective": params.objective,
        "beta": params.beta,
        "params": params.to_dict(),
        "data": {"train_pairs": result.train_pairs, "val_pairs": result.val_pairs},
        "held_out_before": result.before,
        "held_out": result.after,
        "precision": result.precision,
        "train_seconds": round(result.seconds, 3),
        "lineage": lineage,
        "dataset_versions": list(lineage.get("dataset_versions", [])),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json_atomically(output / MODEL_CARD, card)
    return card


def train_on_pairs(
    bundle: Path, output: Path, params: PreferenceParams, reporter: Reporter, checkpoints: Path | None = None
) -> dict[str, object]:
    """Tune on a preference bundle's train pairs (val held out); the model carries the bundle's lineage and
    text recipe."""
    manifest = read_bundle_manifest(bundle)
    lineage = {**manifest.lineage, "dataset_versions": manifest.dataset_versions, "rules_hash": manifest.rules_hash}
    checkpoints = checkpoints or output.with_name(f".{output.name}.checkpoints")
    train, val = bundle_pairs(bundle, "train"), bundle_pairs(bundle, "val")
    result = fit_preferences(train, val, params, checkpoints, reporter.log)
    if not result.module.trainer.is_global_zero:
        return {}
    card = export_preference_model(result, params, output, lineage)
    finish_export(output, manifest.text_recipe, checkpoints)
    report = {
        "model_path": str(output),
        "model_kind": PREFERENCE,
        "objective": params.objective,
        **{f"val_{name}_before": value for name, value in result.before.items()},
        **{f"val_{name}": value for name, value in result.after.items()},
        "train_pairs": result.train_pairs,
        "train_seconds": card["train_seconds"],
        "precision": card["precision"],
    }
    reporter.report(report)
    return report
