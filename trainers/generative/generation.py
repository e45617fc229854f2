"""Answers from a causal language model: greedy or sampled, batched with left padding, or streamed token by token;
and the reference metrics of held-out prompts (ROUGE-L, exact match)."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from recipe.text_recipe import TextRecipe
from trainers.generative.chat import Message, ensure_chat_template, render_prompt
from trainers.registry import MODEL_CARD, RECIPE_FILE

_PUNCTUATION = re.compile(r"[^\w\s]")
ADAPTER_FOLDER = "adapter"  # LoRA adapters kept beside a base model (adapters: keep)


@dataclass(frozen=True)
class Limits:
    """Per-request generation limits."""

    max_new_tokens: int = 128
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()  # the answer ends before the first of these it would contain


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """The text before the earliest stop string in it, and whether one was found."""
    found = [index for index in (text.find(stop) for stop in stops) if index >= 0]
    return (text[: min(found)], True) if found else (text, False)


def until_stop(pieces: Iterator[str], stops: Sequence[str]) -> Iterator[str]:
    """A stream's pieces up to the first stop string (never sent), holding back the end that could begin one."""
    if not stops:
        yield from pieces
        return
    held, keep = "", max(map(len, stops)) - 1
    for piece in pieces:
        held, found = cut_at_stop(held + piece, stops)
        if found:
            if held:
                yield held
            return
        if len(held) > keep:
            yield held[: len(held) - keep]
            held = held[len(held) - keep :]
    if held:
        yield held


def load_causal_lm(folder: Path) -> tuple[torch.nn.Module, object]:
    """An exported model folder's model (base + kept adapters, or merged weights) and tokenizer, in eval mode: on
    the GPU in bf16 when there is one (this process's `LOCAL_RANK`'s), else on the CPU in fp32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    ensure_chat_template(tokenizer)
    device, dtype = inference_device()
    if (folder / ADAPTER_FOLDER).is_dir():  # the card names the base the adapters were trained on
        from peft import PeftModel

        card = json.loads((folder / MODEL_CARD).read_text())
        base = AutoModelForCausalLM.from_pretrained(card["base_model"], dtype=dtype)
        model = PeftModel.from_pretrained(base, folder / ADAPTER_FOLDER)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    return model.to(device).eval(), tokenizer


def inference_device() -> tuple[torch.device, torch.dtype]:
    """Where and in what precision a model answers: the GPU in bf16 (fp16 without bf16), else the CPU in fp32."""
    if not torch.cuda.is_available():
        return torch.device("cpu"), torch.float32
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def generation_settings(tokenizer, limits: Limits) -> dict[str, object]:
    sampled = limits.temperature > 0
    settings = {
        "max_new_tokens": limits.max_new_tokens,
        "do_sample": sampled,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if sampled:
        settings.update(temperature=limits.temperature, top_p=limits.top_p)
    if limits.stop:  # generation ends once a stop string appears; the text is cut before it
        settings.update(stop_strings=list(limits.stop), tokenizer=tokenizer)
    return settings


class Generator:
    """One loaded causal LM answering conversations; generation runs one batch at a time (a lock)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.model, self.tokenizer = load_causal_lm(folder)
        self.tokenizer.padding_side = "left"  # generation continues each row from its own last token
        self.version = folder.name
        self._lock = threading.Lock()
        recipe = folder / RECIPE_FILE
        # prompts are prepared as the training prompts were (normalised, PII masked): the same recipe
        self.recipe = TextRecipe.from_dict(json.loads(recipe.read_text())) if recipe.is_file() else None

    def with_base_weights(self, source: str) -> Generator:
        """This generator with the weights of the base it was fine-tuned from (`source`, a folder or hub id): the
        same tokenizer, chat template and text recipe, so the two answer the same prompts the same way."""
        import copy

        from transformers import AutoModelForCausalLM

        device, dtype = inference_device()
        base = copy.copy(self)
        base.model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype).to(device).eval()
        base.version, base._lock = f"base:{Path(source).name}", threading.Lock()
        return base

    def prepared(self, conversation: Sequence[Message]) -> list[Message]:
        """The conversation's texts as the model learned them: through its text recipe, when it has one."""
        if self.recipe is None:
            return list(conversation)
        texts = self.recipe.apply(pl.Series([m["content"] for m in conversation], dtype=pl.String)).to_list()
        return [{**message, "content": text or ""} for message, text in zip(conversation, texts, strict=True)]

    @torch.inference_mode()
    def answer(self, conversations: Sequence[Sequence[Message]], limits: Limits) -> list[tuple[str, int]]:
        """Each conversation's answer and its token count, generated together as one batch."""
        prompts = [render_prompt(self.tokenizer, self.prepared(c)) for c in conversations]
        encoded = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=False, return_token_type_ids=False
        ).to(self.model.device)
        with self._lock:
            output = self.model.generate(**encoded, **generation_settings(self.tokenizer, limits))
        new = output[:, encoded["input_ids"].shape[1] :]
        answers = []
        for row in new:
            tokens = [t for t in row.tolist() if t not in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id)]
            text, _ = cut_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), limits.stop)
            answers.append((text.strip(), len(tokens)))
        return answers

    @property
    def max_positions(self) -> int | None:
        """The longest sequence (prompt and answer) the model takes, when its config says."""
        config = self.model.config
        return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)

    def prompt_tokens(self, conversation: Sequence[Message]) -> int:
        """How many tokens the conversation's prompt is."""
        prompt = render_prompt(self.tokenizer, self.prepared(conversation))
        return len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def stream(
        self, conversation: Sequence[Message], limits: Limits, on_done: Callable[[], None] = lambda: None
    ) -> tuple[Iterator[str], StreamState]:
        """The answer's text piece by piece as a generation thread produces it, and the stream's state (its token
        count, an error). The thread starts now and always ends: at the answer's end, at `max_new_tokens`, or at
        the next token once the reader stops reading (a client gone); `on_done` runs when it ends."""
        prompt = render_prompt(self.tokenizer, self.prepared(conversation))
        encoded = self.tokenizer([prompt], return_tensors="pt", add_special_tokens=False, return_token_type_ids=False)
        encoded = encoded.to(self.model.device)
        state, stop = StreamState(), threading.Event()
        streamer = _CountingStreamer(state, self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        settings = {
            **encoded,
            **generation_settings(self.tokenizer, limits),
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_Cancelled(stop)]),
        }

        def run() -> None:
            try:
                with self._lock, torch.inference_mode():
                    self.model.generate(**settings)
            except Exception as error:  # handed to the reader, who ends the stream saying so
                state.error = error
                streamer.end()
            finally:
                on_done()

        threading.Thread(target=run, name="generation", daemon=True).start()

        def pieces() -> Iterator[str]:
            try:
                yield from until_stop((piece for piece in streamer if piece), limits.stop)
                if state.error is not None:
                    raise state.error
            finally:
                stop.set()

        return pieces(), state


@dataclass
class StreamState:
    """A stream's generated token count (the end-of-sequence token included) and the error that ended it."""

    tokens: int = 0
    error: Exception | None = None


class _CountingStreamer(TextIteratorStreamer):
    def __init__(self, state: StreamState, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.state = state

    def put(self, value: torch.Tensor) -> None:
        if not (self.skip_prompt and self.next_tokens_are_prompt):
            self.state.tokens += int(value.numel())
        super().put(value)


class _Cancelled(StoppingCriteria):
    """Stops generation once its event is set."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.stop.is_set(), dtype=torch.bool, device=input_ids.device)


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
