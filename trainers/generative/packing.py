"""Supervised examples as token rows: the loss on response tokens only, and several examples packed per row with
attention that never crosses from one example into another."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from trainers.generative.chat import as_messages, render_prompt

IGNORE = -100  # the label of a token that has no loss (prompt, padding)


@dataclass(frozen=True)
class TokenizedExample:
    """One example's tokens; `labels` is IGNORE over the prompt, the token ids over the response and its end."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool = False


def tokenize_example(
    tokenizer: PreTrainedTokenizerBase, record: Mapping[str, object], max_length: int
) -> TokenizedExample:
    """The prompt (chat-rendered) and the response followed by the end-of-sequence token, within `max_length`.
    Too long, the prompt loses its start first (down to half the row, keeping the latest context), then the
    response its end: every example keeps response tokens to learn from."""
    messages, response = as_messages(record)
    prompt_ids = tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    fits = len(prompt_ids) + len(response_ids) <= max_length
    if not fits:
        keep = max(max_length - len(response_ids), min(len(prompt_ids), max_length // 2))
        prompt_ids = prompt_ids[len(prompt_ids) - keep :]
        response_ids = response_ids[: max_length - len(prompt_ids)]
    return TokenizedExample(prompt_ids + response_ids, [IGNORE] * len(prompt_ids) + response_ids, not fits)


@dataclass
class PackedRow:
    """Examples laid end to end in one row: each keeps its own positions and its own segment number."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    segments: list[int]


def pack_examples(examples: Sequence[TokenizedExample], max_length: int) -> list[PackedRow]:
    """Best-fit decreasing: each example (longest first) goes into the row with the least room that holds it,
    else a new row; rooms are kept sorted, so each placement is a binary search."""
    rows: list[PackedRow] = []
    free: list[tuple[int, int]] = []  # (room left, row number), sorted
    for index in sorted(range(len(examples)), key=lambda i: -len(examples[i].input_ids)):
        example = examples[index]
        size = len(example.input_ids)
        place = bisect.bisect_left(free, (size, -1))
        if place < len(free):
            number = free.pop(place)[1]
        else:
            number = len(rows)
            rows.append(PackedRow([], [], [], []))
        row = rows[number]
        segment = (row.segments[-1] + 1) if row.segments else 0
        row.input_ids += example.input_ids
        row.labels += example.labels
        row.position_ids += list(range(size))
        row.segments += [segment] * size
        bisect.insort(free, (max_length - len(row.input_ids), number))
    return rows


def unpacked_rows(examples: Sequence[TokenizedExample]) -> list[PackedRow]:
    """One example per row (no packing)."""
    return [PackedRow(e.input_ids, e.labels, list(range(len(e.input_ids))), [0] * len(e.input_ids)) for e in examples]


# attention kernels that read each example's bounds from its position ids (a reset to 0 starts a new one), so a
# batch can be one unpadded row: flash-attention's varlen kernel, FlexAttention's block mask
PADDING_FREE_ATTENTION = ("flash_attention_2", "flash_attention_3", "flex_attention")


def collate_rows(rows: Sequence[PackedRow], pad_id: int, *, padding_free: bool = False) -> dict[str, torch.Tensor]:
    """A batch. By default the rows right-padded to the longest, with a 4D boolean attention mask that lets a
    token see the earlier tokens of its own example only (padding sees itself, so no row of the mask is empty).
    `padding_free`: the rows laid end to end as one row with no padding and no mask, for the kernels of
    PADDING_FREE_ATTENTION. Either way no loss predicts one example's first token from the example before it."""
    if padding_free:
        return {
            "input_ids": torch.tensor([[token for row in rows for token in row.input_ids]]),
            "labels": torch.tensor([[label for row in rows for label in starts_ignored(row)]]),
            "position_ids": torch.tensor([[position for row in rows for position in row.position_ids]]),
        }
    length = max(len(row.input_ids) for row in rows)
    batch = len(rows)
    input_ids = torch.full((batch, length), pad_id, dtype=torch.long)
    labels = torch.full((batch, length), IGNORE, dtype=torch.long)
    positions = torch.zeros((batch, length), dtype=torch.long)
    segments = torch.full((batch, length), -1, dtype=torch.long)
    for b, row in enumerate(rows):
        n = len(row.input_ids)
        input_ids[b, :n] = torch.tensor(row.input_ids)
        labels[b, :n] = torch.tensor(starts_ignored(row))
        positions[b, :n] = torch.tensor(row.position_ids)
        segments[b, :n] = torch.tensor(row.segments)
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool))
    same = segments[:, :, None] == segments[:, None, :]
    padding = segments[:, :, None] < 0
    eye = torch.eye(length, dtype=torch.bool)
    mask = (same & causal & ~padding) | (padding & eye)
    return {"input_ids": input_ids, "labels": labels, "position_ids": positions, "attention_mask": mask[:, None]}


def starts_ignored(row: PackedRow) -> list[int]:
    """The row's labels with each example's first token IGNORE: the loss shifts labels by one, so that label would
    be predicted from the last token of the example before (a document's first token is learned nowhere else
    either: nothing of its own comes before it)."""
    return [IGNORE if position == 0 else label for label, position in zip(row.labels, row.position_ids, strict=True)]
