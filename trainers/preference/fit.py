"""A preference fine-tune on Lightning: pairs tokenized and batched, DPO or ORPO over LoRA adapters, held-out
preference accuracy and reward margin before training and after each epoch, progress lines and metrics.csv."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import lightning as L
import torch

from trainers.generative.sft import lightning_trainer, load_base, loader
from trainers.model import resolve_precision
from trainers.preference.module import PreferenceModule
from trainers.preference.pairs import collate_pairs, tokenize_pair
from trainers.preference.params import PreferenceParams
from trainers.tracking_logger import tracking_loggers


@dataclass
class PreferenceResult:
    """What a preference fine-tune did: held-out preference metrics before and after, and the trained model."""

    module: PreferenceModule
    tokenizer: object
    train_pairs: int
    val_pairs: int
    before: dict[str, float]
    after: dict[str, float]
    seconds: float
    precision: str
    metrics_csv: str = ""


def pairs_in(batch: dict[str, torch.Tensor]) -> int:
    """The pairs of a batch (its rows are the chosen answers, then the rejected ones)."""
    return batch["input_ids"].shape[0] // 2


def fit_preferences(
    train: Sequence[Mapping],
    val: Sequence[Mapping],
    params: PreferenceParams,
    checkpoints: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> PreferenceResult:
    """Tune on `train` pairs, measuring held-out pairs before and after each epoch; resumes from
    `checkpoints/last.ckpt`; progress goes to `log`, the metrics to the result's `metrics.csv` text."""
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from trainers.callbacks import StepProgress

    if not train or not val:  # before the base model is loaded
        raise ValueError(f"preference tuning needs train and val pairs, got {len(train)} and {len(val)}")
    L.seed_everything(params.seed, workers=True, verbose=False)
    model, tokenizer = load_base(params)
    tokenized = {
        name: [tokenize_pair(tokenizer, record, params.max_length) for record in records]
        for name, records in (("train", train), ("val", val))
    }
    module = PreferenceModule(model, params.settings())
    callbacks: list = []
    if log is not None:
        callbacks.append(StepProgress(log, params.log_every_n_steps, pairs_in, "pairs"))
    if checkpoints is not None:
        callbacks.append(ModelCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0))
    resume = str(checkpoints / "last.ckpt") if checkpoints and (checkpoints / "last.ckpt").is_file() else None
    collate = partial(collate_pairs, pad_id=tokenizer.pad_token_id)
    with tempfile.TemporaryDirectory(prefix="refinery-preference-") as scratch:
        logger = CSVLogger(scratch, name="", version="")
        trainer = lightning_trainer(params, callbacks, [logger, *tracking_loggers()], checkpoints)
        val_loader = loader(tokenized["val"], params, collate, shuffle=False)
        trainer.validate(module, val_loader, verbose=False)
        before = module.val_history[-1]
        if log is not None:
            log(f"preference tuning ({params.objective}) on {len(train)} pairs; held out: {before}")
        started = time.perf_counter()
        trainer.fit(module, loader(tokenized["train"], params, collate, shuffle=True), val_loader, ckpt_path=resume)
        seconds = time.perf_counter() - started
        metrics_file = Path(logger.log_dir) / "metrics.csv"
        metrics_csv = metrics_file.read_text() if metrics_file.is_file() else ""
    after = module.val_history[-1]
    precision = resolve_precision(params.precision)
    return PreferenceResult(module, tokenizer, len(train), len(val), before, after, seconds, precision, metrics_csv)
