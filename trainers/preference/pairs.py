"""Preference pairs as token rows: a prompt (or conversation) with its chosen and its rejected answer, each
rendered with the chat template, loss-labelled on the answer only, batched as one forward pass of both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from trainers.generative.chat import ConversationError, check_messages
from trainers.generative.packing import TokenizedExample, collate_rows, tokenize_example, unpacked_rows


@dataclass(frozen=True)
class TokenizedPair:
    """The chosen and the rejected answer to one prompt, tokenized alike."""

    chosen: TokenizedExample
    rejected: TokenizedExample


def answer_records(record: Mapping[str, object]) -> tuple[dict, dict]:
    """A pair record, `{prompt, chosen, rejected}` (optionally `system`) or `{messages, chosen, rejected}` (the
    conversation up to the answer), as two supervised records that differ only in their answer."""
    chosen, rejected = record.get("chosen"), record.get("rejected")
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise ConversationError("a preference pair needs text 'chosen' and 'rejected' answers")
    if "messages" in record:
        turns = check_messages(record["messages"])
        return tuple({"messages": [*turns, {"role": "assistant", "content": answer}]} for answer in (chosen, rejected))
    base = {key: record[key] for key in ("prompt", "system") if key in record}
    return {**base, "response": chosen}, {**base, "response": rejected}


def tokenize_pair(tokenizer: PreTrainedTokenizerBase, record: Mapping[str, object], max_length: int) -> TokenizedPair:
    """Both answers of a pair within `max_length` tokens each, the prompt truncated the same way in both."""
    chosen, rejected = answer_records(record)
    return TokenizedPair(
        tokenize_example(tokenizer, chosen, max_length), tokenize_example(tokenizer, rejected, max_length)
    )


def collate_pairs(pairs: Sequence[TokenizedPair], pad_id: int) -> dict[str, torch.Tensor]:
    """One batch for one forward pass: the chosen answers' rows first, then the rejected answers' in the same order."""
    rows = unpacked_rows([pair.chosen for pair in pairs] + [pair.rejected for pair in pairs])
    return collate_rows(rows, pad_id)
