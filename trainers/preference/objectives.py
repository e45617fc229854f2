"""The preference objectives on sequence log-probabilities: DPO (sigmoid loss against a reference model) and
ORPO (reference-free: the chosen answer's NLL plus an odds-ratio term), with the metrics both report."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainers.generative.packing import IGNORE


@dataclass(frozen=True)
class ResponseLogps:
    """Per sequence: the summed log-probability of its response tokens, and how many there are."""

    total: torch.Tensor
    tokens: torch.Tensor

    @property
    def mean(self) -> torch.Tensor:
        """The mean log-probability per response token (ORPO's length-normalised likelihood)."""
        return self.total / self.tokens.clamp(min=1)


@dataclass(frozen=True)
class PreferenceLoss:
    """A batch's loss and the implicit rewards of its chosen and rejected answers."""

    loss: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor

    def metrics(self) -> dict[str, float]:
        """Reward margin, chosen and rejected rewards, and preference accuracy (chosen rewarded above rejected)."""
        margin = self.chosen_rewards - self.rejected_rewards
        return {
            "loss": float(self.loss.detach()),
            "reward_margin": float(margin.mean()),
            "chosen_reward": float(self.chosen_rewards.mean()),
            "rejected_reward": float(self.rejected_rewards.mean()),
            "preference_accuracy": float((margin > 0).float().mean()),
        }


def response_logps(logits: torch.Tensor, labels: torch.Tensor) -> ResponseLogps:
    """Sum and count of the log-probabilities of each sequence's labelled tokens (the next-token shift applied)."""
    shifted_logits, shifted_labels = logits[:, :-1].float(), labels[:, 1:]
    counted = shifted_labels != IGNORE
    picked = torch.gather(shifted_logits.log_softmax(-1), 2, shifted_labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return ResponseLogps((picked * counted).sum(-1), counted.sum(-1))


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
) -> PreferenceLoss:
    """DPO's sigmoid loss, -log σ(β((π_c - ref_c) - (π_r - ref_r))), on summed response log-probabilities."""
    chosen_rewards = beta * (policy_chosen - reference_chosen)
    rejected_rewards = beta * (policy_rejected - reference_rejected)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return PreferenceLoss(loss, chosen_rewards.detach(), rejected_rewards.detach())


def orpo_loss(chosen: ResponseLogps, rejected: ResponseLogps, weight: float) -> PreferenceLoss:
    """ORPO: the chosen answers' NLL per token plus `weight` × -log σ(log odds(chosen) - log odds(rejected)),
    odds(y) = p / (1 - p) with p the mean per-token likelihood; the rewards are `weight` × the log odds."""
    log_odds = (chosen.mean - rejected.mean) - (
        torch.log1p(-torch.exp(chosen.mean).clamp(max=1 - 1e-6))
        - torch.log1p(-torch.exp(rejected.mean).clamp(max=1 - 1e-6))
    )
    ratio = -F.logsigmoid(log_odds)
    loss = (-chosen.mean + weight * ratio).mean()
    return PreferenceLoss(loss, (weight * chosen.mean).detach(), (weight * rejected.mean).detach())
