"""One model kind's behaviour: how it trains from a bundle, loads, is judged and drawn, and which routes serve it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from trainers.gates import GateSettings


@dataclass(frozen=True)
class ModelKind:
    """A kind of model folder (the card's `model_kind`), with everything that differs between kinds."""

    name: str
    family: str  # contracts.model_folder.CLASSIFIER or GENERATOR: the routes and batch assets that serve it
    trains_on: str  # the bundle kind it learns from (trainers.bundle: classification, generation, preference)
    description: str
    continuable: bool  # a warm start can fine-tune its folder further
    read_params: Callable[[str], object]  # the params JSON -> the kind's params (unknown keys refused by name)
    train: Callable[..., dict]  # (bundle, output, params, reporter, checkpoints) -> what was reported
    load: Callable[..., object]  # (folder, card, max_length=None, quantize=False) -> a Classifier or a Generator
    evaluate: Callable[[Path, Path], dict]  # (folder, bundle) -> the test report
    gate: Callable[[Mapping, GateSettings, dict | None], dict]  # (report, settings, production's metrics) -> verdict
    draw: Callable[[Path, Mapping], dict[str, Path]]  # (folder, report) -> the pictures written into the folder
