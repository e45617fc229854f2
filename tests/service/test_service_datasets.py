"""One service answers for every dataset's production model: /predict/{dataset}, /health lists them."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.request import urlopen

import pytest

from service.app import build_app
from service.server import ServiceThread
from tests.conftest import build_tiny_model
from tests.servers import call
from trainers.registry import promote


def deploy_tiny_model(models: Path, dataset: str, labels: list[str], source: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from trainers.export import export_model

    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=len(labels), ignore_mismatched_sizes=True
    )
    label_map = {label: index for index, label in enumerate(labels)}
    export_model(model, AutoTokenizer.from_pretrained(source), label_map, {}, models / dataset / f"{dataset}-v1")
    promote(models / dataset, f"{dataset}-v1")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home's models folder with two datasets' production models, each with its own label set."""
    root = tmp_path_factory.mktemp("home")
    source = build_tiny_model(root / "tiny", "bert")
    deploy_tiny_model(root / "models", "tickets", ["vpn", "printer"], source)
    deploy_tiny_model(root / "models", "sentiment", ["positive", "negative", "neutral"], source)
    return root / "models"


def test_one_service_serves_each_dataset_with_its_own_labels(models: Path) -> None:
    with ServiceThread(build_app(models, token="")) as service:
        with urlopen(f"{service.url}/health", timeout=30) as response:
            health = json.loads(response.read())
        assert set(health["models"]) == {"tickets", "sentiment"}
        assert health["models"]["sentiment"]["model_version"] == "sentiment-v1"
        status, tickets = call(f"{service.url}/predict/tickets", {"texts": ["vpn is down"]})
        assert status == 200 and tickets["dataset"] == "tickets"
        assert tickets["predictions"][0]["label"] in ("vpn", "printer")
        status, sentiment = call(f"{service.url}/predict/sentiment", {"texts": ["what a lovely day"]})
        assert status == 200 and sentiment["predictions"][0]["label"] in ("positive", "negative", "neutral")


def test_predict_without_a_dataset_names_the_served_ones_and_an_unknown_one_is_404(models: Path) -> None:
    with ServiceThread(build_app(models, token="")) as service:
        status, answer = call(f"{service.url}/predict", {"texts": ["vpn is down"]})
        assert status == 400 and "sentiment, tickets" in answer["error"] and "/predict/{dataset}" in answer["error"]
        status, answer = call(f"{service.url}/predict/weather", {"texts": ["sunny"]})
        assert status == 404 and "no model for dataset 'weather'" in answer["error"]


def test_a_dataset_deployed_while_the_service_runs_is_served_on_its_first_request(tmp_path: Path) -> None:
    source = build_tiny_model(tmp_path / "tiny", "bert")
    deploy_tiny_model(tmp_path / "models", "tickets", ["vpn", "printer"], source)
    with ServiceThread(build_app(tmp_path / "models", token="")) as service:
        deploy_tiny_model(tmp_path / "models", "orders", ["late", "lost"], source)
        status, answer = call(f"{service.url}/predict/orders", {"texts": ["where is my parcel"]})
        assert status == 200 and answer["predictions"][0]["label"] in ("late", "lost")


def test_a_dataset_whose_model_does_not_load_is_reported_and_the_others_are_served(models: Path, tmp_path) -> None:
    import shutil

    home_models = tmp_path / "models"
    shutil.copytree(models, home_models)
    (home_models / "drafts").mkdir()
    (home_models / "drafts" / "aliases.json").write_text("{}")  # a registry with no production alias yet
    (home_models / "orders" / "orders-v1").mkdir(parents=True)
    (home_models / "orders" / "orders-v1" / "model_card.json").write_text("{not json")
    (home_models / "orders" / "aliases.json").write_text('{"production": "orders-v1"}')
    with ServiceThread(build_app(home_models, token="")) as service:
        with urlopen(f"{service.url}/health", timeout=30) as response:
            health = json.loads(response.read())
        assert health["status"] == "degraded" and set(health["models"]) == {"tickets", "sentiment"}
        assert set(health["failed"]) == {"drafts", "orders"}
        status, answer = call(f"{service.url}/predict/tickets", {"texts": ["vpn is down"]})
        assert status == 200
        status, answer = call(f"{service.url}/predict/orders", {"texts": ["where is my parcel"]})
        assert status == 503 and "the model of dataset 'orders' does not load" in answer["error"]
        assert "see the service log" in health["failed"]["orders"] and str(tmp_path) not in json.dumps(health)
