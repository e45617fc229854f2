"""The settings of a supervised fine-tune of a causal language model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Literal

from contracts.settings import setting

ATTENTION_CHOICES = ("auto", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")


@dataclass(frozen=True)
class SftParams:
    """What an SFT run does; `lora_rank: 0` trains every weight, else LoRA adapters on every linear layer."""

    model_kind: str = setting("causal_lm", "the trainer of these settings (trainers.kinds); set by the dataset's kind")
    model_name_or_path: str = setting("", "the base: a model folder, a GGUF file, a hub id; empty = SmolLM2-135M")
    learning_rate: float = setting(2e-4, "peak AdamW learning rate (of the adapters with LoRA)")
    max_epochs: int = setting(3, "passes over the train split")
    batch_size: int = setting(8, "packed rows per step and device")
    accumulate_grad_batches: int = setting(1, "micro-batches per optimizer step")
    max_length: int = setting(256, "tokens per row; a longer example is cut, its response's end first")
    packing: bool = setting(True, "several examples in one row up to max_length (each attends only to itself)")
    lora_rank: int = setting(8, "> 0 trains LoRA adapters on every linear layer; 0 trains every weight")
    lora_alpha: int = setting(16, "LoRA scaling")
    lora_dropout: float = setting(0.0, "dropout on the LoRA adapters' input")
    adapters: Literal["merge", "keep"] = setting("merge", "at export: merged into the weights, or kept beside the base")
    quantization: Literal["none", "4bit"] = setting("none", "4bit: QLoRA, the base in NF4 (bitsandbytes, a GPU)")
    gradient_checkpointing: bool = setting(False, "recompute activations: less memory, slower steps")
    attention: str = setting(
        "auto",
        "sdpa (a dense packing mask), flash_attention_2|3 or flex_attention (padding-free rows); "
        "auto: flash-attention on a GPU with flash_attn installed, else sdpa",
    )
    precision: str = setting("auto", "auto is bf16-mixed on a GPU that has it, else 32-true")
    accelerator: str = setting("auto", "Lightning accelerator: auto, cpu, gpu")
    devices: str = setting("1", "devices per node: a count such as '4', or auto")
    strategy: str = setting("auto", "auto or ddp (FSDP is refused: the export gathers every weight on rank 0)")
    max_grad_norm: float = setting(1.0, "gradients are clipped to this total norm; 0 = no clipping")
    weight_decay: float = setting(0.0, "AdamW weight decay")
    seed: int = setting(0, "seed of the adapters' weights, the order and dropout")
    eval_prompts: int = setting(32, "held-out prompts answered greedily for ROUGE-L and exact match")
    max_new_tokens: int = setting(64, "most tokens of each evaluation answer")
    log_every_n_steps: int = setting(10, "steps between progress lines and logged train losses")
    keep_best: bool = setting(True, "export the epoch with the lowest val loss, not the last one")

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
    max_length: int = setting(512, "tokens per row: a longer document is split into rows of this many")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.adapters == "keep":  # an adapted model is a base for later fine-tunes, which need whole weights
            raise ValueError("continued pre-training exports merged weights: adapters must be 'merge'")
