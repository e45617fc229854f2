"""The HTTP routes of generative models: /generate (and /generate/{dataset}), /v1/chat/completions and /v1/models,
with the service's token, metrics and a log of every answer whose personal data is masked."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from contracts.model_folder import GENERATOR
from contracts.tables import GENERATIONS
from service.access import require_token
from service.batcher import ServiceBusyError
from service.generation import (
    MAX_STREAMS,
    Answer,
    GenerationRequest,
    chat_completion,
    chat_events,
    generate_events,
    parse_chat_request,
    parse_generate_request,
)
from service.logbook import DeltaAppender
from service.prometheus import ServiceMetrics
from service.request_schemas import ChatCompletionBody, GenerateBody, json_body_schema
from service.requests import GENERATION, RecentPredictions, RequestError, read_json_body
from service.served import ServedModel, ServedModels
from trainers.generative.generation import StreamState


def masked(text: str) -> str:
    """Text as the log keeps it: the personal data cleaning masks (e-mail, phone, card, IBAN, IP) as placeholders."""
    import polars as pl

    from recipe.pii import mask_pii

    return str(mask_pii(pl.Series([text]))[0])


async def generative(served: ServedModels, dataset: str | None) -> ServedModel:
    model = await served.lookup(dataset)
    if model.family != GENERATOR:
        raise RequestError(f"dataset {model.dataset!r} is served by a classifier: POST /predict/{model.dataset}")
    return model


def check_context(model: ServedModel, request: GenerationRequest) -> int:
    """The prompt's token count; refused (413) when prompt and answer would not fit the model's positions."""
    generator = model.holder.generator
    used = generator.prompt_tokens(request.messages)
    limit = generator.max_positions
    if limit and used + request.limits.max_new_tokens > limit:
        raise RequestError(
            f"the conversation is {used} tokens; with max_new_tokens {request.limits.max_new_tokens} "
            f"it exceeds the model's {limit} positions",
            413,
        )
    return used


def masked_context(messages: list[dict[str, str]]) -> str | None:
    """The turns before the last one, masked, as JSON (None for a single prompt): a logged answer's conversation."""
    earlier = [{"role": m["role"], "content": masked(m["content"])} for m in messages[:-1]]
    return json.dumps(earlier, ensure_ascii=False) if earlier else None


class Generations:
    """What the routes share: the stream limit, the log, the ids /feedback may name, and the two ways of answering."""

    def __init__(self, appender: DeltaAppender, metrics: ServiceMetrics, recent: RecentPredictions) -> None:
        self.appender, self.metrics, self.recent = appender, metrics, recent
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)

    def log(self, model: ServedModel, answer: Answer, request: GenerationRequest) -> None:
        """Log one answer under its id, its prompt, context and answer masked, and count its tokens."""
        self.metrics.generated_tokens.labels(model.dataset).inc(answer.tokens)
        self.appender.add(
            GENERATIONS,
            [
                {
                    "generation_id": answer.generation_id,
                    "generated_at": time.time(),
                    "dataset": model.dataset,
                    "model_version": answer.version,
                    "prompt": masked(request.messages[-1]["content"]),
                    "context": masked_context(request.messages),
                    "answer": masked(answer.text),
                    "tokens": answer.tokens,
                }
            ],
        )
        self.recent.add([answer.generation_id], GENERATION)

    def stream(self, model: ServedModel, request: GenerationRequest) -> tuple[Iterator[str], StreamState, str, str]:
        """The answer's pieces (logged once complete), its state, model version and id; at most MAX_STREAMS generate
        at once, one more is refused."""
        generation_id = uuid.uuid4().hex
        if not self.streams.acquire(blocking=False):
            raise ServiceBusyError(f"{MAX_STREAMS} answers are already streaming")
        generator, version = model.holder.generator, model.holder.version
        try:
            pieces, state = generator.stream(request.messages, request.limits, on_done=self.streams.release)
        except BaseException:
            self.streams.release()
            raise

        def logged() -> Iterator[str]:
            text, started = [], time.perf_counter()
            try:
                for piece in pieces:
                    if not text:
                        self.metrics.first_token.observe(time.perf_counter() - started)
                    text.append(piece)
                    yield piece
            except Exception:
                self.metrics.streams_failed.inc()
                raise
            self.log(model, Answer(generation_id, version, "".join(text), state.tokens), request)

        return logged(), state, version, generation_id

    async def whole(self, model: ServedModel, request: GenerationRequest) -> tuple[Answer, int]:
        """The logged answer and the prompt's token count, once the batched generation is done."""
        used = await asyncio.to_thread(check_context, model, request)
        version, (text, tokens) = await model.batcher.generate(request.messages, request.limits)
        answer = Answer(uuid.uuid4().hex, version, text, tokens)
        await asyncio.to_thread(self.log, model, answer, request)
        return answer, used


def add_generation_routes(
    app: FastAPI,
    served: ServedModels,
    appender: DeltaAppender,
    metrics: ServiceMetrics,
    token: str | None,
    recent: RecentPredictions,
) -> None:
    """POST /generate, /generate/{dataset} and /v1/chat/completions; GET /v1/models. Every answer has an id
    (`generation_id`; a chat completion's `chatcmpl-<id>`) that POST /feedback can rate or correct."""
    answers = Generations(appender, metrics, recent)

    @app.post("/generate", response_model=None, openapi_extra=json_body_schema(GenerateBody))
    async def generate_only(request: Request) -> Response | dict:
        return await generate(request, None)

    @app.post("/generate/{dataset}", response_model=None, openapi_extra=json_body_schema(GenerateBody))
    async def generate_dataset(request: Request, dataset: str) -> Response | dict:
        return await generate(request, dataset)

    async def generate(request: Request, dataset: str | None) -> Response | dict:
        require_token(request.headers.get("authorization"), token)
        model = await generative(served, dataset)
        parsed = parse_generate_request(await read_json_body(request))
        if parsed.stream:
            await asyncio.to_thread(check_context, model, parsed)
            pieces, state, version, generation_id = answers.stream(model, parsed)
            events = generate_events(pieces, state, version, parsed.limits, generation_id)
            return StreamingResponse(events, media_type="text/event-stream")
        answer, _ = await answers.whole(model, parsed)
        return {
            "dataset": model.dataset,
            "model_version": answer.version,
            "generation_id": answer.generation_id,
            "text": answer.text,
            "tokens": answer.tokens,
        }

    @app.post("/v1/chat/completions", response_model=None, openapi_extra=json_body_schema(ChatCompletionBody))
    async def chat(request: Request) -> Response | dict:
        require_token(request.headers.get("authorization"), token)
        parsed = parse_chat_request(await read_json_body(request))
        model = await generative(served, parsed.model)
        if parsed.stream:
            used = await asyncio.to_thread(check_context, model, parsed)
            pieces, state, _, generation_id = answers.stream(model, parsed)
            usage = used if parsed.include_usage else None
            completion = f"chatcmpl-{generation_id}"
            events = chat_events(pieces, state, model.dataset, completion, parsed.limits, usage)
            return StreamingResponse(events, media_type="text/event-stream")
        answer, used = await answers.whole(model, parsed)
        return chat_completion(model.dataset, answer, used, parsed.limits)

    @app.get("/v1/models")
    async def models(request: Request) -> dict:
        require_token(request.headers.get("authorization"), token)
        return {"object": "list", "data": [model_entry(model) for model in generators(served)]}

    @app.get("/v1/models/{name}")
    async def model(request: Request, name: str) -> dict:
        require_token(request.headers.get("authorization"), token)
        found = next((model for model in generators(served) if model.dataset == name), None)
        if found is None:
            raise RequestError(f"no generative model {name!r} is served", 404, param="model")
        return model_entry(found)


def generators(served: ServedModels) -> list[ServedModel]:
    """The served models that answer prompts, by dataset name."""
    return sorted((m for m in served.served.values() if m.family == GENERATOR), key=lambda m: m.dataset)


def model_entry(model: ServedModel) -> dict[str, object]:
    """A served generator as OpenAI's model object: its id is the dataset's name (what `model` selects)."""
    folder = model.holder.generator.folder
    created = int(folder.stat().st_mtime) if folder.exists() else 0
    return {"id": model.dataset, "object": "model", "created": created, "owned_by": f"refinery:{model.holder.version}"}
