"""Multi-task: one encoder, a head per task, masked missing labels, one model folder, every task in one pass."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from service.app import build_app
from service.server import ServiceThread
from tests.conftest import build_tiny_model, write_small_bundle
from tests.servers import call
from trainers.bundle import BundleManifest, read_bundle_manifest, task_column, write_bundle
from trainers.kinds import load_classifier
from trainers.multitask import MASKED, fit_multitask, load_multitask, task_losses
from trainers.params import TrainingParams
from trainers.registry import promote, read_card

TEXTS = ["my vpn keeps dropping", "please reset my password for SAP", "the printer on floor 3 is jammed again"]


def two_task_bundle(folder: Path) -> Path:
    """The small bundle with a second task, `length` (short or long), missing on every third row."""
    single = write_small_bundle(folder / "single")
    manifest = read_bundle_manifest(single)
    tables = {}
    for split in ("train", "val", "test"):
        table = pq.read_table(single / f"{split}.parquet")
        texts = table.column("text").to_pylist()
        length = [None if i % 3 == 2 else ("long" if len(t) > 60 else "short") for i, t in enumerate(texts)]
        tables[split] = table.append_column(task_column("category"), table.column("label")).append_column(
            task_column("length"), [length]
        )
    tasks = {"category": manifest.label_map, "length": {"long": 0, "short": 1}}
    return write_bundle(
        folder / "multi", tables, BundleManifest(manifest.label_map, ["v1"], "", manifest.row_counts, tasks=tasks)
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("multitask")
    params = TrainingParams(
        model_name_or_path=str(build_tiny_model(root / "tiny", dropout=False)),
        max_epochs=2,
        batch_size=8,
        max_length=48,
        learning_rate=1e-3,
    )
    fit_multitask(two_task_bundle(root), root / "models" / "v1", params, weighting="uncertainty")
    return root / "models" / "v1"


def test_a_two_task_model_exports_and_reloads_to_identical_predictions(exported: Path) -> None:
    net, tokenizer, tasks = load_multitask(exported)
    assert list(tasks) == ["category", "length"]
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=48, return_tensors="pt")
    with torch.inference_mode():
        expected = {t: torch.softmax(v, -1) for t, v in net(batch["input_ids"], batch["attention_mask"]).items()}
    reloaded = load_classifier(exported).task_probabilities(TEXTS)
    for task in tasks:
        assert torch.allclose(reloaded[task], expected[task], atol=1e-5)
    card = read_card(exported)
    assert set(card["validation_metrics"]) == {"category", "length"}
    assert any(value != 0.0 for value in card["learned_log_variances"].values())


def test_rows_missing_a_task_label_are_masked_for_that_task_only() -> None:
    logits = {"a": torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]]), "b": torch.tensor([[1.0, 0.0]] * 3)}
    labels = torch.tensor([[0, MASKED], [1, MASKED], [MASKED, MASKED]])
    losses = task_losses(logits, labels)
    expected_a = torch.nn.functional.cross_entropy(logits["a"][:2], torch.tensor([0, 1]))
    assert torch.isclose(losses[0], expected_a) and losses[1] == 0.0 and not torch.isnan(losses).any()


def test_every_task_is_answered_from_one_request_over_http(exported: Path) -> None:
    promote(exported.parent, "v1")
    with ServiceThread(build_app(exported.parent, token="")) as service:
        status, body = call(f"{service.url}/predict", {"texts": TEXTS})
    assert status == 200
    for prediction in body["predictions"]:
        assert set(prediction["tasks"]) == {"category", "length"}
        assert prediction["tasks"]["category"]["label"] == prediction["label"]
        assert prediction["tasks"]["length"]["label"] in {"long", "short"}
