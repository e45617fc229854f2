"""Training settings, defined once: the trainer reads them, the `fine_tuned_model` config is derived from them."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Literal

from contracts.settings import setting

Truncation = Literal["head", "tail", "head+tail"]
ClassWeights = Literal["none", "balanced"]
ModelKind = Literal["transformer", "tfidf"]
TaskWeighting = Literal["fixed", "uncertainty"]


@dataclass
class TrainingParams:
    """Hyperparameters and hardware settings of one fine-tune."""

    model_kind: ModelKind = setting("transformer", "transformer fine-tune, or a TF-IDF linear model (no GPU, seconds)")
    model_name_or_path: str = setting("default", "a model folder, a hub id, or 'default' (the embedded MiniLM)")
    max_epochs: int = setting(6, "most passes over the train split (early stopping usually ends sooner)")
    batch_size: int = setting(32, "examples per device and step")
    learning_rate: float = setting(8e-5, "peak learning rate of the pretrained body")
    head_learning_rate: float = setting(1e-3, "learning rate of the new classifier head; 0 = learning_rate")
    label_smoothing: float = setting(0.1, "cross-entropy label smoothing")
    layer_decay: float = setting(
        1.0, "layer-wise learning-rate decay: each body layer below the top learns this much slower"
    )
    unfreeze_layers_per_epoch: int = setting(
        0, "> 0: epoch 0 trains the head only, then this many more layers per epoch"
    )
    task_weighting: TaskWeighting = setting(
        "fixed", "multi-task loss: tasks weighted equally, or by learned uncertainty"
    )
    prototype_head: bool = setting(False, "export a prototypical-network head, so labels can be added from k examples")
    meta_episodes: int = setting(
        0, "episodes of prototypical meta-training after the fine-tune (implies prototype_head)"
    )
    lora_rank: int = setting(0, "> 0 trains LoRA adapters (peft) instead of every weight; merged at export")
    lora_alpha: int = setting(16, "LoRA scaling")
    weight_decay: float = setting(0.01, "AdamW weight decay of matrices")
    max_grad_norm: float = setting(1.0, "gradients are clipped to this total norm; 0 = no clipping")
    warmup_ratio: float = setting(0.1, "share of the steps that warm the learning rate up")
    max_length: int = setting(128, "tokens per text; longer texts are truncated")
    seed: int = setting(13, "seed of weights, order and dropout")
    accelerator: str = setting("auto", "Lightning accelerator: auto, cpu, gpu")
    devices: str = setting("auto", "devices per node: auto, a count such as '4', or a list")
    num_nodes: int = setting(1, "machines")
    strategy: str = setting("auto", "Lightning strategy: auto, ddp, fsdp, deepspeed")
    precision: str = setting("auto", "auto is bf16-mixed on GPUs that have it, else 32-true")
    accumulate_grad_batches: int = setting(1, "micro-batches per optimizer step")
    max_steps: int = setting(-1, "stop after this many optimizer steps; -1 = no limit")
    shuffle: bool = setting(True, "shuffle the train split each epoch")
    truncation: Truncation = setting("head", "which part of a long text is kept")
    class_weights: ClassWeights = setting("none", "balanced weighs each label by the inverse of its frequency")
    early_stopping_patience: int = setting(2, "epochs without a better val macro F1 before stopping; 0 = off")
    save_best: bool = setting(True, "export the epoch with the best val macro F1 (always so with early stopping)")
    log_every_n_steps: int = setting(10, "steps between logged train losses and progress lines")
    gradient_checkpointing: bool = setting(False, "recompute activations: less memory, slower steps")
    compile: bool = setting(False, "torch.compile the model (pays on GPUs for long runs)")
    checkpoint_every_n_steps: int = setting(200, "steps between resumable checkpoints")
    resume: bool = setting(True, "continue from the last checkpoint of an interrupted run")
    abstain_label: str = setting("", "e.g. 'oos': answered below a confidence threshold fitted on the val split")
    analyzer_language: str = setting("en", "a tfidf model's language of lemmas and stems")
    abstain_budget: float = setting(0.005, "in-scope val accuracy the abstain threshold may cost")

    def __post_init__(self) -> None:
        self.devices = str(self.devices)  # `--params '{"devices": 8}'` means "8"
        for name, choice in (
            ("truncation", Truncation),
            ("class_weights", ClassWeights),
            ("model_kind", ModelKind),
            ("task_weighting", TaskWeighting),
        ):
            allowed = choice.__args__
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")

    @classmethod
    def from_json(cls, text: str) -> TrainingParams:
        """Parse params; an unknown key is an error that names it."""
        values = json.loads(text or "{}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training params: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**values)

    def lightning_devices(self) -> int | str:
        """`devices` as Lightning takes it: a count as an int, anything else as given."""
        return int(self.devices) if self.devices.isdigit() else self.devices
