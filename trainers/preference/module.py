"""The preference fine-tune as a Lightning module: DPO against the base model with its adapters switched off (no
second copy in memory), or reference-free ORPO; per-step metrics for progress, metrics.csv and the curves."""

from __future__ import annotations

from contextlib import nullcontext

import lightning as L
import torch

from trainers.generative.response_loss import labelled_logits
from trainers.preference.objectives import PreferenceLoss, ResponseLogps, dpo_loss, orpo_loss, response_logps
from trainers.preference.params import PreferenceSettings


def pair_logps(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[ResponseLogps, ResponseLogps]:
    """The chosen and the rejected answers' response log-probabilities, from one forward pass over both (the
    output layer applied only where a response token is predicted, when the architecture allows)."""
    inputs = {name: batch[name] for name in ("input_ids", "attention_mask", "position_ids")}
    found = labelled_logits(model, inputs, batch["labels"])
    if found is None:
        logps = response_logps(model(**inputs).logits, batch["labels"])
    else:
        picked = found.logits.float().log_softmax(-1).gather(1, found.targets.unsqueeze(1)).squeeze(1)
        rows = batch["input_ids"].shape[0]
        total = torch.zeros(rows, dtype=picked.dtype, device=picked.device).index_add(0, found.rows, picked)
        logps = ResponseLogps(total, torch.bincount(found.rows, minlength=rows))
    half = batch["input_ids"].shape[0] // 2
    return (
        ResponseLogps(logps.total[:half], logps.tokens[:half]),
        ResponseLogps(logps.total[half:], logps.tokens[half:]),
    )


def reference_logps(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[ResponseLogps, ResponseLogps]:
    """The same log-probabilities from the base model: the LoRA adapters disabled for the pass, no gradient."""
    switched_off = model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext()
    with torch.no_grad(), switched_off:
        return pair_logps(model, batch)


def preference_loss(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], settings: PreferenceSettings
) -> PreferenceLoss:
    """The batch's loss under the settings' objective."""
    chosen, rejected = pair_logps(model, batch)
    if settings.objective == "orpo":
        return orpo_loss(chosen, rejected, settings.beta)
    if not hasattr(model, "disable_adapter"):
        raise ValueError("DPO here takes its reference from the base with adapters disabled: train with LoRA")
    reference_chosen, reference_rejected = reference_logps(model, batch)
    return dpo_loss(chosen.total, rejected.total, reference_chosen.total, reference_rejected.total, settings.beta)


def without_dropout(model: torch.nn.Module) -> torch.nn.Module:
    """The model with every dropout layer's probability set to 0."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


class PreferenceModule(L.LightningModule):
    """A causal LM with LoRA adapters, trained on batches of pairs; logs each step's loss, rewards and accuracy."""

    def __init__(self, model: torch.nn.Module, settings: PreferenceSettings) -> None:
        super().__init__()
        # train mode, dropout off: a policy and its reference (the same weights, adapters off) must see the same
        # network, as TRL's disable_dropout does; from_pretrained hands over an eval-mode model, which Lightning keeps
        self.model, self.settings = without_dropout(model.train()), settings
        self.step_metrics: list[dict[str, float]] = []
        self.val_history: list[dict[str, float]] = []  # held-out accuracy and margin, per validation
        self._val = torch.zeros(3, dtype=torch.float64)  # accuracy x pairs, margin x pairs, pairs

    def training_step(self, batch: dict[str, torch.Tensor], _: int) -> torch.Tensor:
        result = preference_loss(self.model, batch, self.settings)
        metrics = result.metrics()
        self.step_metrics.append({"step": self.global_step, **metrics})
        pairs = batch["input_ids"].shape[0] // 2
        self.log_dict({f"train_{name}": value for name, value in metrics.items()}, batch_size=pairs)
        return result.loss

    def validation_step(self, batch: dict[str, torch.Tensor], _: int) -> None:
        metrics = preference_loss(self.model, batch, self.settings).metrics()
        pairs = batch["input_ids"].shape[0] // 2
        self._val += torch.tensor([metrics["preference_accuracy"] * pairs, metrics["reward_margin"] * pairs, pairs])

    def on_validation_epoch_end(self) -> None:
        # summed over every rank's share of the held-out pairs
        accuracy, margin, pairs = self.trainer.strategy.reduce(self._val.to(self.device), reduce_op="sum").tolist()
        self._val.zero_()
        held_out = {
            "preference_accuracy": round(accuracy / max(pairs, 1), 6),
            "reward_margin": round(margin / max(pairs, 1), 6),
        }
        self.val_history.append(held_out)
        self.log_dict({f"val_{name}": value for name, value in held_out.items()})

    def configure_optimizers(self) -> torch.optim.Optimizer:
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        fused = torch.cuda.is_available() or None
        return torch.optim.AdamW(
            trainable, lr=self.settings.learning_rate, weight_decay=self.settings.weight_decay, fused=fused
        )


@torch.no_grad()
def held_out_preferences(model: torch.nn.Module, batches, settings: PreferenceSettings) -> dict[str, float]:
    """Preference accuracy and mean reward margin over held-out batches of pairs (weighted by pairs)."""
    totals, pairs = {"preference_accuracy": 0.0, "reward_margin": 0.0}, 0
    model.eval()
    for batch in batches:
        metrics = preference_loss(model, batch, settings).metrics()
        size = batch["input_ids"].shape[0] // 2
        for name in totals:
            totals[name] += metrics[name] * size
        pairs += size
    return {name: round(value / max(pairs, 1), 6) for name, value in totals.items()} | {"pairs": pairs}
