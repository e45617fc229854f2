"""Multi-task fine-tuning: one shared encoder, one head per task, losses weighted as chosen, missing labels masked.

A row without a label for some task (-100) adds nothing to that task's loss and still trains the others.
Weighting is `fixed` (per-task weights, 1 by default) or `uncertainty` (Kendall, Gal and Cipolla 2018: each
task's loss scaled by exp(-s) plus s, with s learned). The exported folder holds the encoder and tokenizer
(save_pretrained), `heads.safetensors` and `tasks.json` (each task's label map, primary task first).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch
from transformers import AutoModel, AutoTokenizer

from contracts.model_folder import MULTITASK, TASKS_FILE
from trainers.bundle import read_bundle_manifest, read_task_split
from trainers.data import TextClassificationData
from trainers.default_model import resolve_model_source
from trainers.encoding import encode
from trainers.metrics import classification_metrics
from trainers.model import clip_gradients, resolve_precision, warmup_then_linear_decay
from trainers.params import TrainingParams

HEADS_FILE = "heads.safetensors"
MASKED = -100


class MultiTaskNet(torch.nn.Module):
    """A pretrained encoder, mean-pooled, under one linear head per task."""

    def __init__(self, encoder, tasks: dict[str, dict[str, int]], dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder, self.tasks = encoder, tasks
        hidden = encoder.config.hidden_size
        self.dropout = torch.nn.Dropout(dropout)
        self.heads = torch.nn.ModuleDict({task: torch.nn.Linear(hidden, len(labels)) for task, labels in tasks.items()})

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = self.dropout((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))
        return {task: head(pooled) for task, head in self.heads.items()}


def task_losses(logits: dict[str, torch.Tensor], labels: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """One cross-entropy per task over the rows that have its label (0 for a task no row of the batch has)."""
    losses = []
    for index, task_logits in enumerate(logits.values()):
        targets = labels[:, index]
        if (targets != MASKED).any():
            losses.append(
                torch.nn.functional.cross_entropy(
                    task_logits.float(), targets, ignore_index=MASKED, label_smoothing=smoothing
                )
            )
        else:
            losses.append(task_logits.sum() * 0.0)
    return torch.stack(losses)


class MultiTaskModule(L.LightningModule):
    """Trains a MultiTaskNet; logs each task's val accuracy and macro F1, and their mean as val_macro_f1."""

    def __init__(
        self,
        source: str,
        tasks: dict[str, dict[str, int]],
        params: TrainingParams,
        weighting: str = "fixed",
        weights: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        if weighting not in ("fixed", "uncertainty"):
            raise ValueError(f"weighting must be fixed or uncertainty, not {weighting!r}")
        unknown = sorted(set(weights or {}) - set(tasks))
        if unknown:
            raise ValueError(f"weights name unknown tasks {unknown} (tasks: {', '.join(tasks)})")
        self.params, self.tasks, self.weighting = params, tasks, weighting
        self.net = MultiTaskNet(AutoModel.from_pretrained(source), tasks)
        self.register_buffer("fixed_weights", torch.tensor([(weights or {}).get(t, 1.0) for t in tasks]))
        self.log_variances = torch.nn.Parameter(torch.zeros(len(tasks)), requires_grad=weighting == "uncertainty")
        self._val: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []
        self.val_metrics: dict[str, dict[str, float]] = {}

    def combined_loss(self, losses: torch.Tensor) -> torch.Tensor:
        if self.weighting == "uncertainty":
            return (torch.exp(-self.log_variances) * losses + self.log_variances).sum()
        return (self.fixed_weights * losses).sum()

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        losses = task_losses(
            self.net(batch["input_ids"], batch["attention_mask"]), batch["labels"], self.params.label_smoothing
        )
        loss = self.combined_loss(losses)
        self.log("train_loss", loss, batch_size=len(batch["labels"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        logits = self.net(batch["input_ids"], batch["attention_mask"])
        self._val.append(({t: v.argmax(-1) for t, v in logits.items()}, batch["labels"]))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        labels = torch.cat([targets for _, targets in self._val])
        for index, task in enumerate(self.tasks):
            predicted = torch.cat([p[task] for p, _ in self._val])
            kept = labels[:, index] != MASKED
            self.val_metrics[task] = classification_metrics(predicted[kept], labels[kept, index], len(self.tasks[task]))
            self.log(f"val_{task}_macro_f1", self.val_metrics[task]["macro_f1"])
        self._val.clear()
        self.log("val_macro_f1", sum(m["macro_f1"] for m in self.val_metrics.values()) / len(self.val_metrics))

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        clip_gradients(self, optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self):
        head_lr = self.params.head_learning_rate or self.params.learning_rate
        groups = [
            {"params": list(self.net.encoder.parameters()), "lr": self.params.learning_rate},
            {"params": [*self.net.heads.parameters(), self.log_variances], "lr": head_lr},
        ]
        optimizer = torch.optim.AdamW(groups, weight_decay=self.params.weight_decay)
        total = max(1, self.trainer.datamodule.train_batches() * self.trainer.max_epochs)
        return warmup_then_linear_decay(optimizer, int(total * self.params.warmup_ratio), total)


class MultiTaskData(TextClassificationData):
    """A bundle's splits with one label id per task per row (-100 where missing)."""

    def __init__(self, bundle: Path, tokenizer, tasks: dict[str, dict[str, int]], **kwargs) -> None:
        super().__init__(bundle, tokenizer, next(iter(tasks.values())), **kwargs)
        self.tasks = tasks

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val"):
            if split not in self.splits:
                texts, labels = read_task_split(self.bundle, split, self.tasks)
                self.splits[split] = (encode(self.tokenizer, texts, self.max_length, self.truncation), labels)


def fit_multitask(
    bundle: Path,
    output: Path,
    params: TrainingParams,
    weighting: str = "fixed",
    weights: dict[str, float] | None = None,
) -> dict[str, object]:
    """Train every task of a multi-task bundle together and export the model folder; the val metrics per task."""
    L.seed_everything(params.seed, workers=True, verbose=False)
    manifest = read_bundle_manifest(bundle)
    if len(manifest.tasks) < 1:
        raise ValueError(f"{bundle}: the manifest declares no tasks")
    source = resolve_model_source(params.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source)
    data = MultiTaskData(
        bundle,
        tokenizer,
        manifest.tasks,
        batch_size=params.batch_size,
        max_length=params.max_length,
        seed=params.seed,
        shuffle=params.shuffle,
    )
    module = MultiTaskModule(source, manifest.tasks, params, weighting, weights)
    started = time.perf_counter()
    precision = resolve_precision(params.precision)
    trainer = L.Trainer(
        max_epochs=params.max_epochs,
        accelerator=params.accelerator,
        devices=1,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        gradient_clip_val=params.max_grad_norm or None,
        use_distributed_sampler=False,
    )
    trainer.fit(module, datamodule=data)
    seconds = round(time.perf_counter() - started, 2)
    card = {
        "model_kind": MULTITASK,
        "model_source": params.model_name_or_path,
        "tasks": list(manifest.tasks),
        "precision": precision,
        "weighting": weighting,
        "weights": weights or {},
        "train_seconds": seconds,
        "validation_metrics": module.val_metrics,
        "dataset_versions": manifest.dataset_versions,
        "hyperparameters": {"max_length": params.max_length, "truncation": params.truncation},
        "learned_log_variances": dict(zip(manifest.tasks, module.log_variances.tolist(), strict=True)),
    }
    export_multitask(module.net, tokenizer, manifest.tasks, card, output, manifest.text_recipe)
    return {
        "model_path": str(output),
        "train_seconds": seconds,
        "validation_metrics": module.val_metrics,
        "precision": precision,
    }


def export_multitask(
    net: MultiTaskNet, tokenizer, tasks: dict[str, dict[str, int]], card: dict, folder: Path, recipe: dict | None = None
) -> Path:
    """Write the encoder, tokenizer, heads and task label maps in one swap (the primary task's map as label_map)."""
    from safetensors.torch import save_file

    from trainers.export import stage_model_folder

    with stage_model_folder(folder, next(iter(tasks.values())), card, recipe) as staging:
        net.encoder.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        save_file({k: v.contiguous() for k, v in net.heads.state_dict().items()}, str(staging / HEADS_FILE))
        (staging / TASKS_FILE).write_text(json.dumps(tasks, indent=2))
    return folder


def load_multitask(folder: Path) -> tuple[MultiTaskNet, object, dict[str, dict[str, int]]]:
    """A multi-task model folder as its network (eval mode), tokenizer and task label maps."""
    from safetensors.torch import load_file

    tasks = json.loads((folder / TASKS_FILE).read_text())
    net = MultiTaskNet(AutoModel.from_pretrained(folder), tasks)
    net.heads.load_state_dict(load_file(str(folder / HEADS_FILE)))
    return net.eval(), AutoTokenizer.from_pretrained(folder), tasks


def train_multitask(bundle: Path, output: Path, params: TrainingParams, reporter) -> dict[str, object]:
    """The trainer entry point's multi-task path: train, export, and report each task's val metrics."""
    reporter.log(f"training {len(read_bundle_manifest(bundle).tasks)} tasks on one encoder ({params.task_weighting})")
    result = fit_multitask(bundle, output, params, params.task_weighting)
    flat = {
        f"val_{task}_{name}": value
        for task, metrics in result["validation_metrics"].items()
        for name, value in metrics.items()
        if name in ("accuracy", "macro_f1")
    }
    report = {
        "model_path": str(output),
        "train_seconds": result["train_seconds"],
        "precision": result["precision"],
        **flat,
    }
    reporter.report(report)
    return report
