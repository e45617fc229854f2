"""Export a fine-tuned model folder (safetensors, tokenizer, label map, model card, text recipe)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from trainers.encoding import encode
from trainers.registry import LABEL_MAP, MODEL_CARD, RECIPE_FILE


@contextmanager
def stage_model_folder(
    folder: Path,
    label_map: dict[str, int],
    card: dict,
    recipe: dict | None = None,
    extras: dict[str, bytes] | None = None,
) -> Iterator[Path]:
    """A staging folder holding the label map, card, recipe and extras; the caller adds the weights, then the
    staging folder is swapped in for `folder`, so a reader never sees half a model."""
    staging = folder.with_name(f".{folder.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / LABEL_MAP).write_text(json.dumps(label_map, indent=2, sort_keys=True))
    (staging / MODEL_CARD).write_text(json.dumps(card, indent=2, sort_keys=True, default=str))
    if recipe is not None:
        (staging / RECIPE_FILE).write_text(json.dumps(recipe, indent=2, sort_keys=True))
    for name, content in (extras or {}).items():  # metrics.csv, training_curves.png
        (staging / name).write_bytes(content)
    yield staging
    retired = folder.with_name(f".{folder.name}.retired")
    shutil.rmtree(retired, ignore_errors=True)
    if folder.exists():
        folder.rename(retired)
    staging.rename(folder)
    shutil.rmtree(retired, ignore_errors=True)


def export_model(
    model,
    tokenizer,
    label_map: dict[str, int],
    card: dict,
    folder: Path,
    recipe: dict | None = None,
    extras: dict[str, bytes] | None = None,
) -> Path:
    """Write a transformers model folder (safetensors, tokenizer, label map, card, recipe) in one swap."""
    with stage_model_folder(folder, label_map, card, recipe, extras) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
    return folder


def quantize_linear_layers(model):
    """int8 weights for every Linear layer, activations quantized on the fly: about 2x faster on CPU."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's notice that it moves to torchao
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def length_ordered_batches(
    tokenizer, texts: list[str], max_length: int, truncation: str, batch_size: int, device
) -> Iterator[tuple[list[int], dict]]:
    """The texts encoded and padded in batches of similar length (little padding), each with its rows' indices."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        ids = encode(tokenizer, [texts[i] for i in chunk], max_length, truncation)
        yield chunk, tokenizer.pad({"input_ids": ids}, return_tensors="pt").to(device)


@torch.inference_mode()
def class_probabilities(
    model, tokenizer, texts: list[str], max_length: int, truncation: str = "head", batch_size: int = 64
) -> torch.Tensor:
    """Class probabilities of a sequence classifier for each text, batched in length order to keep padding low."""
    result = torch.empty((len(texts), model.config.num_labels))
    device = next(model.parameters()).device
    for chunk, encoded in length_ordered_batches(tokenizer, texts, max_length, truncation, batch_size, device):
        logits = model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits
        result[chunk] = torch.softmax(logits.float(), dim=-1).cpu()
    return result


@torch.inference_mode()
def pooled_embeddings(
    encoder, tokenizer, texts: list[str], max_length: int, truncation: str = "head", batch_size: int = 64
) -> torch.Tensor:
    """Each text's mean-pooled last hidden state under `encoder` (a transformers base model), batched by length."""
    result = torch.empty((len(texts), encoder.config.hidden_size))
    device = next(encoder.parameters()).device
    for chunk, encoded in length_ordered_batches(tokenizer, texts, max_length, truncation, batch_size, device):
        hidden = encoder(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        result[chunk] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu()
    return result
