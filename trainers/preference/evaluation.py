"""Judging a preference-tuned model on a bundle split: how often its implicit reward against its base model (the
DPO reward, β × the change in log-probability) ranks the chosen answer above the rejected one, and by how much."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from contracts.model_folder import CAUSAL_LM
from trainers.preference.module import pair_logps
from trainers.preference.pairs import collate_pairs, tokenize_pair
from trainers.registry import MODEL_CARD

BATCH_PAIRS = 8


@torch.inference_mode()
def summed_logps(model, tokenizer, pairs: list[dict], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pair's chosen and rejected response log-probabilities under `model`."""
    tokenized = [tokenize_pair(tokenizer, pair, max_length) for pair in pairs]
    chosen, rejected = [], []
    for start in range(0, len(tokenized), BATCH_PAIRS):
        batch = collate_pairs(tokenized[start : start + BATCH_PAIRS], tokenizer.pad_token_id)
        batch = {name: value.to(model.device) for name, value in batch.items()}
        chosen_logps, rejected_logps = pair_logps(model, batch)
        chosen.append(chosen_logps.total.float().cpu())
        rejected.append(rejected_logps.total.float().cpu())
    return torch.cat(chosen), torch.cat(rejected)


def preference_report(folder: Path, pairs: list[dict]) -> dict[str, object]:
    """The tuned model's preference accuracy and mean reward margin over `pairs`, its base's own preference for
    the chosen answers (log-probability margin above 0), and the counts."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    card = json.loads((folder / MODEL_CARD).read_text())
    if not pairs:
        raise ValueError(f"{folder.name}: no pairs to judge the model on")
    beta, max_length = float(card.get("beta", 0.1)), int(card.get("params", {}).get("max_length", 256))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tuned = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa").eval()
    policy = summed_logps(tuned, tokenizer, pairs, max_length)
    del tuned
    base = AutoModelForCausalLM.from_pretrained(card["base_model"], attn_implementation="sdpa").eval()
    reference = summed_logps(base, tokenizer, pairs, max_length)
    margins = beta * ((policy[0] - reference[0]) - (policy[1] - reference[1]))
    return {
        "metrics": {
            "preference_accuracy": round(float((margins > 0).float().mean()), 6),
            "reward_margin": round(float(margins.mean()), 6),
            "base_preference_accuracy": round(float((reference[0] > reference[1]).float().mean()), 6),
        },
        "pairs": len(pairs),
    }


def answers_kept(folder: Path, card: dict, split: str = "test") -> dict[str, float]:
    """When the tuned model started from an SFT model (`base: <dataset>@<alias>`), its ROUGE-L and the SFT model's
    on the same first test prompts of the SFT dataset's bundle: tone tuning must not wreck the answers; {} when
    it started from a plain base. A missing SFT bundle is an error, never a guard silently skipped."""
    from trainers.generative.evaluation import answer_records, bundle_records
    from trainers.generative.generation import Generator

    source = card.get("lineage", {}).get("base_from") or {}
    if source.get("model_kind") != CAUSAL_LM:
        return {}
    bundle = Path(source["bundle"]) if source.get("bundle") else None
    if bundle is None or not (bundle / f"{split}.parquet").is_file():
        raise FileNotFoundError(
            f"the SFT model {source.get('model_version')} it tuned has no bundle at {bundle}: the answers of the "
            "two cannot be compared; restore that bundle, or tune from a plain base instead"
        )
    params = card.get("params", {})
    asked = bundle_records(bundle, split)[: int(params.get("eval_prompts", 32))]
    batch, new_tokens = int(params.get("batch_size", 8)), int(params.get("max_new_tokens", 64))
    tuned = answer_records(Generator(folder), asked, batch, new_tokens)["rouge_l"]
    before = answer_records(Generator(Path(card["base_model"])), asked, batch, new_tokens)["rouge_l"]
    return {"sft_rouge_l": tuned, "base_sft_rouge_l": before}


def evaluate_preference_model(folder: Path, bundle: Path, split: str = "test") -> dict[str, object]:
    """The report on a bundle split's pairs, and the answers' ROUGE-L against the SFT model it started from."""
    from trainers.preference.train import bundle_pairs

    report = preference_report(folder, bundle_pairs(bundle, split))
    kept = answers_kept(folder, json.loads((folder / MODEL_CARD).read_text()), split)
    return {**report, "metrics": {**report["metrics"], **kept}}
