"""A TF-IDF model trained from a bundle: exported as a model folder and answered through the `Classifier` contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from service.app import build_app
from service.server import ServiceThread
from tests.conftest import write_small_bundle
from tests.servers import call
from trainers.kinds import load_classifier
from trainers.params import TrainingParams
from trainers.registry import promote
from trainers.tfidf import split_data
from trainers.train import Reporter, train

TEXTS = ["my vpn keeps dropping", "please reset my password for SAP", "the printer on floor 3 is jammed again"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("tfidf")
    bundle = write_small_bundle(root / "bundle")
    result = train(bundle, root / "models" / "v1", TrainingParams(model_kind="tfidf"), Reporter())
    return root / "models" / "v1", {"bundle": bundle, **result}


def test_a_tfidf_model_exports_a_model_folder_with_its_card_and_val_metrics(exported) -> None:
    folder, result = exported
    card = json.loads((folder / "model_card.json").read_text())
    assert card["model_kind"] == "tfidf" and card["validation_metrics"]["macro_f1"] == result["val_macro_f1"]
    from trainers.bundle import read_bundle_manifest

    assert card["row_counts"] == read_bundle_manifest(result["bundle"]).row_counts
    assert not (folder / "model.safetensors").exists() and (folder / "tfidf.skops").is_file()


def test_a_reloaded_tfidf_model_gives_the_probabilities_of_the_fitted_one(exported) -> None:
    from trainers.bundle import read_bundle_manifest
    from trainers.selection.candidates import TfidfCandidate

    folder, result = exported
    label_map = read_bundle_manifest(result["bundle"]).label_map
    fitted = TfidfCandidate()
    fitted.fit(split_data(result["bundle"], "train", label_map, "en"), len(label_map))
    val = split_data(result["bundle"], "val", label_map, "en")
    reloaded = load_classifier(folder).probabilities(val.texts)
    assert torch.allclose(reloaded, torch.from_numpy(fitted.predict_proba(val)).float(), atol=1e-6)
    assert [p.label for p in load_classifier(folder).predict(TEXTS)] == [
        max(label_map, key=lambda label: float(row[label_map[label]]))
        for row in load_classifier(folder).probabilities(TEXTS)
    ]


def test_a_tfidf_model_in_production_answers_over_http(exported) -> None:
    folder, _ = exported
    promote(folder.parent, "v1")
    with ServiceThread(build_app(folder.parent, token="")) as service:
        status, body = call(f"{service.url}/predict", {"texts": TEXTS})
        health = call(f"{service.url}/health")[1]
    labels = json.loads((folder / "label_map.json").read_text())
    assert status == 200 and [p["label"] in labels and 0 < p["score"] <= 1 for p in body["predictions"]] == [True] * 3
    assert health["precision"] == "float64-sparse" and health["model_version"] == "v1"


class WritesAMarker:
    """A pickle payload: unpickling it creates a file (what a crafted model file in a shared store would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def crafted_copy(folder: Path, into: Path) -> Path:
    """A copy of an exported TF-IDF folder without its model file, for a crafted one to take its place."""
    import shutil

    shutil.copytree(folder, into)
    (into / "tfidf.skops").unlink()
    return into


def test_a_pickle_in_a_tfidf_model_folder_is_refused_and_never_unpickled(exported, tmp_path: Path) -> None:
    import pickle

    from trainers.sklearn_files import UnsafeModelFileError

    folder = crafted_copy(exported[0], tmp_path / "crafted")
    marker = tmp_path / "code-ran"
    (folder / "tfidf.pkl").write_bytes(pickle.dumps(WritesAMarker(marker)))
    with pytest.raises(UnsafeModelFileError, match="no longer loads pickles"):
        load_classifier(folder)
    assert not marker.exists()


def test_a_skops_file_naming_an_untrusted_function_is_refused_before_it_loads(exported, tmp_path: Path) -> None:
    import os

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from trainers.sklearn_files import UnsafeModelFileError, save_estimator

    folder = crafted_copy(exported[0], tmp_path / "crafted")
    save_estimator(make_pipeline(FunctionTransformer(os.system)), folder / "tfidf.skops")
    with pytest.raises(UnsafeModelFileError, match=r"outside the trusted list.*system"):
        load_classifier(folder)
    (folder / "tfidf.skops").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UnsafeModelFileError, match="not a readable skops file"):
        load_classifier(folder)
