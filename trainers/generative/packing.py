"""Supervised examples as token rows: the loss on response tokens only, and several examples packed per row with
attention that never crosses from one example into another."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from trainers.generative.chat import as_messages, render_prompt

IGNORE = -100  # the label of a token that has no loss (prompt, padding)


@dataclass(frozen=True)
class TokenizedExample:
    """One example's tokens; `labels` is IGNORE over the prompt, the token ids over the response and its end."""

    input_ids: list[int]
    labels: list[int]


def tokenize_example(tokenizer, record: Mapping[str, object], max_length: int) -> TokenizedExample:
    """The prompt (chat-rendered) and the response followed by the end-of-sequence token, cut to `max_length`
    (the response's end is cut first: a truncated example still teaches its start)."""
    messages, response = as_messages(record)
    prompt_ids = tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    input_ids = (prompt_ids + response_ids)[:max_length]
    labels = ([IGNORE] * len(prompt_ids) + response_ids)[:max_length]
    return TokenizedExample(input_ids, labels)


@dataclass
class PackedRow:
    """Examples laid end to end in one row: each keeps its own positions and its own segment number."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    segments: list[int]


def pack_examples(examples: Sequence[TokenizedExample], max_length: int) -> list[PackedRow]:
    """First-fit decreasing: each example (longest first) goes into the first row with room, else a new row."""
    rows: list[PackedRow] = []
    for index in sorted(range(len(examples)), key=lambda i: -len(examples[i].input_ids)):
        example = examples[index]
        size = len(example.input_ids)
        row = next((r for r in rows if len(r.input_ids) + size <= max_length), None)
        if row is None:
            row = PackedRow([], [], [], [])
            rows.append(row)
        segment = (row.segments[-1] + 1) if row.segments else 0
        row.input_ids += example.input_ids
        row.labels += example.labels
        row.position_ids += list(range(size))
        row.segments += [segment] * size
    return rows


def unpacked_rows(examples: Sequence[TokenizedExample]) -> list[PackedRow]:
    """One example per row (no packing)."""
    return [PackedRow(e.input_ids, e.labels, list(range(len(e.input_ids))), [0] * len(e.input_ids)) for e in examples]


def collate_rows(rows: Sequence[PackedRow], pad_id: int) -> dict[str, torch.Tensor]:
    """A batch: rows right-padded to the longest, and a 4D boolean attention mask that lets a token see the
    earlier tokens of its own example only (padding sees itself, so no row of the mask is empty)."""
    length = max(len(row.input_ids) for row in rows)
    batch = len(rows)
    input_ids = torch.full((batch, length), pad_id, dtype=torch.long)
    labels = torch.full((batch, length), IGNORE, dtype=torch.long)
    positions = torch.zeros((batch, length), dtype=torch.long)
    segments = torch.full((batch, length), -1, dtype=torch.long)
    for b, row in enumerate(rows):
        n = len(row.input_ids)
        input_ids[b, :n] = torch.tensor(row.input_ids)
        labels[b, :n] = torch.tensor(row.labels)
        positions[b, :n] = torch.tensor(row.position_ids)
        segments[b, :n] = torch.tensor(row.segments)
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool))
    same = segments[:, :, None] == segments[:, None, :]
    padding = segments[:, :, None] < 0
    eye = torch.eye(length, dtype=torch.bool)
    mask = (same & causal & ~padding) | (padding & eye)
    return {"input_ids": input_ids, "labels": labels, "position_ids": positions, "attention_mask": mask[:, None]}
