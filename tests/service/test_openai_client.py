"""The OpenAI-compatible routes as the official `openai` client uses them: model discovery, whole and streamed
completions, stop strings, token limits, content parts and roles, errors in OpenAI's shape, and a described API."""

from __future__ import annotations

import json

import openai
import pytest

from service.app import build_app
from service.generation import MAX_NEW_TOKENS
from service.server import ServiceThread
from tests.servers import call
from trainers.generative.tiny import build_tiny_causal_lm
from trainers.registry import MODEL_CARD, promote

TOKEN = "s3cret-token"
ASK = [{"role": "user", "content": "my badge is broken, what now?"}]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    """A service (with a token) whose one dataset, `assistant`, is answered by a tiny causal LM."""
    root = tmp_path_factory.mktemp("models") / "assistant"
    folder = build_tiny_causal_lm(root / "v1")
    (folder / MODEL_CARD).write_text(json.dumps({"model_kind": "causal_lm", "base_model": "tiny"}))
    promote(root, "v1")
    with ServiceThread(build_app(root, tmp_path_factory.mktemp("lake"), token=TOKEN)) as running:
        yield running


@pytest.fixture(scope="module")
def client(service: ServiceThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{service.url}/v1", api_key=TOKEN, max_retries=0, timeout=60)


def answer(client: openai.OpenAI, **options) -> tuple[str, str]:
    completion = client.chat.completions.create(model="assistant", messages=ASK, max_tokens=24, **options)
    return completion.choices[0].message.content, completion.choices[0].finish_reason


def streamed(client: openai.OpenAI, **options) -> tuple[str, list]:
    chunks = list(
        client.chat.completions.create(model="assistant", messages=ASK, max_tokens=24, stream=True, **options)
    )
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks


def test_the_client_lists_and_retrieves_the_served_generators(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == ["assistant"]
    assert client.models.retrieve("assistant").owned_by == "refinery:v1"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("weather")
    assert missing.value.body["type"] == "not_found_error" and "'weather'" in missing.value.body["message"]


def test_whole_and_streamed_answers_agree_and_the_stream_ends_with_the_usage(client: openai.OpenAI) -> None:
    whole, finish = answer(client)
    text, chunks = streamed(client, stream_options={"include_usage": True})
    assert text.strip() == whole and chunks[-2].choices[0].finish_reason == finish
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage.prompt_tokens > 0 and 1 <= usage.completion_tokens <= 24
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_a_stop_string_ends_the_answer_before_it_whole_and_streamed(client: openai.OpenAI) -> None:
    whole, _ = answer(client)
    assert len(whole) >= 8, whole  # a greedy answer long enough to stop inside
    stop = whole[len(whole) // 2 : len(whole) // 2 + 3]
    expected = whole[: whole.index(stop)].strip()
    assert answer(client, stop=stop) == (expected, "stop")
    assert answer(client, stop=["never appears", stop])[0] == expected
    text, _ = streamed(client, stop=[stop])
    assert text.strip() == expected and stop not in text


def test_content_parts_and_the_developer_role_are_read_as_text(client: openai.OpenAI) -> None:
    parts = [{"type": "text", "text": "my badge is broken,"}, {"type": "text", "text": "what now?"}]
    messages = [{"role": "developer", "content": "Answer briefly."}, {"role": "user", "content": parts}]
    completion = client.chat.completions.create(model="assistant", messages=messages, max_tokens=4)
    assert completion.choices[0].message.role == "assistant"


def test_a_large_max_tokens_is_answered_within_the_services_limit(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="assistant", messages=ASK, max_tokens=512)
    assert 1 <= completion.usage.completion_tokens <= MAX_NEW_TOKENS


def test_refusals_reach_the_client_as_openai_errors_with_the_field_at_fault(
    client: openai.OpenAI, service: ServiceThread
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="assistant", messages=ASK, n=2)
    assert refused.value.body["type"] == "invalid_request_error" and refused.value.body["param"] == "n"
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="assistant", messages=ASK, stop=["a", "b", "c", "d", "e"])
    assert refused.value.body["param"] == "stop"
    wrong = openai.OpenAI(base_url=f"{service.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        wrong.models.list()
    assert denied.value.body["type"] == "authentication_error" and denied.value.body["code"] == "invalid_api_key"


def test_the_api_description_declares_the_request_bodies_behind_the_token(service: ServiceThread) -> None:
    status, _ = call(f"{service.url}/openapi.json")
    assert status == 401
    status, described = call(f"{service.url}/openapi.json", token=TOKEN)
    assert status == 200
    chat = described["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]
    assert {"messages", "stop", "max_tokens", "stream_options"} <= set(chat["schema"]["properties"])
    predict = described["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert "texts" in predict["schema"]["properties"]
    assert "/v1/models" in described["paths"]
    for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):  # no page that reads the description unasked
        assert call(f"{service.url}{page}")[0] == 404, page
