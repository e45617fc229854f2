"""Lightning callbacks that report a fine-tune as it runs: per-epoch val metrics and per-step progress."""

from __future__ import annotations

import time
from collections.abc import Callable

import lightning as L


class EpochReport(L.Callback):
    """One line per epoch: val accuracy and macro F1."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.write = log

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = getattr(pl_module, "val_metrics", None)
        if trainer.is_global_zero and metrics:
            accuracy, macro_f1 = metrics["accuracy"], metrics["macro_f1"]
            self.write(f"epoch {trainer.current_epoch}: val accuracy {accuracy:.4f}, macro F1 {macro_f1:.4f}")


def duration(seconds: float) -> str:
    """`1h02m`, `4m05s` or `12s`."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def batch_samples(batch: dict) -> int:
    """A batch's examples (its rows of labels)."""
    return len(batch["labels"])


class StepProgress(L.Callback):
    """Every `every` optimizer steps: step of total, train loss, units per second across all ranks (samples, or
    what `count` counts in a batch, such as tokens), and the ETA."""

    def __init__(
        self,
        log: Callable[[str], None],
        every: int,
        count: Callable[[dict], int] = batch_samples,
        unit: str = "samples",
    ) -> None:
        self.write, self.every = log, max(1, every)
        self.count, self.unit = count, unit
        self.started: float | None = None
        self.first_step = 0
        self.samples = 0
        self.reported_step = -1

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started, self.first_step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        self.samples += self.count(batch) * trainer.world_size
        step = trainer.global_step
        if not trainer.is_global_zero or step % self.every or step == self.reported_step or self.started is None:
            return
        self.reported_step = step
        elapsed = time.perf_counter() - self.started
        done = max(1, step - self.first_step)
        total = trainer.estimated_stepping_batches
        loss = trainer.callback_metrics.get("train_loss")
        share = f" ({100 * step / total:.0f}%)" if total and total != float("inf") else ""
        eta = f", ETA {duration(elapsed / done * (total - step))}" if total and total != float("inf") else ""
        shown = f", loss {float(loss):.4f}" if loss is not None else ""
        self.write(f"step {step}/{total}{share}{shown}, {self.samples / elapsed:.1f} {self.unit}/s{eta}")


class ValLossReport(L.Callback):
    """One line per epoch of a fine-tune judged by val loss: the loss and its perplexity."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.write = log

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after the module's own epoch end, which computes the loss over every rank's share
        loss, perplexity = trainer.callback_metrics.get("val_loss"), trainer.callback_metrics.get("val_perplexity")
        if trainer.is_global_zero and trainer.state.fn == "fit" and loss is not None:
            self.write(f"epoch {trainer.current_epoch}: val loss {float(loss):.4f}, perplexity {float(perplexity):.2f}")
