"""A tiny causal language model built in code, for tests, the demo and benchmarks (no hub download): a
Llama- or GPT-2-style network over the embedded MiniLM tokenizer's vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

TINY_SIZES = {"hidden": 64, "layers": 2, "heads": 4, "intermediate": 128, "positions": 512}
# GPT-2-small's shape (about 110M parameters over this vocabulary): big enough for a GPU to show its speed
SMALL_SIZES = {"hidden": 768, "layers": 12, "heads": 12, "intermediate": 2048, "positions": 2048}


def build_tiny_causal_lm(
    folder: Path,
    kind: Literal["llama", "gpt2"] = "llama",
    seed: int = 0,
    sizes: dict[str, int] = TINY_SIZES,
    tokenizer_source: str | None = None,
) -> Path:
    """Save a randomly initialised causal LM (2 layers unless `sizes` says otherwise) and its tokenizer ([SEP] ends
    a sequence; the embedded MiniLM's unless `tokenizer_source` names another folder) to `folder`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, LlamaConfig

    from trainers.default_model import default_model_folder
    from trainers.generative.chat import ensure_chat_template

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source or default_model_folder())
    tokenizer.eos_token, tokenizer.bos_token = tokenizer.sep_token, tokenizer.cls_token
    ensure_chat_template(tokenizer)
    size = sizes
    ids = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if kind == "llama":
        config = LlamaConfig(
            hidden_size=size["hidden"],
            num_hidden_layers=size["layers"],
            num_attention_heads=size["heads"],
            num_key_value_heads=size["heads"] // 2,
            intermediate_size=size["intermediate"],
            max_position_embeddings=size["positions"],
            tie_word_embeddings=True,
            **ids,
        )
    else:
        config = GPT2Config(
            n_embd=size["hidden"], n_layer=size["layers"], n_head=size["heads"], n_positions=size["positions"], **ids
        )
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
