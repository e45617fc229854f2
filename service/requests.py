"""Validation of request bodies: every refusal is a RequestError with the message the client gets."""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict

from trainers.evidence import MAX_K  # training examples returned beside one answer

MAX_TEXTS = 256
MAX_CHARS = 20_000
MAX_BODY_BYTES = 8 * 1024 * 1024  # 256 texts of 20,000 ASCII characters fit; a larger body is refused unread
MAX_LABEL_CHARS = 200
BODY_TIMEOUT_S = 30.0  # a client that sends its body slower than this holds a connection: refused with 408


class RequestError(ValueError):
    """A request the service refuses: the message the client gets, with its HTTP status."""

    def __init__(
        self, message: str, status: int = 400, headers: dict[str, str] | None = None, param: str | None = None
    ):
        super().__init__(message)
        self.status, self.headers, self.param = status, headers, param  # param: the request field at fault


def json_body(body: bytes) -> object:
    """The request body as JSON, or a RequestError naming the parse error."""
    try:
        return json.loads(body or b"null")
    except json.JSONDecodeError as error:
        raise RequestError(f"body is not valid JSON: {error.msg}") from error
    except RecursionError:
        raise RequestError("body is JSON nested too deep to read") from None


def parse_predict_request(body: bytes) -> tuple[list[str], int]:
    """Validate a /predict body: {"texts": [str, ...], "explain": k} within the size limits; k (default 0) is how
    many training examples to return beside each answer."""
    payload = json_body(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("texts"), list):
        raise RequestError('body must be a JSON object {"texts": ["...", ...]}')
    unknown = sorted(set(payload) - {"texts", "explain"})
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
    return texts, evidence_count(payload.get("explain", 0), "explain")


def evidence_count(value: object, name: str) -> int:
    """How many training examples a request asks for: an integer from 0 to MAX_K."""
    if isinstance(value, str) and value.isascii() and value.isdecimal() and len(value) <= 3:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_K:
        raise RequestError(f"{name} must be an integer from 0 to {MAX_K}, got {value!r}")
    return value


RATINGS = ("up", "down")
FEEDBACK_KINDS = ("label", "rating", "correction")  # a prediction's right label; a generation's rating or better answer


def parse_feedback_request(body: bytes) -> list[dict[str, str]]:
    """Validate a /feedback body: {"feedback": [{"prediction_id": str, <one of label, rating, correction>}, ...]};
    a chat completion's id (`chatcmpl-<id>`) names its generation."""
    payload = json_body(body)
    items = payload.get("feedback") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_TEXTS:
        shape = '{"feedback": [{"prediction_id": "...", "label": "..."}, ...]}'
        raise RequestError(f"body must be {shape} with 1 to {MAX_TEXTS} items")
    return [feedback_item(item, index) for index, item in enumerate(items)]


def feedback_item(item: object, index: int) -> dict[str, str]:
    """One feedback item: a prediction's label, or a generation's rating (up, down) or corrected answer."""
    given = [kind for kind in FEEDBACK_KINDS if isinstance(item, dict) and kind in item]
    if not isinstance(item, dict) or not isinstance(item.get("prediction_id"), str) or len(given) != 1:
        raise RequestError(f"feedback[{index}] needs a string prediction_id and one of {', '.join(FEEDBACK_KINDS)}")
    kind, value = given[0], item[given[0]]
    limit = MAX_LABEL_CHARS if kind == "label" else MAX_CHARS
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise RequestError(f"feedback[{index}].{kind} must be text of 1 to {limit} characters")
    if kind == "rating" and value not in RATINGS:
        raise RequestError(f"feedback[{index}].rating must be one of {', '.join(RATINGS)}, not {value!r}")
    return {"prediction_id": item["prediction_id"].removeprefix("chatcmpl-"), kind: value}


async def read_json_body(request) -> bytes:
    """The body of a JSON request, refused unread when its declared or actual size passes MAX_BODY_BYTES."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise RequestError(f"content-type must be application/json, not {kind or 'missing'!r}", 415)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise RequestError(f"the body may hold at most {MAX_BODY_BYTES} bytes", 413)
    chunks, size = [], 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise RequestError(f"the body may hold at most {MAX_BODY_BYTES} bytes", 413)
                chunks.append(chunk)
    except TimeoutError:
        raise RequestError(f"the body did not arrive within {BODY_TIMEOUT_S:g} s", 408) from None
    return b"".join(chunks)


PREDICTION, GENERATION = "prediction", "generation"  # what an id names: a label, or an answer
FEEDBACK_FOR = {"label": PREDICTION, "rating": GENERATION, "correction": GENERATION}


class RecentPredictions:
    """The ids of the latest predictions and answers this service gave (bounded), each with what it names, so
    feedback can only judge real ones, and only in a way that fits (a label for a prediction, a rating or
    correction for an answer)."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity, self._ids = capacity, OrderedDict()

    def add(self, ids: list[str], kind: str = PREDICTION) -> None:
        for prediction_id in ids:
            self._ids[prediction_id] = kind
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    def unknown(self, ids: list[str]) -> list[str]:
        return [prediction_id for prediction_id in ids if prediction_id not in self._ids]

    def mismatched(self, items: list[dict[str, str]]) -> list[str]:
        """Why items judge an id the wrong way (a rating of a prediction, a label of an answer)."""
        wrong = []
        for item in items:
            kind = next(name for name in FEEDBACK_FOR if name in item)
            named = self._ids.get(item["prediction_id"])
            if named is not None and named != FEEDBACK_FOR[kind]:
                takes = "a label" if named == PREDICTION else "a rating or a correction"
                wrong.append(f"{item['prediction_id']!r} is a {named}: it takes {takes}, not a {kind}")
        return wrong
