"""Conversations as model text: the tokenizer's chat template, or a plain default one when it has none."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from contracts.chat import MessageShapeError, normalized_messages

# The default: role headers a small model learns quickly; the assistant header ends the prompt.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

Message = Mapping[str, str]


class ConversationError(ValueError):
    """A conversation that cannot be trained on or answered: names what is wrong."""


def check_messages(messages: object, where: str = "messages") -> list[dict[str, str]]:
    """`messages` as a list of {role, content} with known roles and text content, else ConversationError."""
    try:
        return normalized_messages(messages, where)
    except MessageShapeError as error:
        raise ConversationError(str(error)) from error


def ensure_chat_template(tokenizer) -> None:
    """Give a tokenizer without a chat template the default one (saved with it at export)."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE


def render_prompt(tokenizer, messages: Sequence[Message]) -> str:
    """The text the model continues: the conversation so far, ending with the assistant's header."""
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


def as_messages(record: Mapping[str, object]) -> tuple[list[dict[str, str]], str]:
    """A training record as (prompt messages, response): `{prompt, response}` (optionally `system`) or chat
    `{messages}` whose last message is the assistant's."""
    if "messages" in record:
        messages = check_messages(record["messages"])
        if messages[-1]["role"] != "assistant":
            raise ConversationError("messages: the last message must be the assistant's response")
        return messages[:-1], messages[-1]["content"]
    prompt, response = record.get("prompt"), record.get("response")
    if not isinstance(prompt, str) or not isinstance(response, str):
        raise ConversationError("expected text 'prompt' and 'response' (or chat 'messages')")
    system = record.get("system")
    head = [{"role": "system", "content": str(system)}] if system else []
    return [*head, {"role": "user", "content": prompt}], response
