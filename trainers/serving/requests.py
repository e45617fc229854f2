"""Validation of request bodies: every refusal is a RequestError with the message the client gets."""

from __future__ import annotations

import json

MAX_TEXTS = 256
MAX_CHARS = 20_000


class RequestError(ValueError):
    """A request the service refuses: the message the client gets, with its HTTP status."""

    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers


def json_body(body: bytes) -> object:
    """The request body as JSON, or a RequestError naming the parse error."""
    try:
        return json.loads(body or b"null")
    except json.JSONDecodeError as error:
        raise RequestError(f"body is not valid JSON: {error.msg}") from error


def parse_predict_request(body: bytes) -> list[str]:
    """Validate a /predict body: {"texts": [str, ...]} within the size limits."""
    payload = json_body(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("texts"), list):
        raise RequestError('body must be a JSON object {"texts": ["...", ...]}')
    unknown = sorted(set(payload) - {"texts"})
    if unknown:
        raise RequestError(f"unknown fields: {', '.join(unknown)}")
    texts = payload["texts"]
    if not texts or len(texts) > MAX_TEXTS:
        raise RequestError(f"texts must hold 1 to {MAX_TEXTS} strings, got {len(texts)}")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestError(f"texts[{index}] is not a string")
        if not text.strip():
            raise RequestError(f"texts[{index}] is empty")
        if len(text) > MAX_CHARS:
            raise RequestError(f"texts[{index}] has {len(text)} characters, more than {MAX_CHARS}")
    return texts


def parse_feedback_request(body: bytes) -> list[dict[str, str]]:
    """Validate a /feedback body: {"feedback": [{"prediction_id": str, "label": str}, ...]}."""
    payload = json_body(body)
    items = payload.get("feedback") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_TEXTS:
        shape = '{"feedback": [{"prediction_id": "...", "label": "..."}, ...]}'
        raise RequestError(f"body must be {shape} with 1 to {MAX_TEXTS} items")
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("prediction_id", "label")):
            raise RequestError(f"feedback[{index}] needs string fields prediction_id and label")
    return [{"prediction_id": item["prediction_id"], "label": item["label"]} for item in items]
