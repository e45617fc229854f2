"""The settings of a preference fine-tune: the SFT run's (base, LoRA, length, batch, hardware) and the objective's;
no torch, so the asset layer checks them before a trainer starts."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.settings import setting
from trainers.generative.params import SftParams

OBJECTIVES = ("dpo", "orpo")


@dataclass(frozen=True)
class PreferenceSettings:
    """The objective and its strength, and the optimizer's step size."""

    objective: str = "dpo"
    beta: float = 0.1  # DPO: how far the policy may move from the reference; ORPO: the odds-ratio term's weight
    learning_rate: float = 5e-5
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown preference objective {self.objective!r}; known: {', '.join(OBJECTIVES)}")


@dataclass(frozen=True)
class PreferenceParams(SftParams):
    """An SFT run's settings (the base, LoRA, length, batch, hardware) and the preference objective's."""

    model_kind: str = "preference"
    learning_rate: float = 5e-5
    max_epochs: int = 1
    batch_size: int = setting(4, "pairs per step and device: twice as many sequences in each forward pass")
    objective: str = setting("dpo", "dpo (against the base with adapters disabled) or orpo (reference-free)")
    beta: float = setting(0.1, "DPO: how far from the reference the policy may move; ORPO: the odds-ratio weight")
    attention: str = setting("sdpa", "sdpa only: a batch holds the chosen and rejected answers as padded, masked rows")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.settings()  # refuses an unknown objective
        if self.attention != "sdpa":
            raise ValueError(f"attention {self.attention!r}: preference batches need sdpa (padded, masked rows)")
        if self.objective == "dpo" and not self.lora_rank:
            raise ValueError("dpo takes its reference from the base with the adapters disabled: set lora_rank > 0")
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")

    def settings(self) -> PreferenceSettings:
        return PreferenceSettings(self.objective, self.beta, self.learning_rate, self.weight_decay)
