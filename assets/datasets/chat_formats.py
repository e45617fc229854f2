"""Which instruction or chat format a sample is in: OpenAI messages, ShareGPT, Alpaca, prompt and response columns,
or preference pairs (a chosen and a rejected answer).

`refinery init` declares a generation dataset from what this finds (or from `--format`), so nested columns never
reach the classification profile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl

from assets.readers.mapping import RecordMapping
from contracts.chat import CHAT_FORMATS

MESSAGES_COLUMNS = ("messages", "conversations", "conversation", "chat", "dialog")
RESPONSE_COLUMNS = ("response", "completion", "output", "answer")
DOCUMENT_COLUMNS = ("text", "body", "content", "document", "page")
PROMPT_COLUMNS = ("prompt", "instruction", "question", "input", "query", "text")


class ChatFormatError(ValueError):
    """A requested format the sample does not hold: names the columns it lacks."""


@dataclass(frozen=True)
class ChatFormat:
    """A format found in a sample, and the record mapping that reads it."""

    name: str
    mapping: RecordMapping
    reason: str


def first_value(frame: pl.DataFrame, column: str) -> object:
    """The column's first non-null value as Python data (a JSON string parsed)."""
    values = frame[column].drop_nulls()
    if values.is_empty():
        return None
    value = values[0]
    if isinstance(value, pl.Series):
        value = value.to_list()
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return None
    return value


def messages_shape(value: object) -> str | None:
    """openai or sharegpt when the value is a list of messages in that shape."""
    if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
        return None
    if all("role" in m and "content" in m for m in value):
        return "openai"
    if all("from" in m and "value" in m for m in value):
        return "sharegpt"
    return None


def conversation_format(frame: pl.DataFrame, column: str | None = None) -> ChatFormat | None:
    """The messages column (given, or the first that holds conversations) and its shape."""
    candidates = [column] if column else [c for c in frame.columns if c.lower() in MESSAGES_COLUMNS] + frame.columns
    for name in dict.fromkeys(candidates):
        if name not in frame.columns:
            raise ChatFormatError(f"no column {name!r} (columns: {', '.join(frame.columns)})")
        shape = messages_shape(first_value(frame, name))
        if shape:
            reason = f"column {name!r} holds {shape} conversations"
            return ChatFormat(shape, RecordMapping(label_column=None, messages_column=name), reason)
    return None


def column_named(frame: pl.DataFrame, names: tuple[str, ...], skip: str | None = None) -> str | None:
    """The first column (case-insensitive) among `names`, other than `skip`."""
    lowered = {c.lower(): c for c in frame.columns if c != skip}
    return next((lowered[n] for n in names if n in lowered), None)


def column_format(frame: pl.DataFrame) -> ChatFormat | None:
    """Alpaca (instruction, input, output) or prompt and response columns."""
    lowered = {c.lower(): c for c in frame.columns}
    if "instruction" in lowered and "output" in lowered:
        extra = lowered.get("input")
        mapping = RecordMapping(
            text_column=lowered["instruction"],
            label_column=None,
            response_column=lowered["output"],
            input_column=extra,
        )
        return ChatFormat("alpaca", mapping, "columns instruction, output" + (", input" if extra else ""))
    response = column_named(frame, RESPONSE_COLUMNS)
    prompt = column_named(frame, PROMPT_COLUMNS, skip=response)
    texts = response and prompt and frame[prompt].dtype == pl.String and frame[response].dtype == pl.String
    if texts and frame[response].n_unique() > frame.height / 2:  # answers vary; a label column repeats
        mapping = RecordMapping(text_column=prompt, label_column=None, response_column=response)
        return ChatFormat("prompt-response", mapping, f"columns {prompt!r} (prompt) and {response!r} (response)")
    return None


def preference_format(frame: pl.DataFrame) -> ChatFormat | None:
    """Preference records: `chosen` and `rejected` columns (text, or TRL's messages), with a prompt column or
    without one (TRL's implicit prompt: each answer holds the whole conversation)."""
    chosen, rejected = column_named(frame, ("chosen",)), column_named(frame, ("rejected",))
    if not (chosen and rejected):
        return None
    prompt = column_named(frame, PROMPT_COLUMNS)
    mapping = RecordMapping(
        text_column=prompt or "prompt", label_column=None, chosen_column=chosen, rejected_column=rejected
    )
    where = f"{prompt!r} (prompt), " if prompt else "no prompt column (each answer holds its conversation), "
    return ChatFormat("preference", mapping, f"columns {where}{chosen!r} and {rejected!r} (the answers)")


def detect_chat_format(
    frame: pl.DataFrame, requested: str | None = None, messages_column: str | None = None
) -> ChatFormat | None:
    """The sample's instruction or chat format (None: not one; a classification dataset); a requested format or
    messages column the sample does not hold is refused by name."""
    if requested not in (None, *CHAT_FORMATS):
        raise ChatFormatError(f"unknown format {requested!r}: one of {', '.join(CHAT_FORMATS)}")
    found = None if messages_column else preference_format(frame)  # before conversations: answers may be messages
    found = found or conversation_format(frame, messages_column)
    if messages_column and found is None:
        raise ChatFormatError(f"column {messages_column!r} holds no OpenAI or ShareGPT conversations")
    found = found or column_format(frame)
    if requested and (found is None or found.name != requested):
        what = f"{found.name} ({found.reason})" if found else "no chat format"
        raise ChatFormatError(f"--format {requested}: the sample holds {what}; columns: {', '.join(frame.columns)}")
    return found


def chosen_chat_format(
    frame: pl.DataFrame,
    *,
    response_column: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    requested: str | None = None,
    messages_column: str | None = None,
) -> ChatFormat | None:
    """The format `refinery init` declares: prompt and response columns when a response column is given, none when
    a label column is (a classification dataset), else what the sample holds."""
    if response_column:
        if response_column not in frame.columns:
            raise ChatFormatError(f"no column {response_column!r} (columns: {', '.join(frame.columns)})")
        prompt = text_column or column_named(frame, PROMPT_COLUMNS, skip=response_column)
        if prompt not in frame.columns:
            raise ChatFormatError(
                f"which column holds the prompts? --text-column (columns: {', '.join(frame.columns)})"
            )
        mapping = RecordMapping(text_column=prompt, label_column=None, response_column=response_column)
        return ChatFormat("prompt-response", mapping, f"columns {prompt!r} (prompt) and {response_column!r} (response)")
    if requested == "documents":
        return documents_format(frame, text_column)
    if label_column and not (requested or messages_column):
        return None
    return detect_chat_format(frame, requested, messages_column)


def documents_format(frame: pl.DataFrame, text_column: str | None) -> ChatFormat:
    """Documents for continued pre-training: the given text column, else one named like a document's."""
    column = text_column or column_named(frame, DOCUMENT_COLUMNS)
    if column not in frame.columns:
        raise ChatFormatError(f"which column holds the documents? --text-column (columns: {', '.join(frame.columns)})")
    return ChatFormat(
        "documents", RecordMapping(text_column=column, label_column=None), f"column {column!r} (documents)"
    )
