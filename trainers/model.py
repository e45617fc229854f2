"""The Lightning module: any AutoModelForSequenceClassification with AdamW and linear warmup/decay."""

from __future__ import annotations

import math
from dataclasses import asdict

import lightning as L
import torch
from transformers import AutoModelForSequenceClassification

from trainers.metrics import classification_metrics
from trainers.params import TrainingParams
from trainers.transfer import body_layers, carry_over_head, decayed_learning_rate, layer_index


def resolve_precision(precision: str) -> str:
    """'auto' is bf16 mixed precision on a GPU that has it, else 32-bit."""
    if precision != "auto":
        return precision
    return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"


def clip_gradients(module: L.LightningModule, optimizer, value: float | None, algorithm: str | None) -> None:
    """Clip as Lightning does, also for an optimizer that unscales inside its step (fused AdamW), which
    Lightning's mixed-precision plugin refuses to clip: the scaler (fp16 only) unscales first, then clip."""
    if not value:
        return
    if not getattr(optimizer, "_step_supports_amp_scaling", False):
        module.clip_gradients(optimizer, value, algorithm)
        return
    scaler = getattr(module.trainer.precision_plugin, "scaler", None)
    if scaler is not None:
        scaler.unscale_(optimizer)  # Lightning skips this for such optimizers; their step sees it was done
    parameters = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if algorithm == "value":
        torch.nn.utils.clip_grad_value_(parameters, value)
    else:
        torch.nn.utils.clip_grad_norm_(parameters, value)


class SequenceClassifier(L.LightningModule):
    """Fine-tunes a transformers sequence classifier; logs val accuracy and F1 each epoch."""

    def __init__(
        self,
        model_source: str,
        label_map: dict[str, int],
        params: TrainingParams | None = None,
        class_weights: list[float] | None = None,
    ):
        super().__init__()
        params = params or TrainingParams()
        self.save_hyperparameters({"model_source": model_source, "label_map": label_map, **asdict(params)})
        self.label_map = label_map
        self.model = AutoModelForSequenceClassification.from_pretrained(
            model_source,
            num_labels=len(label_map),
            id2label={i: label for label, i in label_map.items()},
            label2id=dict(label_map),
            ignore_mismatched_sizes=True,
        )
        self.head_carry_over = carry_over_head(self.model, model_source, label_map)
        self.model.train()  # from_pretrained returns eval mode, which would silently disable dropout
        if params.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        if params.lora_rank:
            self.model = with_lora(self.model, params.lora_rank, params.lora_alpha)
        weights = torch.tensor(class_weights, dtype=torch.float) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        self._val_predictions: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []
        self.val_metrics: dict[str, float] = {}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"])
        # Summed over samples and divided by the nominal micro-batch size (not the actual one), so that
        # k accumulated micro-batches, or k DDP ranks, give exactly the gradient of one k-times batch.
        loss = (
            torch.nn.functional.cross_entropy(
                logits.float(),
                batch["labels"],
                weight=self.class_weights,
                reduction="sum",
                label_smoothing=self.hparams.label_smoothing,
            )
            / self.hparams.batch_size
        )
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["labels"]))
        plain = torch.nn.functional.cross_entropy(logits.detach().float(), batch["labels"])  # as val_loss is
        self.log("train_ce", plain, batch_size=len(batch["labels"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = torch.nn.functional.cross_entropy(logits, batch["labels"])
        self.log("val_loss", loss, sync_dist=True, batch_size=len(batch["labels"]))
        self._val_predictions.append(logits.argmax(dim=-1))
        self._val_targets.append(batch["labels"])

    def on_validation_epoch_end(self) -> None:
        if not self._val_predictions:
            return
        predictions = self.all_gather(torch.cat(self._val_predictions)).reshape(-1)
        targets = self.all_gather(torch.cat(self._val_targets)).reshape(-1)
        self._val_predictions.clear()
        self._val_targets.clear()
        self.val_metrics = classification_metrics(predictions.cpu(), targets.cpu(), len(self.label_map))
        for name in ("accuracy", "macro_f1"):
            self.log(f"val_{name}", self.val_metrics[name], sync_dist=False, rank_zero_only=True)

    def on_train_batch_start(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        # Dropout masks follow from (seed, step, rank) alone, so a run resumed from a checkpoint draws
        # exactly the masks of an uninterrupted one, whatever else used the global RNG in between.
        trainer = self.trainer
        torch.manual_seed(self.hparams.seed * 1_000_003 + trainer.global_step * trainer.world_size + self.global_rank)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        clip_gradients(self, optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self):
        base_lr = self.hparams.learning_rate
        head_lr = self.hparams.head_learning_rate or base_lr
        # The head is what the pretrained checkpoint lacks (classifier, pooler of some models); it starts
        # from random weights and can learn faster than the body without disturbing it.
        model = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model  # under LoRA
        base_prefix = f"{model.base_model_prefix}."
        layers, layer_decay = body_layers(model), self.hparams.layer_decay
        groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                lr = head_lr
                if name.startswith(base_prefix):
                    depth = layer_index(name[len(base_prefix) :], layers)
                    lr = decayed_learning_rate(base_lr, layer_decay, depth, layers)
                decay = 0.0 if parameter.ndim < 2 else self.hparams.weight_decay
                groups.setdefault((lr, decay), []).append(parameter)
        groups = [{"params": params, "lr": lr, "weight_decay": decay} for (lr, decay), params in groups.items()]
        # The fused kernel is one pass over all parameters: 4x faster than foreach on CPU, faster on GPUs too.
        # Not under FSDP: each rank holds a shard, so only FSDP's own clipping (Lightning's path) sees the global norm.
        sharded = "fsdp" in type(self.trainer.strategy).__name__.lower()
        fused = self.device.type in ("cuda", "cpu", "xpu", "mps") and not sharded
        optimizer = torch.optim.AdamW(groups, lr=base_lr, fused=fused or None)
        # Not trainer.estimated_stepping_batches: it builds the train loader before a resumed run's
        # loop state is restored, and the loader would then never get its position back.
        trainer = self.trainer
        steps_per_epoch = math.ceil(trainer.datamodule.train_batches() / trainer.accumulate_grad_batches)
        total = (
            steps_per_epoch * trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else trainer.max_steps
        )
        if trainer.max_steps and trainer.max_steps > 0:
            total = min(total, trainer.max_steps)
        total = max(1, total)
        return warmup_then_linear_decay(optimizer, int(total * self.hparams.warmup_ratio), total)


def warmup_then_linear_decay(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> dict:
    """Lightning's optimizer config: the learning rate rises linearly for `warmup` steps, then falls to 0 at `total`."""

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def head_module_names(model) -> list[str]:
    """The classifier's own modules: the top-level children with parameters besides the pretrained body."""
    return [
        name
        for name, child in model.named_children()
        if name != model.base_model_prefix and any(True for _ in child.parameters())
    ]


def with_lora(model, rank: int, alpha: int):
    """Wrap a classifier in LoRA adapters (peft): low-rank updates of the body, a fully trained head."""
    from peft import LoraConfig, TaskType, get_peft_model
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    heads = head_module_names(model)
    targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model.config.model_type, "all-linear")
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=rank,
        lora_alpha=alpha,
        target_modules=targets,
        exclude_modules=heads,
        modules_to_save=heads,
    )
    return get_peft_model(model, config)


def without_lora(model):
    """The plain transformers model, with LoRA updates merged into its weights when it has them."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
