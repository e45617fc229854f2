"""The settings of a supervised fine-tune of a causal language model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Literal

ATTENTION_CHOICES = ("auto", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")


@dataclass(frozen=True)
class SftParams:
    """What an SFT run does; `lora_rank: 0` trains every weight, else LoRA adapters on every linear layer."""

    model_kind: str = "causal_lm"  # trainers.kinds: the kind that trains on these params
    model_name_or_path: str = ""
    learning_rate: float = 2e-4
    max_epochs: int = 3
    batch_size: int = 8  # packed rows per step (per device)
    accumulate_grad_batches: int = 1
    max_length: int = 256  # tokens per row; an example longer than this is cut (response end first)
    packing: bool = True
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    adapters: Literal["merge", "keep"] = "merge"  # at export: merged into the weights, or saved beside the base
    quantization: Literal["none", "4bit"] = "none"  # 4bit: QLoRA (the base in NF4 through bitsandbytes, on a GPU)
    gradient_checkpointing: bool = False
    # sdpa (a dense packing mask), or flash_attention_2 / flex_attention (padding-free batches: each example's
    # bounds from its position ids); auto: flash-attention on a GPU where flash_attn is installed, else sdpa
    attention: str = "auto"
    precision: str = "auto"  # bf16-mixed on a GPU that has it, else 32-true
    accelerator: str = "auto"
    devices: str = "1"
    strategy: str = "auto"  # ddp (FSDP is refused: the export gathers full weights on rank 0 alone)
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    seed: int = 0
    eval_prompts: int = 32  # held-out prompts answered greedily for ROUGE-L and exact match
    max_new_tokens: int = 64
    log_every_n_steps: int = 10  # steps between progress lines and logged train losses
    keep_best: bool = True  # export the epoch with the lowest val loss, not the last one

    def __post_init__(self) -> None:
        if self.adapters not in ("merge", "keep"):
            raise ValueError(f"adapters must be 'merge' or 'keep', got {self.adapters!r}")
        if self.attention not in ATTENTION_CHOICES:  # eager attention adds a boolean mask instead of applying it
            raise ValueError(f"attention must be one of {', '.join(ATTENTION_CHOICES)}, got {self.attention!r}")
        if self.max_length < 8 or self.batch_size < 1 or self.max_epochs < 1 or self.lora_rank < 0:
            raise ValueError("max_length >= 8, batch_size >= 1, max_epochs >= 1 and lora_rank >= 0 are required")
        if self.adapters == "keep" and not self.lora_rank:
            raise ValueError("adapters: keep needs LoRA (lora_rank > 0)")
        if "fsdp" in self.strategy or "deepspeed" in self.strategy:
            raise ValueError(
                f"strategy {self.strategy!r}: SFT exports from rank 0 alone, which needs every weight "
                "there; use ddp (with LoRA or QLoRA for models that do not fit one device)"
            )
        if self.quantization not in ("none", "4bit"):
            raise ValueError(f"quantization must be 'none' or '4bit', got {self.quantization!r}")
        if self.quantization == "4bit" and (not self.lora_rank or self.adapters == "merge"):
            raise ValueError(
                "quantization: 4bit (QLoRA) trains LoRA adapters over a frozen 4-bit base: set lora_rank "
                "and adapters: keep (merging into 4-bit weights would lose them)"
            )

    @classmethod
    def from_json(cls, text: str) -> SftParams:
        """Params from JSON; an unknown key is refused, naming it."""
        values = json.loads(text or "{}")
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown SFT settings: {', '.join(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class PretrainingParams(SftParams):
    """Continued pre-training: the SFT run's settings, with the loss on every token of the documents."""

    model_kind: str = "domain_lm"
    learning_rate: float = 1e-4
    max_epochs: int = 1
    max_length: int = 512  # tokens per row: a longer document is split into rows of this many

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.adapters == "keep":  # an adapted model is a base for later fine-tunes, which need whole weights
            raise ValueError("continued pre-training exports merged weights: adapters must be 'merge'")
