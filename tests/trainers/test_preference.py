"""Preference tuning's core: the DPO and ORPO losses against hand-computed values, the reference taken from the
base with adapters disabled, and a short run that teaches a tiny model which answer style is preferred."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from trainers.preference.module import (
    PreferenceModule,
    PreferenceSettings,
    held_out_preferences,
    pair_logps,
    reference_logps,
)
from trainers.preference.objectives import ResponseLogps, dpo_loss, orpo_loss, response_logps
from trainers.preference.pairs import collate_pairs, tokenize_pair

CHOSEN = "Thank you for telling us; an engineer is looking at it now."
REJECTED = "Not our problem, figure it out."


def test_the_dpo_loss_and_rewards_match_the_formula_by_hand() -> None:
    result = dpo_loss(
        torch.tensor([-5.0, -9.0]),
        torch.tensor([-7.0, -8.0]),
        torch.tensor([-6.0, -9.0]),
        torch.tensor([-6.5, -8.5]),
        beta=0.1,
    )
    margins = [0.1 * ((-5 + 6) - (-7 + 6.5)), 0.1 * ((-9 + 9) - (-8 + 8.5))]  # 0.15 and -0.05
    expected = sum(math.log1p(math.exp(-m)) for m in margins) / 2
    assert float(result.loss) == pytest.approx(expected, rel=1e-6)
    metrics = result.metrics()
    assert metrics["reward_margin"] == pytest.approx(sum(margins) / 2) and metrics["preference_accuracy"] == 0.5


def test_the_orpo_loss_matches_the_formula_by_hand() -> None:
    chosen = ResponseLogps(torch.tensor([-2.0]), torch.tensor([4]))  # mean -0.5 per token
    rejected = ResponseLogps(torch.tensor([-6.0]), torch.tensor([3]))  # mean -2.0
    result = orpo_loss(chosen, rejected, weight=0.25)

    def log_odds(mean: float) -> float:
        return mean - math.log1p(-math.exp(mean))

    ratio = math.log1p(math.exp(-(log_odds(-0.5) - log_odds(-2.0))))
    assert float(result.loss) == pytest.approx(0.5 + 0.25 * ratio, rel=1e-6)


def test_response_log_probabilities_count_only_the_labelled_next_tokens() -> None:
    logits = torch.randn(1, 4, 7)
    labels = torch.tensor([[-100, -100, 3, 5]])
    logps = response_logps(logits, labels)
    by_hand = logits[0, 1].log_softmax(-1)[3] + logits[0, 2].log_softmax(-1)[5]
    assert int(logps.tokens) == 2 and float(logps.total) == pytest.approx(float(by_hand), rel=1e-5)


@pytest.fixture(scope="module")
def tiny(tiny_causal_lm: Path) -> Path:
    return tiny_causal_lm


def with_lora(folder: Path, *, random_adapters: bool = False):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa")
    adapters = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=not random_adapters)
    return get_peft_model(base, adapters), AutoTokenizer.from_pretrained(folder)


def batches_of(tokenizer, records: list[dict], size: int) -> list[dict[str, torch.Tensor]]:
    pairs = [tokenize_pair(tokenizer, record, 64) for record in records]
    return [collate_pairs(pairs[start : start + size], tokenizer.pad_token_id) for start in range(0, len(pairs), size)]


def pair_records(count: int, offset: int = 0) -> list[dict]:
    """Pairs where the courteous answer is always chosen over the curt one, about different tickets."""
    return [
        {
            "prompt": f"ticket {offset + n}: the vpn drops every {n + 2} minutes",
            "chosen": f"{CHOSEN} (ticket {offset + n})",
            "rejected": f"{REJECTED} (ticket {offset + n})",
        }
        for n in range(count)
    ]


def test_the_reference_is_the_base_model_with_its_adapters_disabled(tiny: Path) -> None:
    from transformers import AutoModelForCausalLM

    adapted, tokenizer = with_lora(tiny, random_adapters=True)
    (batch,) = batches_of(tokenizer, pair_records(3), 3)
    base = AutoModelForCausalLM.from_pretrained(tiny, attn_implementation="sdpa").eval()
    adapted.eval()
    with torch.no_grad():
        base_chosen, base_rejected = pair_logps(base, batch)
        policy_chosen, _ = pair_logps(adapted, batch)
    reference_chosen, reference_rejected = reference_logps(adapted, batch)
    assert not torch.allclose(policy_chosen.total, base_chosen.total)  # the adapters do change the answer
    assert torch.allclose(reference_chosen.total, base_chosen.total, atol=1e-5)
    assert torch.allclose(reference_rejected.total, base_rejected.total, atol=1e-5)


def test_pair_logps_from_the_labelled_positions_equal_those_of_the_full_logits(tiny: Path) -> None:
    adapted, tokenizer = with_lora(tiny, random_adapters=True)
    (batch,) = batches_of(tokenizer, pair_records(3), 3)
    trainable = [p for p in adapted.parameters() if p.requires_grad]
    chosen, rejected = pair_logps(adapted, batch)
    full = response_logps(
        adapted(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]
        ).logits,
        batch["labels"],
    )
    torch.testing.assert_close(torch.cat([chosen.total, rejected.total]), full.total, atol=1e-4, rtol=1e-5)
    assert torch.equal(torch.cat([chosen.tokens, rejected.tokens]), full.tokens)
    fast_grads = torch.autograd.grad((chosen.total - rejected.total).sum(), trainable, retain_graph=True)
    half = len(full.total) // 2
    full_grads = torch.autograd.grad((full.total[:half] - full.total[half:]).sum(), trainable)
    for got, want in zip(fast_grads, full_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("objective", ["dpo", "orpo"])
def test_a_short_run_teaches_which_answer_style_is_preferred_on_held_out_prompts(tiny: Path, objective) -> None:
    import lightning as L

    model, tokenizer = with_lora(tiny)
    settings = PreferenceSettings(objective=objective, beta=0.1, learning_rate=5e-3)
    train, held_out = batches_of(tokenizer, pair_records(24), 4), batches_of(tokenizer, pair_records(8, 100), 4)
    before = held_out_preferences(model, held_out, settings)
    module = PreferenceModule(model, settings)
    trainer = L.Trainer(
        max_steps=30, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(train, batch_size=None, shuffle=True))
    after = held_out_preferences(model, held_out, settings)
    if objective == "dpo":  # the policy starts as its reference: every reward is 0, no pair is preferred yet
        assert before["preference_accuracy"] == 0.0 and before["reward_margin"] == 0.0
    assert after["preference_accuracy"] == 1.0 and after["reward_margin"] > before["reward_margin"] + 0.1
    steps = module.step_metrics
    assert len(steps) == 30 and steps[-1]["loss"] < steps[0]["loss"]


def test_a_preference_fine_tune_reports_progress_and_held_out_metrics_before_and_after(tiny: Path) -> None:
    from trainers.preference.fit import fit_preferences
    from trainers.preference.params import PreferenceParams

    params = PreferenceParams(
        model_name_or_path=str(tiny),
        learning_rate=5e-3,
        max_epochs=3,
        batch_size=4,
        max_length=64,
        accelerator="cpu",
        log_every_n_steps=5,
    )
    lines: list[str] = []
    result = fit_preferences(pair_records(24), pair_records(8, 100), params, log=lines.append)
    assert result.before["preference_accuracy"] == 0.0 and result.after["preference_accuracy"] == 1.0
    assert len(result.module.val_history) == 4  # before training, then after each of the three epochs
    header = result.metrics_csv.splitlines()[0].split(",")
    assert {"train_loss", "train_reward_margin", "train_preference_accuracy", "val_preference_accuracy"} <= set(header)
    assert any("pairs" in line for line in lines) and lines[0].startswith("preference tuning (dpo) on 24 pairs")


def test_preference_settings_refuse_what_cannot_run() -> None:
    from trainers.preference.params import PreferenceParams

    with pytest.raises(ValueError, match="unknown preference objective 'ipo'"):
        PreferenceParams(objective="ipo")
    with pytest.raises(ValueError, match="dpo takes its reference from the base"):
        PreferenceParams(lora_rank=0)
    assert PreferenceParams(objective="orpo", lora_rank=0).objective == "orpo"
    assert PreferenceParams.from_json('{"objective": "orpo", "beta": 0.2}').beta == 0.2


def write_pair_bundle(folder: Path, splits: dict[str, list[dict]]) -> Path:
    import pyarrow as pa

    from trainers.bundle import PAIRS, BundleManifest, write_bundle

    tables = {
        split: pa.table(
            {
                "doc_id": [f"{split}-{n}" for n in range(len(rows))],
                "text": [row["prompt"] for row in rows],
                "label": pa.nulls(len(rows), pa.string()),
                "chosen": [row["chosen"] for row in rows],
                "rejected": [row["rejected"] for row in rows],
                "context": pa.nulls(len(rows), pa.string()),
            }
        )
        for split, rows in splits.items()
    }
    counts = {split: len(rows) for split, rows in splits.items()}
    return write_bundle(folder, tables, BundleManifest({}, ["v1"], "rules", counts, kind=PAIRS))


def test_a_pair_bundle_trains_the_preference_kind_which_is_judged_and_gated_on_its_test_pairs(tiny, tmp_path) -> None:
    import json

    from trainers.gates import GateSettings
    from trainers.kinds import kind_of
    from trainers.train import main

    bundle = write_pair_bundle(
        tmp_path / "bundle", {"train": pair_records(24), "val": pair_records(8, 100), "test": pair_records(8, 200)}
    )
    params = {
        "model_name_or_path": str(tiny),
        "learning_rate": 5e-3,
        "max_epochs": 3,
        "max_length": 64,
        "accelerator": "cpu",
    }
    assert main(["--bundle", str(bundle), "--output", str(tmp_path / "model"), "--params", json.dumps(params)]) == 0
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    assert card["model_kind"] == "preference" and card["objective"] == "dpo" and card["dataset_versions"] == ["v1"]
    assert (tmp_path / "model" / "metrics.csv").is_file() and not (tmp_path / ".model.checkpoints").exists()
    kind = kind_of(tmp_path / "model")
    report = kind.evaluate(tmp_path / "model", bundle)
    assert report["pairs"] == 8 and report["metrics"]["preference_accuracy"] == 1.0
    assert kind.gate(report, GateSettings(), None)["passed"]
    worse = {"metrics": {**report["metrics"], "preference_accuracy": 0.5}}
    verdict = kind.gate(worse, GateSettings(), {"preference_accuracy": 1.0})
    assert not verdict["passed"] and set(verdict["shortfalls"]) == set(verdict["regressions"]) == {
        "preference_accuracy"
    }
    from trainers.generative.generation import Limits

    (answered,) = kind.load(tmp_path / "model", card).answer([[{"role": "user", "content": "ticket 7"}]], Limits(8))
    assert isinstance(answered[0], str)  # served as any generator


def test_the_preference_gate_refuses_a_model_whose_answers_fell_against_the_sft_model_it_tuned() -> None:
    from trainers.gates import GateSettings, preference_gate

    settings = GateSettings(max_regression=0.05)
    kept = {"preference_accuracy": 0.9, "sft_rouge_l": 0.46, "base_sft_rouge_l": 0.5}
    fell = {**kept, "sft_rouge_l": 0.40}
    assert preference_gate({"metrics": kept}, settings, None)["passed"]
    verdict = preference_gate({"metrics": fell}, settings, None)
    assert not verdict["passed"] and verdict["regressions"]["sft_rouge_l"]["production"] == 0.5
    assert preference_gate({"metrics": {"preference_accuracy": 0.9}}, settings, None)["passed"]  # a plain base
