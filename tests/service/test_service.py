"""The model service over real HTTP on 127.0.0.1: predictions, every bad input, auth, metrics, logging, reload."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from service.app import build_app
from service.requests import MAX_CHARS, MAX_TEXTS
from service.server import ServiceThread
from tests.conftest import build_tiny_model
from tests.servers import call
from trainers.registry import promote

LABELS = {"billing": 0, "network": 1, "printer": 2}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with two exported tiny models, v1 in production."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from trainers.export import export_model

    root = tmp_path_factory.mktemp("models")
    source = build_tiny_model(root / "tiny", "bert")
    for version in ("v1", "v2"):
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=3, ignore_mismatched_sizes=True)
        card = {"hyperparameters": {"max_length": 64}}
        export_model(model, AutoTokenizer.from_pretrained(source), LABELS, card, root / "intent" / version)
    promote(root / "intent", "v1")
    return root / "intent"


def test_predict_returns_a_label_score_and_id_per_text_and_the_model_version(registry: Path) -> None:
    with ServiceThread(build_app(registry, token="")) as service:
        status, body = call(f"{service.url}/predict", {"texts": ["my vpn keeps dropping", "printer jam"]})
        assert status == 200 and body["model_version"] == "v1"
        assert [p["label"] in LABELS and 0 < p["score"] <= 1 and len(p["id"]) == 32 for p in body["predictions"]] == [
            True,
            True,
        ]
        model = {"model_version": "v1", "precision": "int8-dynamic", "text_recipe": None}
        assert call(f"{service.url}/health") == (200, {"status": "ok", **model, "models": {"intent": model}})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "body is not valid JSON"),
        (b'["a"]', "body must be a JSON object"),
        (b'{"text": "a"}', "body must be a JSON object"),
        (b'{"texts": []}', f"texts must hold 1 to {MAX_TEXTS} strings, got 0"),
        (json.dumps({"texts": ["a"] * (MAX_TEXTS + 1)}).encode(), f"1 to {MAX_TEXTS} strings, got {MAX_TEXTS + 1}"),
        (b'{"texts": ["fine", 3]}', "texts[1] is not a string"),
        (b'{"texts": ["  "]}', "texts[0] is empty"),
        (json.dumps({"texts": ["x" * (MAX_CHARS + 1)]}).encode(), f"more than {MAX_CHARS}"),
        (b'{"texts": ["a"], "top_k": 3}', "unknown fields: top_k"),
    ],
    ids=["not-json", "not-object", "no-texts", "empty", "too-many", "not-string", "blank", "too-long", "unknown"],
)
def test_every_bad_request_gets_a_400_that_says_what_is_wrong(registry: Path, raw: bytes, message: str) -> None:
    with ServiceThread(build_app(registry, token="")) as service:
        status, body = call(f"{service.url}/predict", raw=raw)
    assert status == 400 and message in body["error"]


def test_unknown_routes_and_methods_get_json_errors(registry: Path) -> None:
    with ServiceThread(build_app(registry, token="")) as service:
        assert call(f"{service.url}/nope", {})[0] == 404
        assert call(f"{service.url}/predict")[0] == 405


def test_a_configured_token_is_required_on_predict_and_feedback(registry: Path) -> None:
    with ServiceThread(build_app(registry, token="s3cret")) as service:
        assert call(f"{service.url}/predict", {"texts": ["a"]})[0] == 401
        assert call(f"{service.url}/predict", {"texts": ["a"]}, token="wrong")[0] == 401
        assert call(f"{service.url}/feedback", {"feedback": [{"prediction_id": "x", "label": "a"}]})[0] == 401
        assert call(f"{service.url}/predict", {"texts": ["a"]}, token="s3cret")[0] == 200
        assert call(f"{service.url}/health")[0] == 200


def test_concurrent_requests_share_forward_passes_and_metrics_count_them(registry: Path) -> None:
    with ServiceThread(build_app(registry, token="", max_wait_ms=50)) as service:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: call(f"{service.url}/predict", {"texts": [f"ticket {i}"]}), range(32)))
        assert {status for status, _ in results} == {200}
        with urllib.request.urlopen(f"{service.url}/metrics", timeout=30) as response:
            metrics = response.read().decode()
    assert 'refinery_requests_total{endpoint="/predict",status="200"} 32.0' in metrics
    count_line = next(line for line in metrics.splitlines() if line.startswith("refinery_batch_texts_count"))
    batches = float(count_line.split()[-1])
    assert batches < 32  # some passes carried several requests
    assert "refinery_request_seconds_bucket" in metrics
    assert 'refinery_model_info{dataset="intent",version="v1"} 1.0' in metrics


def test_predictions_and_feedback_are_appended_to_delta_tables(registry: Path, tmp_path: Path) -> None:
    from deltalake import DeltaTable

    with ServiceThread(build_app(registry, lake=tmp_path / "lake", token="")) as service:
        _, body = call(f"{service.url}/predict", {"texts": ["vpn down", "printer jam", "invoice wrong"]})
        first = body["predictions"][0]["id"]
        assert call(f"{service.url}/feedback", {"feedback": [{"prediction_id": first, "label": "network"}]}) == (
            200,
            {"accepted": 1},
        )
        assert call(f"{service.url}/feedback", {"feedback": [{"label": "network"}]})[0] == 400
    predictions = DeltaTable(str(tmp_path / "lake" / "predictions")).to_pyarrow_table()
    assert sorted(predictions.column("text").to_pylist()) == ["invoice wrong", "printer jam", "vpn down"]
    assert set(predictions.column("model_version").to_pylist()) == {"v1"}
    feedback = DeltaTable(str(tmp_path / "lake" / "feedback")).to_pyarrow_table()
    assert feedback.column("prediction_id").to_pylist() == [first]


def test_moving_the_production_alias_swaps_the_model_without_a_failed_request(registry: Path) -> None:
    app = build_app(registry, token="")
    failures, versions, stop = [], [], threading.Event()

    def client(url: str) -> None:
        while not stop.is_set():
            status, body = call(f"{url}/predict", {"texts": ["my vpn keeps dropping"]})
            if status != 200:
                failures.append((status, body))
            else:
                versions.append(body["model_version"])

    try:
        with ServiceThread(app) as service:
            threads = [threading.Thread(target=client, args=(service.url,)) for _ in range(4)]
            for thread in threads:
                thread.start()
            while len(versions) < 20:
                stop.wait(0.05)
            promote(registry, "v2")
            deadline = 200
            while "v2" not in versions[-4:] and deadline:
                stop.wait(0.1)
                deadline -= 1
            stop.set()
            for thread in threads:
                thread.join()
            assert call(f"{service.url}/health")[1]["model_version"] == "v2"
    finally:
        promote(registry, "v1")
    assert failures == []
    assert versions[0] == "v1" and versions[-1] == "v2"
    assert versions.index("v2") > versions.index("v1")


def test_int8_serving_stays_close_to_the_float32_model(registry: Path) -> None:
    from trainers.kinds import load_classifier

    texts = ["my vpn keeps dropping", "printer jam on floor 3", "invoice 1234 is wrong", "reset my password"]
    exact = load_classifier(registry / "v1").probabilities(texts)
    quantized = load_classifier(registry / "v1", quantize=True)
    assert quantized.precision == "int8-dynamic"
    assert (quantized.probabilities(texts) - exact).abs().max() < 0.05
