"""The causal language model fine-tuned on prompts and responses (supervised fine-tuning, LoRA by default)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from contracts.model_folder import CAUSAL_LM, GENERATOR
from trainers.bundle import GENERATION
from trainers.gates import generator_gate
from trainers.generative.params import SftParams
from trainers.kinds.kind import ModelKind


def read_params(text: str) -> SftParams:
    """SFT params from JSON."""
    return SftParams.from_json(text)


def train(bundle: Path, output: Path, params: SftParams, reporter, checkpoints: Path | None = None) -> dict:
    """Fine-tune on the bundle's prompts and responses (every rank), export from rank 0."""
    from trainers.generative.train import train_on_bundle

    return train_on_bundle(bundle, output, params, reporter, checkpoints)


def load(folder: Path, card: dict, max_length: int | None = None, quantize: bool = False):
    """The folder's model and tokenizer behind a `Generator`."""
    from trainers.generative.generation import Generator

    return Generator(folder)


def evaluate(folder: Path, bundle: Path) -> dict[str, object]:
    """Perplexity of the test responses and ROUGE-L of greedy answers to the test prompts."""
    from trainers.generative.evaluation import evaluate_causal_lm

    return evaluate_causal_lm(folder, bundle)


def draw(folder: Path, report: Mapping) -> dict[str, Path]:
    """No pictures: the answers' samples are in the report."""
    return {}


KIND = ModelKind(
    name=CAUSAL_LM,
    family=GENERATOR,
    trains_on=GENERATION,
    description="a causal language model fine-tuned on prompts and responses",
    continuable=False,
    read_params=read_params,
    train=train,
    load=load,
    evaluate=evaluate,
    gate=generator_gate,
    draw=draw,
)
