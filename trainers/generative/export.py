"""Exporting a fine-tuned causal LM: merged weights or kept adapters, its tokenizer with the chat template, and a
model card naming the base model, the adapter settings, the data and the evaluation."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from contracts.model_folder import CAUSAL_LM
from trainers.generative.base_model import base_origin, resolve_base_model
from trainers.generative.evaluation import answer_records
from trainers.generative.generation import ADAPTER_FOLDER, Generator
from trainers.generative.params import SftParams
from trainers.generative.sft import SftResult
from trainers.registry import MODEL_CARD, RECIPE_FILE, write_json_atomically


def export_causal_lm(result: SftResult, params: SftParams, output: Path) -> Path:
    """Save the model (adapters merged into the weights, or kept beside the named base) and its tokenizer."""
    output.mkdir(parents=True, exist_ok=True)
    model = result.module.model
    if params.lora_rank and params.adapters == "keep":
        model.save_pretrained(output / ADAPTER_FOLDER)
    else:
        model = model.merge_and_unload() if params.lora_rank else model
        model.save_pretrained(output)
    result.tokenizer.save_pretrained(output)
    if result.metrics_csv:
        from trainers.reports import read_metrics_csv_text, training_curves_png

        (output / "metrics.csv").write_text(result.metrics_csv)
        (output / "training_curves.png").write_bytes(training_curves_png(read_metrics_csv_text(result.metrics_csv)))
    return output


def held_out_evaluation(output: Path, val: Sequence[Mapping], params: SftParams) -> dict[str, object]:
    """The exported model answering up to `eval_prompts` held-out prompts greedily: ROUGE-L, exact match, and the
    first few answers beside their references."""
    records = list(val)[: params.eval_prompts]
    if not records:
        return {"rouge_l": None, "exact_match": None, "samples": []}
    answered = answer_records(Generator(output), records, params.batch_size, params.max_new_tokens)
    return {key: value for key, value in answered.items() if key != "answers"}


def write_card(output: Path, result: SftResult, params: SftParams, evaluation: dict, lineage: dict) -> dict:
    """The model card of a generative model."""
    adapters = (
        {
            "rank": params.lora_rank,
            "alpha": params.lora_alpha,
            "dropout": params.lora_dropout,
            "target_modules": "all-linear",
            "export": params.adapters,
        }
        if params.lora_rank
        else None
    )
    base = resolve_base_model(params.model_name_or_path)
    card = {
        "model_kind": CAUSAL_LM,
        "base_model": base,  # an absolute folder, or the hub id
        "base_origin": base_origin(base),  # a converted GGUF base: that file's name and sha256
        "adapters": adapters,
        "params": params.to_dict(),
        "data": {
            "train_examples": result.data.train_examples,
            "val_examples": result.data.val_examples,
            "train_rows": len(result.data.train_rows),
            "truncated_examples": result.data.truncated,
        },
        "val_loss_before": round(result.val_loss_before, 6),
        "val_loss": round(result.val_loss_after, 6),
        "val_perplexity": round(math.exp(min(result.val_loss_after, 50.0)), 4),
        "exported_epoch": result.best,  # None: the last epoch's weights
        "held_out": evaluation,
        "precision": result.precision,
        "train_seconds": round(result.seconds, 3),
        "lineage": dict(lineage),
        "dataset_versions": list(lineage.get("dataset_versions", [])),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json_atomically(output / MODEL_CARD, card)
    return card


def read_records(path: Path) -> list[dict]:
    """Records of a JSON Lines file, naming the line of one that is not a JSON object."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"{path} line {number}: expected a JSON object")
            records.append(record)
    return records


def finish_export(output: Path, text_recipe: dict | None, checkpoints: Path) -> None:
    """Put the bundle's text recipe beside an exported model (serving prepares prompts with it) and drop the
    run's checkpoints, which the exported model supersedes."""
    import shutil

    if text_recipe is not None:
        write_json_atomically(output / RECIPE_FILE, text_recipe)
    shutil.rmtree(checkpoints, ignore_errors=True)
