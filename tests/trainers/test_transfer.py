"""Transfer on purpose: a warm start keeps known labels' head rows, layer-wise decay, gradual unfreezing."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import build_tiny_model, write_small_bundle
from trainers.export import export_model
from trainers.fitting import fit
from trainers.model import SequenceClassifier
from trainers.params import TrainingParams
from trainers.train import Reporter
from trainers.transfer import GradualUnfreezing, layer_index, output_layer


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("transfer")
    source = build_tiny_model(root / "tiny")
    params = TrainingParams(model_name_or_path=str(source), max_epochs=1, batch_size=8, max_length=48)
    fitted = fit(write_small_bundle(root / "bundle"), params, Reporter())
    label_map = fitted.manifest.label_map
    export_model(fitted.module.model, fitted.tokenizer, label_map, {}, root / "production")
    return root / "production", label_map


def test_a_warm_start_keeps_the_head_rows_of_known_labels_when_labels_are_added(fine_tuned) -> None:
    folder, known = fine_tuned
    from transformers import AutoModelForSequenceClassification

    trained = output_layer(AutoModelForSequenceClassification.from_pretrained(folder))
    grown = {"a-new-queue": 0, **{label: index + 1 for index, label in enumerate(reversed(sorted(known)))}}
    module = SequenceClassifier(str(folder), grown, TrainingParams())
    head = output_layer(module.model)
    assert module.head_carry_over == {"carried": len(known), "new": 1}
    for label, old_id in known.items():
        assert torch.equal(head.weight[grown[label]], trained.weight[old_id])
        assert torch.equal(head.bias[grown[label]], trained.bias[old_id])


def test_a_base_model_source_has_no_head_to_carry_over(tmp_path: Path) -> None:
    module = SequenceClassifier(str(build_tiny_model(tmp_path / "tiny")), {"a": 0, "b": 1}, TrainingParams())
    assert module.head_carry_over == {"carried": 0, "new": 2}


def test_layer_wise_decay_slows_each_lower_layer(tmp_path: Path) -> None:
    params = TrainingParams(learning_rate=1e-3, head_learning_rate=1e-2, layer_decay=0.5)
    module = SequenceClassifier(str(build_tiny_model(tmp_path / "tiny")), {"a": 0, "b": 1}, params)
    module.trainer = SimpleNamespace(
        datamodule=SimpleNamespace(train_batches=lambda: 4),
        accumulate_grad_batches=1,
        max_epochs=1,
        max_steps=-1,
        strategy=None,
    )
    optimizer = module.configure_optimizers()["optimizer"]
    rates = {id(p): group["initial_lr"] for group in optimizer.param_groups for p in group["params"]}
    named = dict(module.model.named_parameters())
    assert rates[id(named["bert.embeddings.word_embeddings.weight"])] == pytest.approx(1e-3 * 0.5**3)
    assert rates[id(named["bert.encoder.layer.0.attention.self.query.weight"])] == pytest.approx(1e-3 * 0.5**2)
    assert rates[id(named["bert.encoder.layer.1.attention.self.query.weight"])] == pytest.approx(1e-3 * 0.5)
    assert rates[id(named["bert.pooler.dense.weight"])] == pytest.approx(1e-3)
    assert rates[id(named["classifier.weight"])] == pytest.approx(1e-2)


def test_gradual_unfreezing_trains_the_head_first_then_one_more_layer_per_epoch(tmp_path: Path) -> None:
    module = SequenceClassifier(str(build_tiny_model(tmp_path / "tiny")), {"a": 0, "b": 1}, TrainingParams())
    callback = GradualUnfreezing(layers_per_epoch=1)

    def trained_depths(epoch: int) -> set[int]:
        callback.on_train_epoch_start(SimpleNamespace(current_epoch=epoch), module)
        return {
            layer_index(name[len("bert.") :], 2)
            for name, p in module.model.named_parameters()
            if p.requires_grad and name.startswith("bert.")
        }

    assert trained_depths(0) == {3}  # the pooler, above the layers, belongs to the head's side
    assert trained_depths(1) == {2, 3}
    assert trained_depths(3) == {0, 1, 2, 3}
    assert all(p.requires_grad for p in module.model.classifier.parameters())
