"""Transfer on purpose: a warm start keeps the trained head's rows of labels it already knows, layer-wise
learning-rate decay, and gradual unfreezing of the body from the top."""

from __future__ import annotations

import json
import re
from pathlib import Path

import lightning as L
import torch

from trainers.registry import LABEL_MAP

_LAYER = re.compile(r"\.layers?\.(\d+)\.")


def source_label_map(source: str) -> dict[str, int] | None:
    """The label map of a Refinery model folder used as a source; None for a base model."""
    path = Path(source) / LABEL_MAP
    return json.loads(path.read_text()) if path.is_file() else None


def output_layer(model) -> torch.nn.Linear | None:
    """The Linear layer that produces the logits: the last one whose outputs are the labels."""
    found = None
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.out_features == model.config.num_labels:
            found = module
    return found


@torch.no_grad()
def carry_over_head(model, source: str, label_map: dict[str, int]) -> dict[str, int]:
    """Copy the source model's output rows into `model` for every label both know (rows follow label names, so a
    label set that grew or was reordered keeps what was learned); how many labels were carried and new."""
    from transformers import AutoModelForSequenceClassification

    known = source_label_map(source)
    if not known:
        return {"carried": 0, "new": len(label_map)}
    trained = AutoModelForSequenceClassification.from_pretrained(source)
    old, new = output_layer(trained), output_layer(model)
    shared = sorted(set(known) & set(label_map))
    for label in shared:
        new.weight[label_map[label]] = old.weight[known[label]]
        if new.bias is not None and old.bias is not None:
            new.bias[label_map[label]] = old.bias[known[label]]
    return {"carried": len(shared), "new": len(label_map) - len(shared)}


def layer_index(name: str, layers: int) -> int:
    """Depth of a body parameter: 0 for embeddings, i + 1 for transformer layer i, layers + 1 above the layers."""
    found = _LAYER.search(f".{name}")
    if found:
        return int(found.group(1)) + 1
    return 0 if "embed" in name else layers + 1


def body_layers(model) -> int:
    """How many transformer layers the body has."""
    config = model.config
    return int(
        getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", None) or getattr(config, "n_layer", 0)
    )


def decayed_learning_rate(base_lr: float, decay: float, depth: int, layers: int) -> float:
    """Layer-wise decay: the top layer learns at `base_lr`, each one below `decay` times slower."""
    return base_lr * decay ** max(0, layers + 1 - depth)


class GradualUnfreezing(L.Callback):
    """Epoch 0 trains the head only; each epoch after unfreezes `layers_per_epoch` more body layers from the top."""

    def __init__(self, layers_per_epoch: int) -> None:
        self.layers_per_epoch = layers_per_epoch

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        model = module.model.get_base_model() if hasattr(module.model, "get_base_model") else module.model
        model = getattr(model, "_orig_mod", model)
        layers, prefix = body_layers(model), f"{model.base_model_prefix}."
        lowest_trained = layers + 1 - trainer.current_epoch * self.layers_per_epoch
        for name, parameter in model.named_parameters():
            if name.startswith(prefix) and "lora_" not in name:
                parameter.requires_grad_(layer_index(name[len(prefix) :], layers) >= lowest_trained)
