"""The trainer: every named architecture from a tiny config, accumulation and DDP equal to a big batch."""

import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import TINY_CONFIGS, build_tiny_model, write_small_bundle
from trainers.export import export_model
from trainers.fitting import fit
from trainers.kinds import load_classifier
from trainers.params import TrainingParams
from trainers.train import Reporter

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.mark.parametrize("model_type", sorted(TINY_CONFIGS))
def test_each_architecture_trains_exports_and_reloads_to_identical_predictions(model_type, bundle, tmp_path) -> None:
    source = build_tiny_model(tmp_path / model_type, model_type)
    params = TrainingParams(
        model_name_or_path=str(source), max_epochs=1, batch_size=8, max_length=48, learning_rate=1e-3
    )
    fitted = fit(bundle, params, Reporter())
    export_model(fitted.module.model, fitted.tokenizer, fitted.manifest.label_map, {"test": True}, tmp_path / "out")
    texts = ["my vpn keeps dropping", "please reset my password for SAP", "the printer on floor 3 is jammed again"]
    model = fitted.module.model.eval()
    with torch.inference_mode():
        encoded = fitted.tokenizer(texts, truncation=True, max_length=128, padding=True, return_tensors="pt")
        expected = torch.softmax(
            model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits, -1
        )
    reloaded = load_classifier(tmp_path / "out").probabilities(texts)
    assert torch.allclose(reloaded, expected, atol=1e-5)
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "out" / "label_map.json").read_text()) == fitted.manifest.label_map


class GradientCapture(L.Callback):
    """Keeps a copy of every gradient at the first optimizer step."""

    def __init__(self) -> None:
        self.gradients: dict[str, torch.Tensor] = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if not self.gradients:
            self.gradients = {n: p.grad.detach().clone() for n, p in pl_module.named_parameters() if p.grad is not None}


def test_accumulated_micro_batches_give_the_gradient_of_one_big_batch(tmp_path) -> None:
    bundle = write_small_bundle(tmp_path / "bundle", per_label=4)  # 12 training rows of different lengths
    source = build_tiny_model(tmp_path / "bert", "bert", dropout=False)
    common = {"model_name_or_path": str(source), "max_steps": 1, "shuffle": False, "max_length": 64}
    captured = []
    for batch_size, accumulate in ((12, 1), (3, 4)):
        capture = GradientCapture()
        params = TrainingParams(**common, batch_size=batch_size, accumulate_grad_batches=accumulate)
        fit(bundle, params, Reporter(), callbacks=[capture])
        captured.append(capture.gradients)
    big, accumulated = captured
    assert big.keys() == accumulated.keys() and big
    for name in big:
        assert torch.allclose(big[name], accumulated[name], atol=1e-6, rtol=1e-4), name


def test_ddp_on_two_processes_matches_one_process_on_the_same_global_batch(tmp_path) -> None:
    bundle = write_small_bundle(tmp_path / "bundle", per_label=4)
    source = build_tiny_model(tmp_path / "bert", "bert", dropout=False)
    common = {
        "model_name_or_path": str(source),
        "max_epochs": 3,
        "shuffle": False,
        "max_length": 64,
        "accelerator": "cpu",
        "learning_rate": 1e-3,
    }
    runs = {
        "single": {**common, "devices": 1, "batch_size": 12},
        "ddp": {**common, "devices": 2, "strategy": "ddp", "batch_size": 6},
    }
    for name, params in runs.items():
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "trainers.train",
                "--bundle",
                str(bundle),
                "--output",
                str(tmp_path / name),
                "--params",
                json.dumps(params),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
    single = load_file(tmp_path / "single" / "model.safetensors")
    ddp = load_file(tmp_path / "ddp" / "model.safetensors")
    assert single.keys() == ddp.keys()
    for name in single:
        assert torch.allclose(single[name], ddp[name], atol=1e-5), name


class CrashAt(L.Callback):
    """Simulates a killed run: raises once the given optimizer step has finished."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_index) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("simulated crash")


@pytest.mark.parametrize("crash_step", [5, 12], ids=["mid-first-epoch", "mid-second-epoch"])
def test_a_run_killed_mid_epoch_resumes_to_the_weights_of_an_uninterrupted_run(crash_step, bundle, tmp_path) -> None:
    source = build_tiny_model(tmp_path / "bert", "bert")  # dropout on: its masks must resume too
    params = TrainingParams(
        model_name_or_path=str(source),
        max_epochs=2,
        batch_size=4,
        max_length=48,
        learning_rate=1e-3,
        checkpoint_every_n_steps=2,
    )
    straight = fit(bundle, params, Reporter(), checkpoint_dir=tmp_path / "straight")
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(bundle, params, Reporter(), callbacks=[CrashAt(crash_step)], checkpoint_dir=tmp_path / "resumed")
    assert (tmp_path / "resumed" / "last.ckpt").is_file()
    resumed = fit(bundle, params, Reporter(), checkpoint_dir=tmp_path / "resumed")
    expected, actual = straight.module.model.state_dict(), resumed.module.model.state_dict()
    for name in expected:
        assert torch.allclose(expected[name], actual[name], atol=1e-6), name


def test_truncation_keeps_the_head_the_tail_or_both_ends() -> None:
    from transformers import AutoTokenizer

    from trainers.default_model import default_model_folder
    from trainers.encoding import encode

    tokenizer = AutoTokenizer.from_pretrained(default_model_folder())
    text = "one two three four five six seven eight"
    decoded = {
        policy: tokenizer.decode(encode(tokenizer, [text], 6, policy)[0]) for policy in ("head", "tail", "head+tail")
    }
    assert decoded == {
        "head": "[CLS] one two three four [SEP]",
        "tail": "[CLS] five six seven eight [SEP]",
        "head+tail": "[CLS] one two seven eight [SEP]",
    }
    with pytest.raises(ValueError, match="truncation must be one of"):
        encode(tokenizer, [text], 6, "middle")


def test_balanced_class_weights_follow_the_label_counts(tmp_path) -> None:
    import pyarrow as pa

    from trainers.bundle import BundleManifest, write_bundle

    rows = [("vpn down again", "a")] * 6 + [("printer jam", "b")] * 2
    table = pa.table(
        {"doc_id": [str(i) for i in range(8)], "text": [t for t, _ in rows], "label": [x for _, x in rows]}
    )
    bundle = write_bundle(
        tmp_path / "b",
        {s: table for s in ("train", "val", "test")},
        BundleManifest({"a": 0, "b": 1}, ["v"], "r", {"train": 8}),
    )
    source = build_tiny_model(tmp_path / "bert", "bert")
    params = TrainingParams(model_name_or_path=str(source), max_steps=1, batch_size=8, class_weights="balanced")
    fitted = fit(bundle, params, Reporter())
    assert fitted.module.class_weights.tolist() == pytest.approx([8 / (2 * 6), 8 / (2 * 2)])


def test_the_head_learns_at_its_own_rate_and_the_body_at_the_base_rate(tmp_path) -> None:
    from trainers.model import SequenceClassifier

    source = build_tiny_model(tmp_path / "bert", "bert")
    params = TrainingParams(learning_rate=1e-5, head_learning_rate=1e-3)
    module = SequenceClassifier(str(source), {"a": 0, "b": 1}, params)
    module.trainer = type(
        "T",
        (),
        {
            "accumulate_grad_batches": 1,
            "max_epochs": 1,
            "max_steps": -1,
            "strategy": None,
            "datamodule": type("D", (), {"train_batches": lambda self: 10})(),
        },
    )()
    optimizer = module.configure_optimizers()["optimizer"]
    rates = {id(p): group["initial_lr"] for group in optimizer.param_groups for p in group["params"]}
    named = dict(module.model.named_parameters())
    assert rates[id(named["classifier.weight"])] == 1e-3
    assert rates[id(named["bert.encoder.layer.0.attention.self.query.weight"])] == 1e-5
    assert len(rates) == len(named)


def test_an_abstain_label_gets_a_threshold_in_the_card_that_the_classifier_applies(bundle, tmp_path) -> None:
    from trainers.registry import read_card
    from trainers.train import train

    source = build_tiny_model(tmp_path / "bert", "bert")
    label = sorted(json.loads((bundle / "manifest.json").read_text())["label_map"])[0]
    params = TrainingParams(
        model_name_or_path=str(source),
        max_epochs=1,
        batch_size=8,
        learning_rate=1e-3,
        abstain_label=label,
        abstain_budget=0.5,
    )
    result = train(bundle, tmp_path / "out", params, Reporter())
    card = read_card(tmp_path / "out")
    assert card["abstain"]["label"] == label and card["abstain"]["threshold"] == result["abstain_threshold"]
    classifier = load_classifier(tmp_path / "out")
    texts = ["my vpn keeps dropping", "printer jam on floor 3", "invoice 1234 is wrong"]
    probabilities = classifier.probabilities(texts)
    for prediction, row in zip(classifier.predict(texts), probabilities, strict=True):
        if float(row.max()) < card["abstain"]["threshold"]:
            assert prediction.label == label
        else:
            assert prediction.label == classifier.labels[int(row.argmax())]


def test_an_abstain_label_outside_the_label_map_is_refused_before_training(bundle, tmp_path) -> None:
    from trainers.train import train

    params = TrainingParams(model_name_or_path="unused", abstain_label="not-a-label")
    with pytest.raises(ValueError, match="not-a-label"):
        train(bundle, tmp_path / "out", params, Reporter())


@pytest.mark.parametrize("model_type", ["bert", "distilbert", "xlnet"])
def test_lora_trains_adapters_and_the_head_and_exports_a_merged_model(model_type, bundle, tmp_path) -> None:
    from transformers import AutoModelForSequenceClassification

    source = build_tiny_model(tmp_path / model_type, model_type)
    original = AutoModelForSequenceClassification.from_pretrained(source).state_dict()

    class TrainableCount(L.Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            self.trainable = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
            self.total = sum(p.numel() for p in pl_module.parameters())

    counter = TrainableCount()
    params = TrainingParams(model_name_or_path=str(source), max_epochs=1, batch_size=8, learning_rate=1e-2, lora_rank=4)
    fitted = fit(bundle, params, Reporter(), callbacks=[counter])
    assert 0 < counter.trainable < counter.total / 2
    merged = fitted.module.model
    assert type(merged).__name__.endswith("ForSequenceClassification")  # no peft wrapper left
    body = [name for name in original if "layer" in name and name.endswith("weight") and name in merged.state_dict()]
    assert any(not torch.equal(original[name], merged.state_dict()[name]) for name in body)
    export_model(merged, fitted.tokenizer, fitted.manifest.label_map, {"test": True}, tmp_path / "out")
    texts = ["my vpn keeps dropping", "printer jam on floor 3"]
    with torch.inference_mode():
        encoded = fitted.tokenizer(texts, padding=True, return_tensors="pt")
        expected = torch.softmax(merged.eval()(**{k: encoded[k] for k in ("input_ids", "attention_mask")}).logits, -1)
    assert torch.allclose(load_classifier(tmp_path / "out").probabilities(texts), expected, atol=1e-5)


def test_with_save_best_the_exported_weights_are_the_best_epochs_checkpoint(bundle, tmp_path) -> None:
    from trainers.reports import read_metrics_csv_text

    source = build_tiny_model(tmp_path / "bert", "bert")
    params = TrainingParams(
        model_name_or_path=str(source), max_epochs=4, batch_size=8, learning_rate=3e-3, early_stopping_patience=2
    )
    fitted = fit(bundle, params, Reporter(), checkpoint_dir=tmp_path / "checkpoints")
    best = torch.load(tmp_path / "checkpoints" / "best" / "best.ckpt", map_location="cpu", weights_only=False)
    epochs = [row for row in read_metrics_csv_text(fitted.metrics_csv) if "val_macro_f1" in row]
    best_score = max(row["val_macro_f1"] for row in epochs)
    assert fitted.best == {"epoch": best["epoch"], "val_macro_f1": pytest.approx(best_score, abs=1e-6)}
    assert next(row["epoch"] for row in epochs if row["val_macro_f1"] == best_score) == best["epoch"]
    exported = fitted.module.model.state_dict()
    for name, tensor in best["state_dict"].items():
        assert torch.equal(exported[name.removeprefix("model.")], tensor), name


def test_a_trained_model_folder_holds_its_metrics_log_and_training_curves(bundle, tmp_path) -> None:
    from trainers.registry import read_card
    from trainers.reports import read_metrics_csv_text
    from trainers.train import train

    source = build_tiny_model(tmp_path / "bert", "bert")
    params = TrainingParams(
        model_name_or_path=str(source),
        max_epochs=2,
        batch_size=8,
        learning_rate=1e-3,
        log_every_n_steps=1,
        save_best=True,
    )
    lines: list[str] = []
    reporter = Reporter()
    reporter.log = lines.append
    result = train(bundle, tmp_path / "out", params, reporter)
    rows = read_metrics_csv_text((tmp_path / "out" / "metrics.csv").read_text())
    assert len([r for r in rows if "train_loss" in r]) >= 8 and any(k.startswith("lr-AdamW") for r in rows for k in r)
    assert [r["epoch"] for r in rows if "val_macro_f1" in r] == [0.0, 1.0]
    assert (tmp_path / "out" / "training_curves.png").read_bytes().startswith(b"\x89PNG")
    card = read_card(tmp_path / "out")
    assert card["exported_epoch"]["epoch"] == result["exported_epoch"] in (0, 1)
    progress = [line for line in lines if line.startswith("step ")]
    assert progress and "samples/s" in progress[-1] and "ETA" in progress[-1]
    assert not (tmp_path / ".out.checkpoints").exists()


def gradient_norm(module: torch.nn.Module) -> float:
    return float(torch.nn.utils.get_total_norm([p.grad for p in module.parameters() if p.grad is not None]))


class ClippedNorm(L.Callback):
    """The gradient norm of the first step before clipping, and after it (read once the step is done)."""

    def __init__(self) -> None:
        self.before: float | None = None
        self.after: float | None = None

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self.before is None:
            self.before = gradient_norm(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_index) -> None:
        if self.after is None:
            self.after = gradient_norm(pl_module)


def test_bf16_mixed_precision_trains_with_the_fused_optimizer_and_clips_its_gradients(bundle, tmp_path) -> None:
    # Lightning's mixed-precision plugin refuses to clip for a fused optimizer; on a GPU (bf16-mixed by
    # default) every run would fail at its first step. bf16-mixed runs on the CPU too, so this pins it here.
    source = build_tiny_model(tmp_path / "bert", "bert")
    norms = ClippedNorm()
    params = TrainingParams(
        model_name_or_path=str(source),
        max_epochs=1,
        batch_size=8,
        max_length=48,
        precision="bf16-mixed",
        learning_rate=1e-3,
        max_grad_norm=0.05,
    )
    fitted = fit(bundle, params, Reporter(), callbacks=[norms])
    assert fitted.precision == "bf16-mixed"
    assert norms.before > 0.05
    assert norms.after == pytest.approx(0.05, rel=1e-3)
