"""A generative model behind the service: /generate and /v1/chat/completions, whole or streamed as server-sent
events, within per-request limits, logged with personal data masked."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from urllib.request import Request, urlopen

import polars as pl
import pytest

from service.app import build_app
from service.generation import MAX_NEW_TOKENS
from service.server import ServiceThread
from tests.servers import call
from trainers.generative.tiny import build_tiny_causal_lm
from trainers.registry import MODEL_CARD, promote


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry `assistant` whose production model is a tiny causal LM, exported as the SFT trainer does."""
    root = tmp_path_factory.mktemp("models") / "assistant"
    folder = build_tiny_causal_lm(root / "v1")
    (folder / MODEL_CARD).write_text(json.dumps({"model_kind": "causal_lm", "base_model": "tiny"}))
    promote(root, "v1")
    return root


@pytest.fixture
def service(registry: Path, tmp_path: Path):
    with ServiceThread(build_app(registry, tmp_path / "lake", token="")) as running:
        yield running


def events(url: str, body: dict) -> list[object]:
    """POST and read a server-sent event stream to its end: each event's JSON, or the string [DONE]."""
    request = Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urlopen(request, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    found = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            data = block.removeprefix("data: ")
            found.append(data if data == "[DONE]" else json.loads(data))
    return found


def test_a_streamed_answer_is_the_whole_answer_piece_by_piece(service: ServiceThread) -> None:
    body = {"prompt": "please reset my vpn", "max_new_tokens": 12}
    status, whole = call(f"{service.url}/generate", body)
    assert status == 200 and whole["model_version"] == "v1" and 1 <= whole["tokens"] <= 12

    streamed = events(f"{service.url}/generate", {**body, "stream": True})

    finish = "length" if whole["tokens"] == 12 else "stop"
    assert streamed[-1] == "[DONE]" and streamed[-2]["done"] is True and streamed[-2]["model_version"] == "v1"
    assert streamed[-2]["finish_reason"] == finish
    pieces = [event["text"] for event in streamed[:-2]]
    assert len(pieces) > 1 and "".join(pieces).strip() == whole["text"]


def test_chat_completions_answer_in_openais_shape_whole_and_streamed(service: ServiceThread) -> None:
    body = {"model": "assistant", "messages": [{"role": "user", "content": "my badge is broken"}], "max_tokens": 8}
    status, completion = call(f"{service.url}/v1/chat/completions", body)
    assert status == 200 and completion["object"] == "chat.completion"
    (choice,) = completion["choices"]
    tokens = completion["usage"]["completion_tokens"]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == ("length" if tokens == 8 else "stop")
    assert completion["usage"]["completion_tokens"] <= 8 and completion["usage"]["prompt_tokens"] > 0

    chunks = events(f"{service.url}/v1/chat/completions", {**body, "stream": True})

    assert chunks[-1] == "[DONE]" and chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert chunks[-2]["choices"][0]["finish_reason"] == choice["finish_reason"]
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:-2])
    assert content.strip() == choice["message"]["content"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/generate", {"prompt": "hi", "max_new_tokens": MAX_NEW_TOKENS + 1}, "max_new_tokens must be an integer"),
        ("/generate", {"prompt": "hi", "temperature": 3}, "temperature must be 0 (greedy) or a number"),
        ("/generate", {"prompt": "hi", "temperature": 1e-45}, "temperature must be 0 (greedy) or a number"),
        ("/generate", {"prompt": "hi", "temperature": True}, "temperature must be 0 (greedy) or a number"),
        ("/generate", {"prompt": "hi", "max_new_tokens": True}, "max_new_tokens must be an integer"),
        ("/generate", {"prompt": "hi", "seed": 1}, "unknown keys: seed"),
        ("/generate", {"prompt": "hi", "messages": []}, 'with "prompt" (text) or "messages"'),
        ("/generate", {"messages": [{"role": "robot", "content": "hi"}]}, "'robot' is not one of"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "n": 2}, "only one choice"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "n": True}, "only one choice"),
        ("/predict", {"texts": ["hi"]}, "served by a generative model"),
    ],
)
def test_a_request_beyond_the_limits_is_refused_naming_the_limit(
    service: ServiceThread, path: str, body: dict, message: str
) -> None:
    status, answer = call(f"{service.url}{path}", body)
    error = answer["error"]  # the /v1/ routes answer in OpenAI's shape: {"error": {"message", "type", ...}}
    assert status == 400 and message in (error["message"] if path.startswith("/v1/") else error)


def test_an_oversized_conversation_is_refused_with_413(service: ServiceThread) -> None:
    status, answer = call(f"{service.url}/generate", {"prompt": "x" * 20_000})
    assert status == 413 and "characters in all" in answer["error"]
    words = " ".join(["printer"] * 400)  # under the character limit, over the model's 512 positions with 256 more
    for stream in (False, True):
        status, answer = call(f"{service.url}/generate", {"prompt": words, "max_new_tokens": 256, "stream": stream})
        assert status == 413 and "exceeds the model's 512 positions" in answer["error"]


def test_streams_beyond_the_limit_are_refused_and_a_finished_one_frees_its_place(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.generation_routes as routes

    monkeypatch.setattr(routes, "MAX_STREAMS", 1)
    with ServiceThread(build_app(registry, tmp_path / "lake", token="")) as service:
        for _ in range(2):  # one at a time: each ends, and its place is free for the next
            assert events(f"{service.url}/generate", {"prompt": "hi", "max_new_tokens": 3, "stream": True})[-1] == (
                "[DONE]"
            )
    monkeypatch.setattr(routes, "MAX_STREAMS", 0)
    with ServiceThread(build_app(registry, tmp_path / "lake2", token="")) as service:
        status, answer = call(f"{service.url}/generate", {"prompt": "hi", "stream": True})
    assert status == 503 and "already streaming" in answer["error"]


def test_concurrent_requests_all_get_answers_and_the_log_masks_personal_data(registry: Path, tmp_path: Path) -> None:
    results: list[tuple[int, dict]] = []
    with ServiceThread(build_app(registry, tmp_path / "lake", token="")) as service:
        prompts = [f"mail me at jane.doe{n}@example.com about ticket {n}" for n in range(4)]
        threads = [
            threading.Thread(
                target=lambda p=p: results.append(call(f"{service.url}/generate", {"prompt": p, "max_new_tokens": 4}))
            )
            for p in prompts
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        metrics_text = urlopen(f"{service.url}/metrics", timeout=30).read().decode()
    assert [status for status, _ in results] == [200] * 4
    tokens = sum(answer["tokens"] for _, answer in results)
    assert f'refinery_generated_tokens_total{{dataset="assistant"}} {float(tokens)}' in metrics_text
    logged = pl.read_delta(str(tmp_path / "lake" / "generations"))
    assert logged.height == 4 and not logged["prompt"].str.contains("@example.com").any()
    assert logged["prompt"].str.contains("<EMAIL>").all()


def test_a_stream_whose_generation_fails_says_so_and_ends(registry: Path, tmp_path: Path) -> None:
    with ServiceThread(build_app(registry, tmp_path / "lake", token="")) as service:
        generator = service.app.state.served.served["assistant"].holder.generator

        def out_of_memory(**_: object) -> None:
            raise RuntimeError("CUDA out of memory (simulated)")

        generator.model.generate = out_of_memory
        streamed = events(f"{service.url}/generate", {"prompt": "hi", "stream": True})
        chunks = events(
            f"{service.url}/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream": True}
        )
        metrics_text = urlopen(f"{service.url}/metrics", timeout=30).read().decode()

    assert streamed == [{"error": "generation failed: CUDA out of memory (simulated)"}, "[DONE]"]
    assert "refinery_streams_failed_total 2.0" in metrics_text
    assert chunks[-2]["error"]["type"] == "server_error" and chunks[-1] == "[DONE]"
