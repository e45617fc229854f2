"""A chat message as every common format writes it, brought to one shape: {role, content} with text content.

OpenAI's messages (content as text or a list of text parts; the developer role), ShareGPT's turns
(`from`/`value`: human, gpt, system) and tool turns all become system, user, assistant or tool messages.
"""

from __future__ import annotations

from collections.abc import Mapping

# what `refinery init` recognises; `documents` (a pretraining dataset) is declared only when asked for
CHAT_FORMATS = ("openai", "sharegpt", "alpaca", "prompt-response", "preference", "documents")
ROLE_NAMES = {  # a format's role name -> the role a chat template knows
    "system": "system",
    "developer": "system",  # OpenAI's newer name for system instructions
    "user": "user",
    "human": "user",  # ShareGPT
    "assistant": "assistant",
    "gpt": "assistant",  # ShareGPT
    "tool": "tool",
}
ROLES = ("system", "user", "assistant", "tool")
EXTRA_KEYS = {"name", "tool_call_id", "tool_calls", "refusal", "weight"}  # allowed beside the message, not used


class MessageShapeError(ValueError):
    """A message that is no {role, content} of text in a format Refinery reads: names what is wrong."""


def message_text(content: object, where: str) -> str:
    """A message's content as text: a string, or OpenAI's list of text parts joined."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        raise MessageShapeError(f"{where}.content: expected text or a list of text parts")
    texts = []
    for index, part in enumerate(content):
        if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
            raise MessageShapeError(f"{where}.content[{index}]: a {kind!r} part is not text; only text parts are read")
        texts.append(part["text"])
    return "\n".join(texts)


def normalized_message(message: object, where: str) -> dict[str, str]:
    """One message as {role, content}, from OpenAI's or ShareGPT's shape."""
    if not isinstance(message, Mapping):
        raise MessageShapeError(f"{where}: expected an object with a role and content")
    if "from" in message and "role" not in message:  # ShareGPT
        role, content, keys = message.get("from"), message.get("value"), set(message) - {"from", "value"}
    else:
        role, content, keys = message.get("role"), message.get("content"), set(message) - {"role", "content"}
    if keys - EXTRA_KEYS:
        raise MessageShapeError(f"{where}: unexpected keys {sorted(keys - EXTRA_KEYS)}")
    if role not in ROLE_NAMES:
        raise MessageShapeError(f"{where}.role: {role!r} is not one of {', '.join(ROLE_NAMES)}")
    return {"role": ROLE_NAMES[role], "content": message_text(content, where)}


def normalized_messages(messages: object, where: str = "messages") -> list[dict[str, str]]:
    """A conversation as a non-empty list of {role, content} messages."""
    if not isinstance(messages, list) or not messages:
        raise MessageShapeError(f"{where}: expected a non-empty list of messages")
    return [normalized_message(message, f"{where}[{index}]") for index, message in enumerate(messages)]
