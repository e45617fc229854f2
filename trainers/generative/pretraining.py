"""Continued pre-training of a causal LM on a domain's documents: the next-token loss on every token, each document
split into rows of at most `max_length` tokens that end with the end-of-sequence token, packed several to a row
with attention that never crosses from one document into another; judged by held-out perplexity against the base.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow.parquet as pq
import torch

from contracts.model_folder import DOMAIN_LM
from trainers.bundle import read_bundle_manifest
from trainers.generative.export import export_causal_lm, finish_export, write_card
from trainers.generative.packing import TokenizedExample, collate_rows, unpacked_rows
from trainers.generative.params import PretrainingParams
from trainers.generative.sft import fit_sft
from trainers.registry import MODEL_CARD, update_card
from trainers.reporter import Reporter

EVAL_BATCH = 8


def tokenize_document(tokenizer, record: Mapping, max_length: int) -> list[TokenizedExample]:
    """A document's tokens and its end-of-sequence token, in pieces of at most `max_length`; every token is learned."""
    ids = tokenizer(str(record["text"]), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    pieces = [ids[start : start + max_length] for start in range(0, len(ids), max_length)]
    return [TokenizedExample(piece, list(piece)) for piece in pieces if len(piece) > 1]


def document_records(bundle: Path, split: str) -> list[dict[str, object]]:
    """A documents bundle's split as `{"text": ...}` records."""
    return [
        {"text": text} for text in pq.read_table(bundle / f"{split}.parquet", columns=["text"]).column(0).to_pylist()
    ]


@torch.inference_mode()
def document_loss(model, tokenizer, records: Sequence[Mapping], max_length: int) -> float:
    """The mean next-token loss per predicted token over the documents (each piece on its own row)."""
    examples = [example for record in records for example in tokenize_document(tokenizer, record, max_length)]
    rows = unpacked_rows(examples)
    total, count = 0.0, 0
    for start in range(0, len(rows), EVAL_BATCH):
        batch = collate_rows(rows[start : start + EVAL_BATCH], tokenizer.pad_token_id)
        batch = {name: value.to(model.device) for name, value in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        labels = batch["labels"][:, 1:]
        losses = torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="sum"
        )
        total, count = total + float(losses), count + int((labels != -100).sum())
    if not count:
        raise ValueError("no document has two tokens to judge the model on")
    return total / count


def perplexity_of(folder_or_id: str, tokenizer, records: Sequence[Mapping], max_length: int) -> float:
    """A model's perplexity over the documents."""
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(folder_or_id, attn_implementation="sdpa").eval().to(device)
    return math.exp(min(document_loss(model, tokenizer, records, max_length), 50.0))


def evaluate_domain_lm(folder: Path, bundle: Path, split: str = "test") -> dict[str, object]:
    """Held-out perplexity of the adapted model and of the base it started from, on the same documents."""
    from transformers import AutoTokenizer

    card = json.loads((folder / MODEL_CARD).read_text())
    records = document_records(bundle, split)
    if not records:
        raise ValueError(f"{bundle}: the {split} split has no documents to judge the model on")
    max_length = int(card.get("params", {}).get("max_length", 512))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    adapted = perplexity_of(str(folder), tokenizer, records, max_length)
    base = perplexity_of(str(card["base_model"]), tokenizer, records, max_length)
    metrics = {
        "perplexity": round(adapted, 4),
        "base_perplexity": round(base, 4),
        "perplexity_gain": round(1.0 - adapted / base, 6),  # the fraction of the base's perplexity removed
    }
    return {"metrics": metrics, "documents": len(records)}


def train_on_documents(
    bundle: Path, output: Path, params: PretrainingParams, reporter: Reporter, checkpoints: Path | None = None
) -> dict[str, object]:
    """Continue pre-training on a documents bundle's train split (val for loss); export from rank 0 with the
    bundle's lineage and text recipe."""
    manifest = read_bundle_manifest(bundle)
    lineage = {**manifest.lineage, "dataset_versions": manifest.dataset_versions, "rules_hash": manifest.rules_hash}
    checkpoints = checkpoints or output.with_name(f".{output.name}.checkpoints")
    train, val = document_records(bundle, "train"), document_records(bundle, "val")
    result = fit_sft(train, val, params, checkpoints, reporter.log, tokenize=tokenize_document)
    if not result.module.trainer.is_global_zero:
        return {}
    export_causal_lm(result, params, output)
    write_card(output, result, params, {}, lineage)
    card = update_card(output, model_kind=DOMAIN_LM, data={**result_counts(result), "documents": len(train)})
    finish_export(output, manifest.text_recipe, checkpoints)
    report = {
        "model_path": str(output),
        "model_kind": DOMAIN_LM,
        "val_loss_before": card["val_loss_before"],
        "val_loss": card["val_loss"],
        "val_perplexity_before": round(math.exp(min(card["val_loss_before"], 50.0)), 4),
        "val_perplexity": card["val_perplexity"],
        "train_rows": card["data"]["train_rows"],
        "train_seconds": card["train_seconds"],
        "precision": card["precision"],
    }
    reporter.report(report)
    return report


def result_counts(result) -> dict[str, int]:
    """The rows and pieces a run learned from (a long document is several pieces)."""
    return {"train_rows": len(result.data.train_rows), "val_rows": len(result.data.val_rows)}
