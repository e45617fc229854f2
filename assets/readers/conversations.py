"""Chat records (OpenAI `messages` or ShareGPT `conversations`, see contracts.chat) as a generation dataset's
documents: the last user message is the text, the final assistant message the response, and the turns before
them the context (JSON)."""

from __future__ import annotations

import json

from assets.readers.protocol import ParsedRecords
from assets.storage.records import quarantine_raw
from contracts.chat import MessageShapeError, normalized_messages

PROMPT, ANSWER, EARLIER = "__prompt", "__response", "__context"  # the source columns a conversation becomes


class ConversationShapeError(ValueError):
    """A conversation that is no chat ending in a user message and the assistant's answer."""


def split_conversation(value: object) -> tuple[str, str, str | None]:
    """(last user message, final assistant message, the earlier turns as JSON or None), else ConversationShapeError."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ConversationShapeError(f"not JSON: {error.msg} at character {error.pos}") from error
        except RecursionError as error:  # a hostile nesting ('[' * 100000): refused, never a crash
            raise ConversationShapeError("not JSON this reader takes: nested too deeply") from error
    try:
        value = normalized_messages(value, "messages")
    except MessageShapeError as error:
        raise ConversationShapeError(str(error)) from error
    if len(value) < 2 or value[-1]["role"] != "assistant" or value[-2]["role"] != "user":
        raise ConversationShapeError("a conversation ends with a user message and the assistant's answer to it")
    earlier = [{"role": m["role"], "content": m["content"]} for m in value[:-2]]
    return value[-2]["content"], value[-1]["content"], json.dumps(earlier, ensure_ascii=False) if earlier else None


def split_conversations(batch: ParsedRecords, column: str, source: str) -> ParsedRecords:
    """The batch with each record's conversation in `column` split into prompt, response and context columns; a
    record whose conversation has another shape goes to the rejects, whole, naming what is wrong."""
    columns = batch.frame.to_dict(as_series=False) if batch.frame is not None else batch.columns
    values = columns.get(column, [None] * batch.size)
    rejects, keep, parts = list(batch.rejects), [], []
    for index, value in enumerate(values):
        try:
            parts.append(split_conversation(value))
            keep.append(index)
        except ConversationShapeError as error:
            record = {name: vals[index] for name, vals in columns.items() if name != "source_row"}
            row = columns["source_row"][index]
            rejects.append(quarantine_raw(source, row, "conversation_shape", f"column {column!r}: {error}", record))
    kept = {name: [vals[i] for i in keep] for name, vals in columns.items() if name != column}
    for name, position in ((PROMPT, 0), (ANSWER, 1), (EARLIER, 2)):
        kept[name] = [part[position] for part in parts]
    return ParsedRecords(kept, rejects)


def joined_prompt(instruction: object, extra: object) -> str | None:
    """An instruction and its input as one prompt (the input after a blank line); the instruction alone when the
    input is empty."""
    if instruction is None:
        return None
    text, extra = str(instruction), "" if extra is None else str(extra)
    return f"{text}\n\n{extra}" if extra.strip() else text


def join_inputs(batch: ParsedRecords, instruction: str, extra: str) -> ParsedRecords:
    """The batch with each record's instruction and input joined into the prompt column (an Alpaca record)."""
    columns = batch.frame.to_dict(as_series=False) if batch.frame is not None else dict(batch.columns)
    size = len(columns["source_row"])
    instructions, extras = columns.get(instruction, [None] * size), columns.get(extra, [None] * size)
    columns[PROMPT] = [joined_prompt(i, x) for i, x in zip(instructions, extras, strict=True)]
    return ParsedRecords({k: v for k, v in columns.items() if k not in (instruction, extra)}, list(batch.rejects))
