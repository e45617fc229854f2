"""Preference records as a preference dataset's documents: a prompt with a chosen and a rejected answer.

Three shapes are read, as TRL and most preference sets write them: text (`prompt`, `chosen`, `rejected` strings),
conversational with an explicit prompt (`prompt` a list of messages or a string, each answer a list ending in
the assistant's message) and conversational with an implicit prompt (each answer the whole conversation; the
prompt is what they share). The last user message is the text, the answers' final assistant messages are
chosen and rejected, and the turns before them the context (JSON).
"""

from __future__ import annotations

from assets.readers.conversations import EARLIER, PROMPT, ConversationShapeError, split_conversation
from assets.readers.protocol import ParsedRecords
from assets.storage.records import quarantine_raw

PAIR_CHOSEN, PAIR_REJECTED = "__chosen", "__rejected"  # the source columns a record's two answers become


class PairShapeError(ValueError):
    """A preference record that is no prompt with two answers in one of the shapes read: names what is wrong."""


def as_turns(prompt: object) -> list:
    """A conversational record's prompt as messages: none, a user message of text, or the messages given."""
    if prompt is None:
        return []
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list):
        return prompt
    raise PairShapeError(f"the prompt is a {type(prompt).__name__}: expected text or a list of messages")


def whole_conversations(chosen: list, rejected: list) -> bool:
    """Whether both answers are whole conversations (they open with a turn other than the assistant's): their
    prompt is in them, and a `prompt` column beside them (UltraFeedback writes one) only repeats it."""

    def opens_with_a_question(turns: list) -> bool:
        first = turns[0] if turns else None
        return isinstance(first, dict) and first.get("role", first.get("from")) not in ("assistant", "gpt")

    return opens_with_a_question(chosen) and opens_with_a_question(rejected)


def split_pair(prompt: object, chosen: object, rejected: object) -> tuple[str, str, str, str | None]:
    """(prompt text, chosen answer, rejected answer, earlier turns as JSON or None), else PairShapeError."""
    if isinstance(chosen, str) and isinstance(rejected, str):
        if isinstance(prompt, list):  # a conversation answered two ways: each answer is the assistant's message
            chosen, rejected = [{"role": "assistant", "content": chosen}], [{"role": "assistant", "content": rejected}]
        elif not isinstance(prompt, str):
            raise PairShapeError("two text answers need their prompt, as text or a list of messages")
        else:
            return prompt, chosen, rejected, None
    if not (isinstance(chosen, list) and isinstance(rejected, list)):
        kinds = f"{type(chosen).__name__} and {type(rejected).__name__}"
        raise PairShapeError(f"the answers are a {kinds}: both must be text or both lists of messages")
    head = [] if whole_conversations(chosen, rejected) else as_turns(prompt)
    try:
        chosen_turns, rejected_turns = split_conversation(head + chosen), split_conversation(head + rejected)
    except ConversationShapeError as error:
        raise PairShapeError(str(error)) from error
    if (chosen_turns[0], chosen_turns[2]) != (rejected_turns[0], rejected_turns[2]):
        raise PairShapeError("the chosen and the rejected answer continue different conversations")
    return chosen_turns[0], chosen_turns[1], rejected_turns[1], chosen_turns[2]


def split_pairs(batch: ParsedRecords, columns: tuple[str, str, str], source: str) -> ParsedRecords:
    """The batch with each record's (prompt, chosen, rejected) `columns` split into prompt, answers and context; a
    record of another shape goes to the rejects, whole, naming what is wrong."""
    values = batch.frame.to_dict(as_series=False) if batch.frame is not None else batch.columns
    prompts, chosen, rejected = (values.get(column, [None] * batch.size) for column in columns)
    rejects, keep, parts = list(batch.rejects), [], []
    for index in range(batch.size):
        try:
            parts.append(split_pair(prompts[index], chosen[index], rejected[index]))
            keep.append(index)
        except (PairShapeError, RecursionError) as error:
            reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
            record = {name: vals[index] for name, vals in values.items() if name != "source_row"}
            rejects.append(quarantine_raw(source, values["source_row"][index], "preference_shape", reason, record))
    kept = {name: [vals[i] for i in keep] for name, vals in values.items() if name not in columns}
    for name, position in ((PROMPT, 0), (PAIR_CHOSEN, 1), (PAIR_REJECTED, 2), (EARLIER, 3)):
        kept[name] = [part[position] for part in parts]
    return ParsedRecords(kept, rejects)
