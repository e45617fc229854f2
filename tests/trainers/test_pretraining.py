"""Continued pre-training's pieces: documents cut into rows that learn every token, and the perplexity gate."""

from __future__ import annotations

from pathlib import Path

from trainers.gates import GateSettings, domain_gate
from trainers.generative.pretraining import tokenize_document


def test_a_long_document_becomes_rows_of_at_most_max_length_that_learn_every_token(tiny_causal_lm: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    text = " ".join(f"the router {n} drops its connection after the update." for n in range(20))
    pieces = tokenize_document(tokenizer, {"text": text}, 32)
    whole = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert [token for piece in pieces for token in piece.input_ids] == whole  # nothing dropped, in order
    assert all(len(piece.input_ids) <= 32 and piece.labels == piece.input_ids for piece in pieces)
    assert pieces[-1].input_ids[-1] == tokenizer.eos_token_id  # the document's end is learned too


def test_the_domain_gate_passes_a_model_only_when_held_out_perplexity_fell_below_its_base() -> None:
    settings = GateSettings(min_perplexity_gain=0.05, max_regression=0.1)
    better = {"metrics": {"perplexity": 12.0, "base_perplexity": 20.0, "perplexity_gain": 0.4}}
    same = {"metrics": {"perplexity": 19.5, "base_perplexity": 20.0, "perplexity_gain": 0.025}}
    assert domain_gate(better, settings, None)["passed"]
    assert not domain_gate(same, settings, None)["passed"]
    worse_than_production = domain_gate(better, settings, {"perplexity": 10.0})
    assert not worse_than_production["passed"] and "perplexity" in worse_than_production["regressions"]
