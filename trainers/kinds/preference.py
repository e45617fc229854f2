"""The causal language model tuned on preference pairs (DPO or ORPO over LoRA): served like any generator, judged
by how its rewards rank held-out chosen and rejected answers."""

from __future__ import annotations

from pathlib import Path

from contracts.model_folder import GENERATOR, PREFERENCE
from trainers.bundle import PAIRS
from trainers.gates import preference_gate
from trainers.kinds.causal_lm import draw, load  # served and drawn as any causal LM
from trainers.kinds.kind import ModelKind


def read_params(text: str):
    """Preference params from JSON."""
    from trainers.preference.params import PreferenceParams

    return PreferenceParams.from_json(text)


def train(bundle: Path, output: Path, params, reporter, checkpoints: Path | None = None) -> dict:
    """Tune on the bundle's pairs (every rank), export from rank 0."""
    from trainers.preference.train import train_on_pairs

    return train_on_pairs(bundle, output, params, reporter, checkpoints)


def evaluate(folder: Path, bundle: Path) -> dict[str, object]:
    """Preference accuracy and reward margin on the test pairs."""
    from trainers.preference.evaluation import evaluate_preference_model

    return evaluate_preference_model(folder, bundle)


KIND = ModelKind(
    name=PREFERENCE,
    family=GENERATOR,
    trains_on=PAIRS,
    description="a causal language model tuned on chosen and rejected answers (DPO or ORPO)",
    continuable=False,
    read_params=read_params,
    train=train,
    load=load,
    evaluate=evaluate,
    gate=preference_gate,
    draw=draw,
)
