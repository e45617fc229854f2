"""Serving a generative model: POST /generate and the OpenAI-style POST /v1/chat/completions, answered whole
(concurrent requests batched into one generate call) or streamed as server-sent events."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from service.batcher import ServiceBusyError, set_exception, set_result
from service.holder import ModelHolder
from service.requests import RequestError, json_body
from trainers.generative.chat import ConversationError, check_messages
from trainers.generative.generation import Generator, Limits, StreamState

MAX_NEW_TOKENS = 256  # per request; a request asking for more is refused
MAX_PROMPT_CHARS = 16_000  # all messages together
MAX_MESSAGES = 64
MAX_STREAMS = 8  # streams generating at once; one more is refused with 503
GENERATION_TIMEOUT_S = 300.0
GENERATE_KEYS = {"prompt", "messages", "max_new_tokens", "temperature", "top_p", "stream", "stop"}
MAX_STOPS, MAX_STOP_CHARS = 4, 64  # OpenAI's limit of stop strings, each this long at most


class GeneratorHolder(ModelHolder):
    """The production generative model, swapped when the alias moves."""

    def load(self, folder: Path) -> Generator:
        return Generator(folder)

    @property
    def generator(self) -> Generator:
        return self.loaded


@dataclass(frozen=True)
class GenerationRequest:
    """A checked request: the conversation, its limits, and whether to stream."""

    messages: list[dict[str, str]]
    limits: Limits
    stream: bool


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _stops(value: object) -> tuple[str, ...]:
    """`stop`: a string or a list of up to MAX_STOPS strings (OpenAI's shape); none when absent or null."""
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    shaped = isinstance(stops, list) and 1 <= len(stops) <= MAX_STOPS
    if not shaped or not all(isinstance(stop, str) and 0 < len(stop) <= MAX_STOP_CHARS for stop in stops):
        raise RequestError(
            f"stop must be a string or a list of 1 to {MAX_STOPS} non-empty strings of at most {MAX_STOP_CHARS} "
            "characters",
            param="stop",
        )
    return tuple(stops)


def _limits(max_new_tokens: object, temperature: object, top_p: object, stop: object = None) -> Limits:
    if not isinstance(max_new_tokens, int) or not _number(max_new_tokens) or not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise RequestError(f"max_new_tokens must be an integer from 1 to {MAX_NEW_TOKENS}", param="max_tokens")
    # a temperature near 0 overflows the sampling distribution: 0 means greedy, otherwise at least 0.01
    if not _number(temperature) or not (temperature == 0 or 0.01 <= temperature <= 2):
        raise RequestError("temperature must be 0 (greedy) or a number from 0.01 to 2", param="temperature")
    if not _number(top_p) or not 0.001 <= top_p <= 1:
        raise RequestError("top_p must be a number from 0.001 to 1", param="top_p")
    return Limits(max_new_tokens, float(temperature), float(top_p), _stops(stop))


def _answer_tokens(payload: dict) -> int:
    """OpenAI's `max_completion_tokens` (or the older `max_tokens`): a positive integer, answered up to
    MAX_NEW_TOKENS (the finish reason says `length` when that cut the answer)."""
    requested = payload.get("max_completion_tokens", payload.get("max_tokens"))
    if requested is None:
        return 128
    if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
        raise RequestError("max_tokens must be a positive integer", param="max_tokens")
    return min(requested, MAX_NEW_TOKENS)


def _conversation(messages: object) -> list[dict[str, str]]:
    try:
        checked = check_messages(messages)
    except ConversationError as error:
        raise RequestError(str(error)) from error
    if len(checked) > MAX_MESSAGES or sum(len(m["content"]) for m in checked) > MAX_PROMPT_CHARS:
        raise RequestError(f"at most {MAX_MESSAGES} messages of {MAX_PROMPT_CHARS} characters in all", 413)
    return checked


def parse_generate_request(body: bytes) -> GenerationRequest:
    """/generate: {"prompt": str} or {"messages": [...]}, with max_new_tokens, temperature, top_p, stream."""
    payload = json_body(body)
    if not isinstance(payload, dict) or ("prompt" in payload) == ("messages" in payload):
        raise RequestError('body must be a JSON object with "prompt" (text) or "messages" (a conversation)')
    unknown = sorted(set(payload) - GENERATE_KEYS)
    if unknown:
        raise RequestError(f"unknown keys: {', '.join(unknown)}")
    prompt = payload.get("prompt")
    if "prompt" in payload and not isinstance(prompt, str):
        raise RequestError("prompt must be text")
    messages = [{"role": "user", "content": prompt}] if "prompt" in payload else payload["messages"]
    limits = _limits(
        payload.get("max_new_tokens", 128),
        payload.get("temperature", 0.0),
        payload.get("top_p", 1.0),
        payload.get("stop"),
    )
    return GenerationRequest(_conversation(messages), limits, payload.get("stream") is True)


@dataclass(frozen=True)
class ChatRequest(GenerationRequest):
    """A checked /v1/chat/completions request: the dataset its `model` names, and the stream's options."""

    model: str | None = None
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the token counts


def parse_chat_request(body: bytes) -> ChatRequest:
    """/v1/chat/completions in OpenAI's shape (`model` names the dataset; options it does not use are ignored, as
    compatible servers do); `n` above 1 is refused. Unlike OpenAI's, the default temperature is 0: a fine-tuned
    model answers the same question the same way unless sampling is asked for."""
    payload = json_body(body)
    if not isinstance(payload, dict) or "messages" not in payload:
        raise RequestError('body must be a JSON object with "messages"', param="messages")
    if not _number(payload.get("n", 1)) or payload.get("n", 1) != 1:
        raise RequestError("n: only one choice per request is generated", param="n")
    temperature, top_p = payload.get("temperature"), payload.get("top_p")  # null: the defaults
    limits = _limits(
        _answer_tokens(payload),
        0.0 if temperature is None else temperature,
        1.0 if top_p is None else top_p,
        payload.get("stop"),
    )
    model, options = payload.get("model"), payload.get("stream_options") or {}
    return ChatRequest(
        _conversation(payload["messages"]),
        limits,
        payload.get("stream") is True,
        model if isinstance(model, str) and model else None,
        isinstance(options, dict) and options.get("include_usage") is True,
    )


@dataclass
class _Pending:
    messages: list[dict[str, str]]
    limits: Limits
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class GenerationBatcher:
    """Concurrent whole-answer requests with the same limits, gathered for up to `max_wait_ms`, answered by one
    batched generate call; at most `max_pending` wait, one more is refused at once."""

    def __init__(self, holder: GeneratorHolder, max_batch: int = 8, max_wait_ms: float = 10.0, max_pending: int = 64):
        self.holder, self.max_batch, self.max_wait = holder, max_batch, max_wait_ms / 1000
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="generation-batcher", daemon=True)
        self._thread.start()

    async def generate(self, messages: list[dict[str, str]], limits: Limits) -> tuple[str, tuple[str, int]]:
        """The model version and (answer, token count), once the batch holding this request is generated."""
        loop = asyncio.get_running_loop()
        pending = _Pending(messages, limits, loop.create_future(), loop)
        try:
            self._queue.put_nowait(pending)
        except queue.Full as error:
            raise ServiceBusyError(f"{self._queue.maxsize} requests are already waiting for the model") from error
        try:
            return await asyncio.wait_for(pending.future, GENERATION_TIMEOUT_S)
        except TimeoutError as error:
            raise RequestError(
                f"no answer within {GENERATION_TIMEOUT_S:.0f} s: the model is overloaded", 504
            ) from error

    def _collect(self) -> list[_Pending]:
        first = self._queue.get()
        if first is None:
            return []
        batch, deadline = [first], time.perf_counter() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if item is None:
                self._queue.put_nowait(None)
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        while batch := self._collect():
            generator, version = self.holder.generator, self.holder.version
            for limits in {item.limits for item in batch}:  # one generate call per set of limits
                group = [item for item in batch if item.limits == limits]
                self._answer(generator, version, group, limits)

    def _answer(self, generator: Generator, version: str, group: list[_Pending], limits: Limits) -> None:
        """Answer a group in one generate call; if that fails, each request alone: one bad request fails itself."""
        try:
            answers = generator.answer([item.messages for item in group], limits)
        except Exception as error:
            if len(group) > 1:
                for item in group:
                    self._answer(generator, version, [item], limits)
                return
            group[0].loop.call_soon_threadsafe(set_exception, group[0].future, error)
            return
        for item, answered in zip(group, answers, strict=True):
            item.loop.call_soon_threadsafe(set_result, item.future, (version, answered))

    def close(self) -> None:
        self._queue.put(None, timeout=10)


def sse(event: object) -> str:
    """One server-sent event carrying JSON (or the literal [DONE])."""
    return f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n"


def finish_reason(tokens: int, limits: Limits) -> str:
    """OpenAI's finish reason: `length` when the answer used every token it was allowed."""
    return "length" if tokens >= limits.max_new_tokens else "stop"


def generate_events(
    pieces: Iterator[str], state: StreamState, version: str, limits: Limits, generation_id: str
) -> Iterator[str]:
    """/generate's stream: {"text": piece} events, then {"done": true, ...} (or {"error": ...}) and [DONE]."""
    try:
        for piece in pieces:
            yield sse({"text": piece})
    except Exception as error:  # the generation failed midway: the client is told, not left waiting
        yield sse({"error": f"generation failed: {error}"})
    else:
        yield sse(
            {
                "done": True,
                "model_version": version,
                "generation_id": generation_id,
                "tokens": state.tokens,
                "finish_reason": finish_reason(state.tokens, limits),
            }
        )
    yield sse("[DONE]")


def chat_events(
    pieces: Iterator[str],
    state: StreamState,
    model: str,
    completion_id: str,
    limits: Limits,
    usage: int | None = None,
) -> Iterator[str]:
    """The OpenAI chunk stream: a role delta, content deltas, a finish chunk (or an error), the token counts when
    `usage` (the prompt's tokens) is given, then [DONE]."""
    created = int(time.time())

    def chunk(delta: dict, finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return sse(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [choice],
            }
        )

    yield chunk({"role": "assistant"})
    try:
        for piece in pieces:
            yield chunk({"content": piece})
    except Exception as error:
        yield sse({"error": {"message": f"generation failed: {error}", "type": "server_error"}})
    else:
        yield chunk({}, finish_reason(state.tokens, limits))
        if usage is not None:  # stream_options.include_usage: no choices, the counts of the whole answer
            counts = {"prompt_tokens": usage, "completion_tokens": state.tokens, "total_tokens": usage + state.tokens}
            event = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
            yield sse({**event, "choices": [], "usage": counts})
    yield sse("[DONE]")


@dataclass(frozen=True)
class Answer:
    """A whole answer as the log keeps it: its id (what /feedback names), model version, text and token count."""

    generation_id: str
    version: str
    text: str
    tokens: int


def chat_completion(model: str, answer: Answer, prompt_tokens: int, limits: Limits) -> dict[str, object]:
    """A whole answer in OpenAI's chat.completion shape; its id names the logged generation."""
    text, tokens = answer.text, answer.tokens
    return {
        "id": f"chatcmpl-{answer.generation_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason(tokens, limits),
            }
        ],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": tokens, "total_tokens": prompt_tokens + tokens},
    }
