"""Shared fixtures: a temporary REFINERY_HOME with a real Dagster instance, tiny models built in code."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from assets.storage.home import RefineryHome
from tests.servers import free_port


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


TINY_CONFIGS: dict[str, dict[str, object]] = {
    "bert": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
    "roberta": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "pad_token_id": 0,
    },
    "distilbert": {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64},
    "albert": {
        "embedding_size": 16,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    },
    "xlnet": {"d_model": 32, "n_layer": 2, "n_head": 2, "d_inner": 64, "pad_token_id": 0},
    "longformer": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "attention_window": [8, 8],
        "pad_token_id": 0,
    },
}
NO_DROPOUT = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "dropout",
    "attention_dropout",
    "seq_classif_dropout",
    "classifier_dropout_prob",
    "summary_last_dropout",
)


def build_tiny_model(folder: Path, model_type: str = "bert", dropout: bool = True) -> Path:
    """Save a randomly initialised 2-layer `model_type` classifier with the embedded model's tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from trainers.default_model import default_model_folder

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(default_model_folder())
    settings = {"vocab_size": tokenizer.vocab_size, **TINY_CONFIGS[model_type]}
    if model_type != "xlnet":  # XLNet has no position limit and refuses the setting
        settings["max_position_embeddings"] = 160
    if not dropout:
        settings.update(dict.fromkeys(NO_DROPOUT, 0.0))
    config = AutoConfig.for_model(model_type, **settings)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_small_bundle(folder: Path, per_label: int = 12, seed: int = 3) -> Path:
    """A bundle of generated tickets, `per_label` per label in train and 3 per label in val and test."""
    import pyarrow as pa

    from assets.demo.tickets import generate_tickets
    from trainers.bundle import BundleManifest, write_bundle

    records, _ = generate_tickets(3000, seed)
    by_label: dict[str, list[str]] = {}
    for record in records:
        if record["category"] and record["body"].strip() and len(record["body"]) < 300:
            by_label.setdefault(record["category"], []).append(record["body"])
    labels = sorted(by_label)[:3]
    splits = {"train": [], "val": [], "test": []}
    for label in labels:
        texts = by_label[label]
        splits["train"] += [(t, label) for t in texts[:per_label]]
        splits["val"] += [(t, label) for t in texts[per_label : per_label + 3]]
        splits["test"] += [(t, label) for t in texts[per_label + 3 : per_label + 6]]
    tables = {
        name: pa.table(
            {
                "doc_id": [f"{name}{i}" for i in range(len(rows))],
                "text": [t for t, _ in rows],
                "label": [label for _, label in rows],
            }
        )
        for name, rows in splits.items()
    }
    manifest = BundleManifest(
        {label: i for i, label in enumerate(labels)}, ["test"], "rules", {k: len(v) for k, v in splits.items()}
    )
    return write_bundle(folder, tables, manifest)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT model folder, built once per session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama-architecture causal LM folder (random weights, a real tokenizer), built once per session; the
    tests only read it."""
    from trainers.generative.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-llama") / "model")


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server in its own process (delta-rs holds the GIL while it waits on the network, so a server
    thread in this process would never answer) with a bucket `lake`, and the AWS_* variables delta-rs reads."""
    import boto3

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "refinery",
        "AWS_SECRET_ACCESS_KEY": "not-a-secret",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="lake")
                break
            except Exception:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)
