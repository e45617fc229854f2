"""The SFT loss without the logits nobody learns from: the decoder's hidden states at the positions that predict a
labelled token go through the output layer, the others never do. A prompt's and a padding's logits (batch x length
x vocabulary, upcast to fp32 for the loss) were most of an SFT step's memory on a 49k-token vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainers.generative.packing import IGNORE

# Architectures whose logits are the output layer applied to the decoder's last hidden states and nothing more;
# others (logit soft-capping, scaled logits) keep the model's own loss.
PLAIN_HEAD_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "phi3", "olmo2", "smollm3"})


def plain_head(model: torch.nn.Module) -> bool:
    """Whether the model's logits are exactly its output layer over its decoder's hidden states."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) not in PLAIN_HEAD_TYPES:
        return False
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return False
    return callable(getattr(model, "get_decoder", None)) and model.get_output_embeddings() is not None


@dataclass(frozen=True)
class LabelledLogits:
    """The logits of the positions that predict a labelled token, their targets, and each one's batch row."""

    logits: torch.Tensor  # (labelled tokens, vocabulary)
    targets: torch.Tensor
    rows: torch.Tensor


def labelled_logits(
    model: torch.nn.Module, inputs: dict[str, torch.Tensor], labels: torch.Tensor
) -> LabelledLogits | None:
    """The output layer over only the hidden states that predict a labelled token (the next-token shift applied);
    None for a model whose logits are more than its head, which then needs its own forward pass."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft wraps the model
    if not plain_head(base):
        return None
    hidden = base.get_decoder()(**inputs, use_cache=False).last_hidden_state
    targets = labels[:, 1:]
    labelled = targets != IGNORE
    logits = base.get_output_embeddings()(hidden[:, :-1][labelled])
    return LabelledLogits(logits, targets[labelled], labelled.nonzero()[:, 0])


def response_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the labelled tokens, as the model's own loss computes it, with only their logits."""
    inputs = {name: value for name, value in batch.items() if name != "labels"}
    found = labelled_logits(model, inputs, batch["labels"])
    if found is None:
        return model(**batch, use_cache=False).loss
    return torch.nn.functional.cross_entropy(found.logits.float(), found.targets)
