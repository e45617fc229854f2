"""Evidence for a served prediction over real HTTP and from the command line: the nearest training examples of
the model version that answered, with their source."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from assets.storage.home import RefineryHome
from service.app import build_app
from service.server import ServiceThread
from tests.dagster_project.test_cli import _refinery
from tests.servers import call
from tests.trainers.test_evidence import bundle_with_provenance
from trainers.evidence import build_evidence_index
from trainers.kinds import load_classifier
from trainers.registry import promote


@pytest.fixture(scope="module")
def served_home(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> tuple[RefineryHome, list[dict]]:
    """A home whose `intent` dataset's production model (v1) has an evidence index over a small train split."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from trainers.export import export_model

    root = tmp_path_factory.mktemp("evidence")
    home = RefineryHome(root / "home").ensure()
    bundle = bundle_with_provenance(root / "bundle")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=3, ignore_mismatched_sizes=True)
    folder = home.models / "intent" / "v1"
    export_model(model, AutoTokenizer.from_pretrained(tiny_model), {"a": 0, "b": 1, "c": 2}, {}, folder)
    build_evidence_index(folder, bundle, load_classifier(folder))
    promote(home.models / "intent", "v1")
    return home, pq.read_table(bundle / "train.parquet").to_pylist()


def test_explain_returns_each_answer_s_nearest_training_examples_with_their_source(served_home) -> None:
    home, train_rows = served_home
    with ServiceThread(build_app(home.models, home.lake, token="")) as service:
        status, body = call(f"{service.url}/predict/intent", {"texts": [train_rows[3]["text"], "vpn"], "explain": 2})
        plain = call(f"{service.url}/predict/intent", {"texts": ["vpn"]})[1]
        refused = call(f"{service.url}/predict/intent", {"texts": ["vpn"], "explain": 99})
    assert status == 200 and [len(p["evidence"]) for p in body["predictions"]] == [2, 2]
    # a random tiny encoder puts every text close together: the text's own row is among the nearest, at distance ~0
    (same,) = [row for row in body["predictions"][0]["evidence"] if row["doc_id"] == train_rows[3]["doc_id"]]
    assert same["distance"] < 1e-2 and same["label"] == train_rows[3]["label"]
    assert (same["source"], same["source_row"], same["dataset_version"]) == ("train.csv", 5, "v-train")
    assert "evidence" not in plain["predictions"][0]
    assert refused[0] == 400 and "explain must be an integer from 0 to 50" in refused[1]["error"]


def test_a_logged_prediction_s_evidence_is_found_by_its_id_over_http_and_by_refinery_explain(served_home) -> None:
    home, train_rows = served_home
    with ServiceThread(build_app(home.models, home.lake, token="")) as service:
        _, body = call(f"{service.url}/predict/intent", {"texts": [train_rows[8]["text"]]})
        prediction_id = body["predictions"][0]["id"]
        status, found = call(f"{service.url}/predictions/{prediction_id}/evidence?k=3")
        missing = call(f"{service.url}/predictions/{'0' * 32}/evidence")
    assert status == 200, found
    assert found["model_version"] == "v1" and found["dataset"] == "intent" and len(found["evidence"]) == 3
    assert train_rows[8]["doc_id"] in [row["doc_id"] for row in found["evidence"]]
    assert missing[0] == 404 and "no logged prediction" in missing[1]["error"]
    shown = _refinery(home.root, "explain", prediction_id, "-k", "2", "--json")
    assert shown.returncode == 0, shown.stderr
    explained = json.loads(shown.stdout)
    assert [row["doc_id"] for row in explained["evidence"]] == [row["doc_id"] for row in found["evidence"][:2]]
    text = _refinery(home.root, "explain", prediction_id)
    assert text.returncode == 0 and "train.csv:10" in text.stdout and "answered by intent model v1" in text.stdout
    unknown = _refinery(home.root, "explain", "nope")
    assert unknown.returncode != 0 and "no logged prediction has the id 'nope'" in unknown.stderr
