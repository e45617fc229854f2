"""Export a fine-tuned model folder (safetensors, tokenizer, label map, model card) and load it back."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from trainers.abstain import apply_abstain
from trainers.encoding import encode
from trainers.registry import LABEL_MAP, MODEL_CARD


def export_model(model, tokenizer, label_map: dict[str, int], card: dict, folder: Path) -> Path:
    """Write the model folder next to `folder`, then swap it in, so a reader never sees half a model."""
    staging = folder.with_name(f".{folder.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    (staging / LABEL_MAP).write_text(json.dumps(label_map, indent=2, sort_keys=True))
    (staging / MODEL_CARD).write_text(json.dumps(card, indent=2, sort_keys=True, default=str))
    retired = folder.with_name(f".{folder.name}.retired")
    shutil.rmtree(retired, ignore_errors=True)
    if folder.exists():
        folder.rename(retired)
    staging.rename(folder)
    shutil.rmtree(retired, ignore_errors=True)
    return folder


@dataclass
class Prediction:
    """One text's predicted label and its probability."""

    label: str
    score: float


class Classifier:
    """An exported model folder, loaded for inference."""

    def __init__(self, folder: Path, max_length: int | None = None, quantize: bool = False):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        self.folder = folder
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        self.precision = "float32"
        if quantize:
            self.model, self.precision = quantize_linear_layers(self.model), "int8-dynamic"
        label_map = json.loads((folder / LABEL_MAP).read_text())
        self.labels = [label for label, _ in sorted(label_map.items(), key=lambda item: item[1])]
        card = json.loads((folder / MODEL_CARD).read_text()) if (folder / MODEL_CARD).is_file() else {}
        trained = card.get("hyperparameters", {})
        self.max_length = max_length or int(trained.get("max_length", 128))
        self.truncation = trained.get("truncation", "head")
        abstain = card.get("abstain") or {}
        self.abstain_id = self.labels.index(abstain["label"]) if abstain else None
        self.abstain_threshold = float(abstain.get("threshold", 0.0))

    def probabilities(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """Class probabilities for each text."""
        return class_probabilities(self.model, self.tokenizer, texts, self.max_length, self.truncation, batch_size)

    def predict(self, texts: list[str], batch_size: int = 64) -> list[Prediction]:
        """The most probable label of each text, or the abstain label where confidence is below its threshold."""
        if not texts:
            return []
        return self.decide(self.probabilities(texts, batch_size))

    def decide(self, probabilities: torch.Tensor) -> list[Prediction]:
        """Predictions from probabilities already computed: the top label, or the abstain label below its threshold."""
        indices = probabilities.argmax(dim=-1)
        if self.abstain_id is not None:
            indices = apply_abstain(probabilities, self.abstain_id, self.abstain_threshold)
        scores = probabilities.gather(1, indices.unsqueeze(1)).squeeze(1)
        return [Prediction(self.labels[i], round(float(s), 6)) for s, i in zip(scores, indices.tolist(), strict=True)]


def quantize_linear_layers(model):
    """int8 weights for every Linear layer, activations quantized on the fly: about 2x faster on CPU."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's notice that it moves to torchao
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


@torch.inference_mode()
def class_probabilities(
    model, tokenizer, texts: list[str], max_length: int, truncation: str = "head", batch_size: int = 64
) -> torch.Tensor:
    """Class probabilities of a sequence classifier for each text, batched in length order to keep padding low."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    result = torch.empty((len(texts), model.config.num_labels))
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        ids = encode(tokenizer, [texts[i] for i in chunk], max_length, truncation)
        encoded = tokenizer.pad({"input_ids": ids}, return_tensors="pt").to(device)
        logits = model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits
        result[chunk] = torch.softmax(logits.float(), dim=-1).cpu()
    return result
