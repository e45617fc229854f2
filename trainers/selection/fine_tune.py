"""A selection candidate that fine-tunes an encoder with Refinery's Lightning trainer, fully or with LoRA adapters.

Every fine-tune candidate gets the same budget (epochs, and optionally seconds) and keeps its best val epoch,
as `fine_tuned_model` does, so the matrix compares encoders and methods on equal terms.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from trainers.bundle import BundleManifest, write_bundle
from trainers.export import class_probabilities, quantize_linear_layers
from trainers.fitting import fit
from trainers.params import TrainingParams
from trainers.reporter import Reporter
from trainers.selection.candidates import CandidateData


class QuietReporter(Reporter):
    """The trainer's progress lines are not wanted inside a matrix; its final report goes nowhere."""

    def log(self, message: str) -> None:
        pass

    def report(self, metadata: dict[str, object]) -> None:
        pass


def _table(data: CandidateData, names: list[str]) -> pa.Table:
    return pa.table(
        {
            "doc_id": [str(i) for i in range(len(data.texts))],
            "text": data.texts,
            "label": [names[i] for i in data.labels.tolist()],
        }
    )


class FineTuneCandidate:
    """An encoder fine-tuned on the train split for a fixed budget, its best val epoch kept."""

    def __init__(self, name: str, params: TrainingParams, max_seconds: float = 0.0) -> None:
        self.name, self.max_seconds = name, max_seconds
        self.params = replace(params, early_stopping_patience=0, save_best=True, abstain_label="")
        self.model = self.tokenizer = None

    def fit(self, data: CandidateData, classes: int, val: CandidateData | None = None) -> None:
        from lightning.pytorch.callbacks import Timer

        names = [f"label_{i:05d}" for i in range(classes)]
        val = val if val is not None and len(val.texts) else data
        splits = {"train": _table(data, names), "val": _table(val, names), "test": _table(val, names).slice(0, 0)}
        manifest = BundleManifest(
            {n: i for i, n in enumerate(names)}, [], "", {k: v.num_rows for k, v in splits.items()}
        )
        callbacks = [Timer(duration=timedelta(seconds=self.max_seconds), interval="step")] if self.max_seconds else []
        with tempfile.TemporaryDirectory(prefix="refinery-candidate-") as scratch:
            bundle = write_bundle(Path(scratch) / "bundle", splits, manifest)
            fitted = fit(bundle, self.params, QuietReporter(), callbacks)
        self.model, self.tokenizer = fitted.module.model.eval(), fitted.tokenizer

    def predict_proba(self, data: CandidateData, model=None) -> np.ndarray:
        return class_probabilities(
            model or self.model, self.tokenizer, data.texts, self.params.max_length, self.params.truncation
        ).numpy()

    def quantized(self):
        """Prediction with int8 Linear layers, as the service runs on CPU."""
        int8 = quantize_linear_layers(self.model)
        return lambda data: self.predict_proba(data, int8)

    def parameters(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        return folder
