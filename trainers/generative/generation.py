"""Answers from a causal language model: greedy or sampled, batched with left padding, or streamed token by token;
and the reference metrics of held-out prompts (ROUGE-L, exact match)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from trainers.generative.chat import Message, ensure_chat_template, render_prompt
from trainers.registry import MODEL_CARD

_PUNCTUATION = re.compile(r"[^\w\s]")
CAUSAL_LM = "causal_lm"  # the card's model_kind of a generative model
ADAPTER_FOLDER = "adapter"  # LoRA adapters kept beside a base model (adapters: keep)


@dataclass(frozen=True)
class Limits:
    """Per-request generation limits."""

    max_new_tokens: int = 128
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0


def load_causal_lm(folder: Path) -> tuple[torch.nn.Module, object]:
    """An exported model folder's model (base + kept adapters, or merged weights) and tokenizer, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    card = json.loads((folder / MODEL_CARD).read_text())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ensure_chat_template(tokenizer)
    if (folder / ADAPTER_FOLDER).is_dir():
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(card["base_model"])
        model = PeftModel.from_pretrained(base, folder / ADAPTER_FOLDER)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder)
    return model.eval(), tokenizer


def generation_settings(tokenizer, limits: Limits) -> dict[str, object]:
    sampled = limits.temperature > 0
    settings = {"max_new_tokens": limits.max_new_tokens, "do_sample": sampled, "pad_token_id": tokenizer.pad_token_id,
                "eos_token_id": tokenizer.eos_token_id}  # fmt: skip
    if sampled:
        settings.update(temperature=limits.temperature, top_p=limits.top_p)
    return settings


class Generator:
    """One loaded causal LM answering conversations; generation runs one batch at a time (a lock)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.model, self.tokenizer = load_causal_lm(folder)
        self.tokenizer.padding_side = "left"  # generation continues each row from its own last token
        self.version = folder.name
        self._lock = threading.Lock()

    @torch.inference_mode()
    def answer(self, conversations: Sequence[Sequence[Message]], limits: Limits) -> list[tuple[str, int]]:
        """Each conversation's answer and its token count, generated together as one batch."""
        prompts = [render_prompt(self.tokenizer, c) for c in conversations]
        encoded = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=False, return_token_type_ids=False
        )
        with self._lock:
            output = self.model.generate(**encoded, **generation_settings(self.tokenizer, limits))
        new = output[:, encoded["input_ids"].shape[1] :]
        answers = []
        for row in new:
            tokens = [t for t in row.tolist() if t not in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id)]
            answers.append((self.tokenizer.decode(tokens, skip_special_tokens=True).strip(), len(tokens)))
        return answers

    def stream(self, conversation: Sequence[Message], limits: Limits) -> Iterator[str]:
        """The answer's text as it is generated, piece by piece (a generation thread feeds a streamer)."""
        from transformers import TextIteratorStreamer

        prompt = render_prompt(self.tokenizer, conversation)
        encoded = self.tokenizer([prompt], return_tensors="pt", add_special_tokens=False, return_token_type_ids=False)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=120)
        settings = {**encoded, **generation_settings(self.tokenizer, limits), "streamer": streamer}

        def run() -> None:
            with self._lock, torch.inference_mode():
                self.model.generate(**settings)

        worker = threading.Thread(target=run, name="generation", daemon=True)
        worker.start()
        yield from (piece for piece in streamer if piece)
        worker.join()


def normalized(text: str) -> str:
    """Text compared for exact match: lower case, no punctuation, single spaces (as SQuAD's evaluation does)."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def reference_metrics(answers: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-L F1 and exact match (case and spacing ignored) of answers against references."""
    from rouge_score import rouge_scorer

    if not answers:
        return {"rouge_l": 0.0, "exact_match": 0.0}
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    pairs = list(zip(answers, references, strict=True))
    rouge = [scorer.score(reference, answer)["rougeL"].fmeasure for answer, reference in pairs]
    exact = [normalized(answer) == normalized(reference) for answer, reference in pairs]
    return {"rouge_l": round(sum(rouge) / len(rouge), 4), "exact_match": round(sum(exact) / len(exact), 4)}
