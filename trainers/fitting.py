"""Fine-tuning an encoder sequence classifier with Lightning: the fit, its best epoch, and the exported folder.

A prototype head and an abstain threshold are fitted here too, after the fine-tune, on the same encoder.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from transformers import AutoTokenizer
from transformers.utils import logging as transformers_logging

from contracts.model_folder import TRANSFORMER
from trainers.abstain import fit_abstain_threshold
from trainers.bundle import read_bundle_manifest, read_split
from trainers.callbacks import EpochReport, StepProgress
from trainers.data import TextClassificationData
from trainers.default_model import resolve_model_source
from trainers.export import class_probabilities, export_model
from trainers.few_shot import meta_train, to_prototype_head
from trainers.model import SequenceClassifier, resolve_precision, without_lora
from trainers.params import TrainingParams
from trainers.reporter import Reporter
from trainers.reports import read_metrics_csv_text, training_curves_png
from trainers.tracking_logger import tracking_loggers
from trainers.transfer import GradualUnfreezing


@dataclass
class FitResult:
    """A fitted module with what export and reporting need."""

    module: object
    tokenizer: object
    manifest: object
    source: str
    precision: str
    seconds: float
    epochs: int
    is_global_zero: bool
    metrics_csv: str = ""  # per-step train loss and learning rate, per-epoch val metrics (Lightning's CSVLogger)
    best: dict[str, float] | None = None  # the exported epoch and its val macro F1, when the best one is kept


def fit(
    bundle: Path,
    params: TrainingParams,
    reporter: Reporter,
    callbacks: list | None = None,
    checkpoint_dir: Path | None = None,
) -> FitResult:
    """Fine-tune on a bundle's train split, validating on its val split each epoch.

    With `checkpoint_dir`, `last.ckpt` is written every `checkpoint_every_n_steps` steps and at each
    epoch end, and a run finding one there continues from it (weights, optimizer, position, RNG).
    """
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    L.seed_everything(params.seed, workers=True, verbose=False)
    manifest = read_bundle_manifest(bundle)
    if params.abstain_label and params.abstain_label not in manifest.label_map:
        raise ValueError(f"abstain_label {params.abstain_label!r} is not a label of the bundle {bundle}")
    source = resolve_model_source(params.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source)
    data = TextClassificationData(
        bundle,
        tokenizer,
        manifest.label_map,
        params.batch_size,
        params.max_length,
        params.seed,
        params.shuffle,
        params.truncation,
    )
    module = build_module(source, manifest.label_map, params, data)
    with tempfile.TemporaryDirectory(prefix="refinery-fit-") as scratch:
        work = checkpoint_dir or Path(scratch)
        extra, resume_from = training_callbacks(params, reporter, checkpoint_dir, work / "best")
        precision = resolve_precision(params.precision)
        logger = CSVLogger(work, name="", version="")
        loggers = [logger, *tracking_loggers()]
        trainer = build_trainer(params, precision, [*extra, *(callbacks or [])], loggers)
        reporter.log(f"training {source} on {manifest.row_counts} rows, precision {precision}")
        started = time.perf_counter()
        trainer.fit(module, datamodule=data, ckpt_path=resume_from)
        seconds = round(time.perf_counter() - started, 2)
        best = keep_best_weights(module, trainer)
        metrics_file = Path(logger.log_dir) / "metrics.csv"
        metrics_csv = metrics_file.read_text() if metrics_file.is_file() else ""
    module.model = without_lora(getattr(module.model, "_orig_mod", module.model))  # unwrap compile and LoRA
    return FitResult(
        module,
        tokenizer,
        manifest,
        source,
        precision,
        seconds,
        trainer.current_epoch,
        trainer.is_global_zero,
        metrics_csv,
        best,
    )


def keep_best_weights(module: L.LightningModule, trainer: L.Trainer) -> dict[str, float] | None:
    """Load the best val macro-F1 checkpoint's weights into the module, when one was kept; its epoch and score."""
    kept = [c for c in trainer.checkpoint_callbacks if c.monitor == "val_macro_f1" and c.best_model_path]
    if not kept:
        return None
    checkpoint = torch.load(kept[0].best_model_path, map_location="cpu", weights_only=False)  # our own file
    module.load_state_dict(checkpoint["state_dict"])
    return {"epoch": int(checkpoint["epoch"]), "val_macro_f1": round(float(kept[0].best_model_score), 6)}


def build_module(source: str, label_map: dict[str, int], params: TrainingParams, data):
    """The Lightning module, with class weights from the train split when asked for, compiled when asked for."""
    weights = None
    if params.class_weights == "balanced":
        counts = data.label_counts()
        weights = [sum(counts) / (len(counts) * c) if c else 0.0 for c in counts]
    module = SequenceClassifier(source, label_map, params, weights)
    if params.compile:
        module.model = torch.compile(module.model)
    return module


def training_callbacks(
    params: TrainingParams, reporter: Reporter, checkpoint_dir: Path | None, best_dir: Path
) -> tuple[list, str | None]:
    """Progress reports, early stopping, the best epoch and resumable checkpoints; and the checkpoint to resume from."""
    callbacks: list = [EpochReport(reporter.log), StepProgress(reporter.log, params.log_every_n_steps)]
    callbacks.append(LearningRateMonitor(logging_interval="step"))
    if params.unfreeze_layers_per_epoch:
        callbacks.append(GradualUnfreezing(params.unfreeze_layers_per_epoch))
    if params.early_stopping_patience:
        callbacks.append(EarlyStopping(monitor="val_macro_f1", mode="max", patience=params.early_stopping_patience))
    if params.save_best or params.early_stopping_patience:
        best = ModelCheckpoint(best_dir, "best", "val_macro_f1", mode="max", save_top_k=1, enable_version_counter=False)
        callbacks.append(best)
    resume_from = None
    if checkpoint_dir is not None:
        every = params.checkpoint_every_n_steps or None
        callbacks.append(
            ModelCheckpoint(dirpath=checkpoint_dir, save_top_k=0, save_last=True, every_n_train_steps=every)
        )
        last = checkpoint_dir / "last.ckpt"
        if params.resume and last.is_file():
            resume_from = str(last)
            reporter.log(f"resuming from {last}")
    return callbacks, resume_from


def build_trainer(params: TrainingParams, precision: str, callbacks: list, logger: list[Logger]) -> L.Trainer:
    """The Lightning Trainer: it owns devices, precision, strategy, checkpoints and the metrics log."""
    checkpointing = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    return L.Trainer(
        max_epochs=params.max_epochs,
        max_steps=params.max_steps,
        accelerator=params.accelerator,
        devices=params.lightning_devices(),
        num_nodes=params.num_nodes,
        strategy=params.strategy,
        precision=precision,
        accumulate_grad_batches=params.accumulate_grad_batches,
        gradient_clip_val=params.max_grad_norm or None,
        use_distributed_sampler=False,  # LengthBucketSampler shards by rank itself
        logger=logger,
        log_every_n_steps=params.log_every_n_steps,
        enable_checkpointing=checkpointing,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )


def train_encoder(
    bundle: Path, output: Path, params: TrainingParams, reporter: Reporter, checkpoints: Path | None = None
) -> dict[str, object]:
    """Fine-tune an encoder classifier on a bundle, export to `output` (rank 0), and return what was reported."""
    checkpoints = checkpoints or output.with_name(f".{output.name}.checkpoints")
    fitted = fit(bundle, params, reporter, checkpoint_dir=checkpoints)
    if not fitted.is_global_zero:
        return {}
    module, manifest = fitted.module, fitted.manifest
    prototypes = prototype_head(fitted, bundle, params) if params.prototype_head or params.meta_episodes else None
    abstain = fit_abstain(fitted, bundle, params) if params.abstain_label else None
    card = {
        "model_kind": TRANSFORMER,
        "model_source": params.model_name_or_path,
        "resolved_source": fitted.source,
        "hyperparameters": {**asdict(params), "precision": fitted.precision},
        "label_map": manifest.label_map,
        "dataset_versions": manifest.dataset_versions,
        "rules_hash": manifest.rules_hash,
        "row_counts": manifest.row_counts,
        "lineage": manifest.lineage,
        "validation_metrics": module.val_metrics,
        "train_seconds": fitted.seconds,
        "epochs": fitted.epochs,
        "exported_epoch": fitted.best,  # None: the last epoch's weights
        "head_carry_over": module.head_carry_over,
        "prototype_head": prototypes,  # labels whose head rows came from a fine-tuned source
        "abstain": abstain,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    extras = {"metrics.csv": fitted.metrics_csv.encode()}
    if fitted.metrics_csv:
        extras["training_curves.png"] = training_curves_png(read_metrics_csv_text(fitted.metrics_csv))
    export_model(module.model, fitted.tokenizer, manifest.label_map, card, output, manifest.text_recipe, extras)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the exported model supersedes them
    result = {
        "model_path": str(output),
        "dataset_versions": manifest.dataset_versions,
        "train_seconds": fitted.seconds,
        "precision": fitted.precision,
        **{f"val_{name}": value for name, value in module.val_metrics.items()},
        **({"abstain_threshold": abstain["threshold"]} if abstain else {}),
        **(
            {"exported_epoch": fitted.best["epoch"], "exported_val_macro_f1": fitted.best["val_macro_f1"]}
            if fitted.best
            else {}
        ),
    }
    reporter.report(result)
    return result


def prototype_head(fitted: FitResult, bundle: Path, params: TrainingParams) -> dict[str, object]:
    """Meta-train the encoder on episodes of the train split when asked, then make the head a prototype head."""
    label_map, model = fitted.manifest.label_map, fitted.module.model
    train_split, val_split = read_split(bundle, "train", label_map), read_split(bundle, "val", label_map)
    losses = []
    if params.meta_episodes:
        on_gpu = params.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        losses = meta_train(
            model,
            fitted.tokenizer,
            train_split,
            episodes=params.meta_episodes,
            max_length=params.max_length,
            learning_rate=params.learning_rate,
            seed=params.seed,
            device="cuda" if on_gpu else None,
        )
    info = to_prototype_head(model, fitted.tokenizer, train_split, val_split, label_map, params.max_length)
    probabilities = class_probabilities(model, fitted.tokenizer, val_split[0], params.max_length, params.truncation)
    hits = (probabilities.argmax(-1) == torch.tensor(val_split[1])).float()
    first, last = (round(sum(part) / len(part), 4) if part else None for part in (losses[:20], losses[-20:]))
    accuracy = round(float(hits.mean()), 6) if len(hits) else None
    return {
        **info,
        "val_accuracy": accuracy,
        "meta_episodes": params.meta_episodes,
        "episode_loss_first_20": first,
        "episode_loss_last_20": last,
    }


def fit_abstain(fitted: FitResult, bundle: Path, params: TrainingParams) -> dict[str, object]:
    """The abstain label's confidence threshold, fitted on the val split with the trained model."""
    label_map = fitted.manifest.label_map
    texts, targets = read_split(bundle, "val", label_map)
    model = fitted.module.model.eval()
    probabilities = class_probabilities(model, fitted.tokenizer, texts, params.max_length, params.truncation)
    abstain_id = label_map[params.abstain_label]
    threshold = fit_abstain_threshold(probabilities, torch.tensor(targets), abstain_id, params.abstain_budget)
    return {"label": params.abstain_label, "threshold": threshold, "budget": params.abstain_budget}
