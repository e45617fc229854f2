"""The request bodies as `/openapi.json` declares them, so clients and generators see each route's fields.

The routes still read bodies themselves (size-bounded, then checked field by field in `service.requests` and
`service.generation`): these models describe the bodies, they do not parse them.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from trainers.evidence import MAX_K


class PredictBody(pydantic.BaseModel):
    """POST /predict: texts to label."""

    texts: list[str] = pydantic.Field(min_length=1, max_length=256, description="1 to 256 texts")
    explain: int = pydantic.Field(0, ge=0, le=MAX_K, description="training examples to return beside each answer")


class FeedbackItem(pydantic.BaseModel):
    """One of label (a classifier's prediction), rating (up or down) or correction (a generation's better answer)."""

    prediction_id: str
    label: str | None = None
    rating: Literal["up", "down"] | None = None
    correction: str | None = None


class FeedbackBody(pydantic.BaseModel):
    """POST /feedback: the right labels of predictions, or ratings and corrections of answers, this service gave."""

    feedback: list[FeedbackItem] = pydantic.Field(min_length=1, max_length=256)


class GenerateBody(pydantic.BaseModel):
    """POST /generate: a prompt or a conversation, and the limits of the answer."""

    prompt: str | None = None
    messages: list[dict[str, Any]] | None = pydantic.Field(None, description="{role, content} messages")
    max_new_tokens: int = pydantic.Field(128, ge=1, le=256)
    temperature: float = pydantic.Field(0.0, ge=0, le=2, description="0: greedy")
    top_p: float = pydantic.Field(1.0, gt=0, le=1)
    stop: str | list[str] | None = pydantic.Field(None, description="up to 4 strings that end the answer")
    stream: bool = False


class ChatCompletionBody(pydantic.BaseModel):
    """POST /v1/chat/completions, in OpenAI's shape; `model` names the dataset (GET /v1/models lists them)."""

    model: str | None = None
    messages: list[dict[str, Any]] = pydantic.Field(
        description="system, developer, user, assistant or tool messages; content as text or text parts"
    )
    max_completion_tokens: int | None = pydantic.Field(None, ge=1, description="answered up to 256 tokens")
    max_tokens: int | None = pydantic.Field(None, ge=1, description="the older name of max_completion_tokens")
    temperature: float | None = pydantic.Field(None, ge=0, le=2, description="default 0 (greedy), unlike OpenAI's 1")
    top_p: float | None = pydantic.Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    n: Literal[1] = 1
    stream: bool = False
    stream_options: dict[str, bool] | None = pydantic.Field(None, description='{"include_usage": true}')


def json_body_schema(model: type[pydantic.BaseModel]) -> dict[str, object]:
    """A route's `openapi_extra`: its required JSON body, described by `model` (nested models inlined)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    for name, definition in definitions.items():  # the nested models, where a $ref can find them
        schema.setdefault("properties", {})
        for field in schema["properties"].values():
            items = field.get("items", {})
            if items.get("$ref", "").endswith(f"/{name}"):
                field["items"] = definition
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
