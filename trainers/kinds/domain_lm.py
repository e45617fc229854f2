"""The causal language model adapted to a domain by continued pre-training on its documents: served like any
generator, judged by held-out perplexity against the base it started from."""

from __future__ import annotations

from pathlib import Path

from contracts.model_folder import DOMAIN_LM, GENERATOR
from trainers.bundle import DOCUMENTS
from trainers.gates import domain_gate
from trainers.generative.params import PretrainingParams
from trainers.kinds.causal_lm import draw, load  # served and drawn as any causal LM
from trainers.kinds.kind import ModelKind


def read_params(text: str) -> PretrainingParams:
    """Continued pre-training params from JSON."""
    return PretrainingParams.from_json(text)


def train(bundle: Path, output: Path, params: PretrainingParams, reporter, checkpoints: Path | None = None) -> dict:
    """Continue pre-training on the bundle's documents (every rank), export from rank 0."""
    from trainers.generative.pretraining import train_on_documents

    return train_on_documents(bundle, output, params, reporter, checkpoints)


def evaluate(folder: Path, bundle: Path) -> dict[str, object]:
    """Perplexity of the test documents under the adapted model and under its base."""
    from trainers.generative.pretraining import evaluate_domain_lm

    return evaluate_domain_lm(folder, bundle)


KIND = ModelKind(
    name=DOMAIN_LM,
    family=GENERATOR,
    trains_on=DOCUMENTS,
    description="a causal language model adapted to a domain by continued pre-training on its documents",
    continuable=False,
    read_params=read_params,
    train=train,
    load=load,
    evaluate=evaluate,
    gate=domain_gate,
    draw=draw,
)
