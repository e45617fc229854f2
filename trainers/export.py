"""Export a fine-tuned model folder (safetensors, tokenizer, label map, model card) and load it back."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

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

    def __init__(self, folder: Path, max_length: int | None = None):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        self.folder = folder
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        label_map = json.loads((folder / LABEL_MAP).read_text())
        self.labels = [label for label, _ in sorted(label_map.items(), key=lambda item: item[1])]
        card = json.loads((folder / MODEL_CARD).read_text()) if (folder / MODEL_CARD).is_file() else {}
        trained = card.get("hyperparameters", {})
        self.max_length = max_length or int(trained.get("max_length", 128))
        self.truncation = trained.get("truncation", "head")

    @torch.inference_mode()
    def probabilities(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """Class probabilities for each text, batched in length order to keep padding low."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        result = torch.empty((len(texts), len(self.labels)))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids = encode(self.tokenizer, [texts[i] for i in chunk], self.max_length, self.truncation)
            encoded = self.tokenizer.pad({"input_ids": ids}, return_tensors="pt")
            logits = self.model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits
            result[chunk] = torch.softmax(logits.float(), dim=-1)
        return result

    def predict(self, texts: list[str], batch_size: int = 64) -> list[Prediction]:
        """The most probable label of each text."""
        if not texts:
            return []
        scores, indices = self.probabilities(texts, batch_size).max(dim=-1)
        return [Prediction(self.labels[i], round(float(s), 6)) for s, i in zip(scores, indices, strict=True)]
