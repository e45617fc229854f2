"""Shared fixtures: a temporary REFINERY_HOME with a real Dagster instance, tiny models built in code."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from dagster_project.home import RefineryHome


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RefineryHome:
    """A fresh REFINERY_HOME under tmp_path, exported to the environment like the CLI does."""
    refinery_home = RefineryHome(tmp_path / "refinery").ensure()
    monkeypatch.setenv("REFINERY_HOME", str(refinery_home.root))
    monkeypatch.setenv("DAGSTER_HOME", str(refinery_home.dagster))
    return refinery_home


@pytest.fixture
def instance(home: RefineryHome):
    """A real, persistent DagsterInstance in the temporary home."""
    with dg.instance_for_test(temp_dir=str(home.dagster)) as test_instance:
        yield test_instance


def build_tiny_model(folder: Path, model_type: str = "bert") -> Path:
    """Save a randomly initialised 2-layer model of `model_type` with the embedded model's tokenizer."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from trainers.default_model import default_model_folder

    tokenizer = AutoTokenizer.from_pretrained(default_model_folder())
    config = AutoConfig.for_model(
        model_type,
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=160,
    )
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT model folder, built once per session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"))
