"""Judging an exported causal LM on a bundle split: perplexity of the references' response tokens, ROUGE-L and exact
match of greedy answers, and a few answers beside their references."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow.parquet as pq
import torch

from trainers.bundle import CONTEXT, RESPONSE
from trainers.generative.chat import as_messages
from trainers.generative.generation import Generator, Limits, reference_metrics
from trainers.generative.packing import IGNORE, collate_rows, tokenize_example, unpacked_rows
from trainers.registry import MODEL_CARD

SAMPLES_SHOWN = 5


def bundle_records(bundle: Path, split: str) -> list[dict[str, object]]:
    """A generation bundle's split as prompt/response records, or chat `messages` where a row has earlier turns."""
    table = pq.read_table(bundle / f"{split}.parquet")
    contexts = table.column(CONTEXT).to_pylist() if CONTEXT in table.column_names else [None] * table.num_rows
    records: list[dict[str, object]] = []
    for prompt, response, context in zip(
        table.column("text").to_pylist(), table.column(RESPONSE).to_pylist(), contexts, strict=True
    ):
        if context:
            turns = [
                *json.loads(context),
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": response},
            ]
            records.append({"messages": turns})
        else:
            records.append({"prompt": prompt, "response": response})
    return records


@torch.inference_mode()
def response_loss(generator: Generator, records: Sequence[Mapping], max_length: int, batch_size: int = 8) -> float:
    """Mean negative log-likelihood per response token of the references (as trained: prompt masked)."""
    tokenizer, model = generator.tokenizer, generator.model
    rows = unpacked_rows([tokenize_example(tokenizer, record, max_length) for record in records])
    total, tokens = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = {
            k: v.to(model.device)
            for k, v in collate_rows(rows[start : start + batch_size], tokenizer.pad_token_id).items()
        }
        counted = int((batch["labels"][:, 1:] != IGNORE).sum())
        total += float(model(**batch).loss) * counted
        tokens += counted
    return total / max(tokens, 1)


def asked_turns(records: Sequence[Mapping]) -> list[tuple[list[dict], str]]:
    """Each record as the conversation a model is asked (up to the last user turn) and its reference answer."""
    return [as_messages(record) for record in records]


def answers_to(generator: Generator, asked: Sequence[tuple[list[dict], str]], batch_size: int, max_new_tokens: int):
    """Greedy answers to the asked conversations, generated in batches."""
    conversations = [messages for messages, _ in asked]
    answers: list[str] = []
    for start in range(0, len(conversations), batch_size):
        batch = conversations[start : start + batch_size]
        answers += [text for text, _ in generator.answer(batch, Limits(max_new_tokens=max_new_tokens))]
    return answers


def answer_records(generator: Generator, records: Sequence[Mapping], batch_size: int, max_new_tokens: int) -> dict:
    """Greedy answers to the records' prompts: ROUGE-L and exact match against their responses, and samples."""
    asked = asked_turns(records)
    answers = answers_to(generator, asked, batch_size, max_new_tokens)
    references = [reference for _, reference in asked]
    samples = [
        {"prompt": messages[-1]["content"], "reference": reference, "answer": answer}
        for (messages, reference), answer in zip(asked[:SAMPLES_SHOWN], answers, strict=False)
    ]
    return {**reference_metrics(answers, references), "samples": samples, "prompts": len(records), "answers": answers}


def base_answers(generator: Generator, card: Mapping, records: Sequence[Mapping], settings: Mapping) -> dict:
    """The base model's zero-shot ROUGE-L on the same prompts, through the fine-tune's recipe and chat template;
    or why it was not measured (a base this machine cannot load)."""
    source = card.get("base_model")
    if not source:
        return {"not_measured": "the card names no base model"}
    try:
        base = generator.with_base_weights(str(source))
    except (OSError, ValueError) as error:
        return {"not_measured": f"base model {source} does not load here: {error}"}
    asked = asked_turns(records)
    answers = answers_to(base, asked, settings["batch_size"], settings["max_new_tokens"])
    references = [reference for _, reference in asked]
    return {"source": str(source), **reference_metrics(answers, references), "answers": answers}


def evaluate_causal_lm(folder: Path, bundle: Path, split: str = "test", prompts: int = 200) -> dict[str, object]:
    """A model's report on a bundle split: perplexity over every example, and greedy answers (the fine-tune's and
    its base's, zero-shot) to the first `prompts` (all of them when fewer), their ROUGE-L and the gain."""
    records = bundle_records(bundle, split)
    if not records:
        raise ValueError(f"{bundle}: the {split} split has no examples to judge the model on")
    card = json.loads((folder / MODEL_CARD).read_text())
    params = card.get("params", {})
    settings = {"batch_size": int(params.get("batch_size", 8)), "max_new_tokens": int(params.get("max_new_tokens", 64))}
    generator = Generator(folder)
    loss = response_loss(generator, records, int(params.get("max_length", 256)), settings["batch_size"])
    asked = records[:prompts]
    answered = answer_records(generator, asked, settings["batch_size"], settings["max_new_tokens"])
    base = base_answers(generator, card, asked, settings)
    metrics = {
        "loss": round(loss, 6),
        "perplexity": round(math.exp(min(loss, 50.0)), 4),
        "rouge_l": answered["rouge_l"],
        "exact_match": answered["exact_match"],
    }
    if "rouge_l" in base:
        metrics.update(base_rouge_l=base["rouge_l"], gain_over_base=round(answered["rouge_l"] - base["rouge_l"], 6))
    samples = [
        {**sample, "base_answer": base["answers"][index]} if "answers" in base else sample
        for index, sample in enumerate(answered["samples"])
    ]
    return {
        "metrics": metrics,
        "examples": len(records),
        "prompts": answered["prompts"],
        "samples": samples,
        "base": {k: v for k, v in base.items() if k != "answers"},
    }
