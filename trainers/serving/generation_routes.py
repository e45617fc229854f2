"""The HTTP routes of generative models: /generate (and /generate/{dataset}) and /v1/chat/completions, with the
service's token, metrics and a log of every answer whose personal data is masked."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from trainers.serving.access import require_token
from trainers.serving.generation import (
    GENERATIONS_TABLE,
    GenerationRequest,
    chat_completion,
    chat_events,
    generate_events,
    parse_chat_request,
    parse_generate_request,
    prompt_tokens,
)
from trainers.serving.logbook import DeltaAppender
from trainers.serving.requests import RequestError, read_json_body
from trainers.serving.served import GENERATIVE, ServedModel, ServedModels


def masked(text: str) -> str:
    """Text as the log keeps it: e-mail addresses, phone and card numbers, ... replaced by placeholders."""
    import polars as pl

    from recipe.pii import mask_pii

    return str(mask_pii(pl.Series([text]))[0])


def generative(served: ServedModels, dataset: str | None) -> ServedModel:
    model = served.get(dataset)
    if model.kind != GENERATIVE:
        raise RequestError(f"dataset {model.dataset!r} is served by a classifier: POST /predict/{model.dataset}")
    return model


def add_generation_routes(app: FastAPI, served: ServedModels, appender: DeltaAppender, token: str | None) -> None:
    """POST /generate, /generate/{dataset} and /v1/chat/completions."""

    def log(model: ServedModel, version: str, request: GenerationRequest, text: str, tokens: int) -> None:
        appender.add(GENERATIONS_TABLE, [{
            "generation_id": uuid.uuid4().hex, "generated_at": time.time(), "dataset": model.dataset,
            "model_version": version, "prompt": masked(request.messages[-1]["content"]), "answer": masked(text),
            "tokens": tokens,
        }])  # fmt: skip

    def streamed(model: ServedModel, request: GenerationRequest) -> tuple[Iterator[str], str]:
        generator, version = model.holder.generator, model.holder.version
        pieces = generator.stream(request.messages, request.limits)

        def logged() -> Iterator[str]:
            text = []
            for piece in pieces:
                text.append(piece)
                yield piece
            log(model, version, request, "".join(text), len(generator.tokenizer("".join(text))["input_ids"]))

        return logged(), version

    @app.post("/generate")
    async def generate_only(request: Request):
        return await generate(request, None)

    @app.post("/generate/{dataset}")
    async def generate_dataset(request: Request, dataset: str):
        return await generate(request, dataset)

    async def generate(request: Request, dataset: str | None):
        require_token(request.headers.get("authorization"), token)
        model = generative(served, dataset)
        parsed = parse_generate_request(await read_json_body(request))
        if parsed.stream:
            pieces, version = streamed(model, parsed)
            return StreamingResponse(generate_events(pieces, version), media_type="text/event-stream")
        version, (text, tokens) = await model.batcher.generate(parsed.messages, parsed.limits)
        log(model, version, parsed, text, tokens)
        return {"dataset": model.dataset, "model_version": version, "text": text, "tokens": tokens}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        require_token(request.headers.get("authorization"), token)
        parsed, dataset = parse_chat_request(await read_json_body(request))
        model = generative(served, dataset)
        if parsed.stream:
            pieces, _ = streamed(model, parsed)
            events = chat_events(pieces, model.dataset, f"chatcmpl-{uuid.uuid4().hex}")
            return StreamingResponse(events, media_type="text/event-stream")
        version, (text, tokens) = await model.batcher.generate(parsed.messages, parsed.limits)
        log(model, version, parsed, text, tokens)
        used = prompt_tokens(model.holder.generator, parsed.messages)
        return chat_completion(model.dataset, text, tokens, used, parsed.limits)
