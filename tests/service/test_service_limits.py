"""The service's edges: bounded bodies and queues, few metric series, JSON only, real auth, real feedback ids."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest

from service import deadlines
from service import requests as requests_module
from service.access import has_token, is_loopback
from service.app import build_app
from service.batcher import MicroBatcher, ServiceBusyError
from service.requests import MAX_BODY_BYTES
from service.server import ServiceThread
from tests.conftest import build_tiny_model
from tests.servers import call
from trainers.registry import promote


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with one exported tiny model in production."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from trainers.export import export_model

    root = tmp_path_factory.mktemp("models")
    source = build_tiny_model(root / "tiny", "bert")
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2, ignore_mismatched_sizes=True)
    export_model(model, AutoTokenizer.from_pretrained(source), {"a": 0, "b": 1}, {}, root / "intent" / "v1")
    promote(root / "intent", "v1")
    return root / "intent"


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict, dict]:
    """POST raw bytes with exactly these headers over a real connection; status, JSON answer and headers."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("POST", parts.path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}"), dict(response.getheaders())
    finally:
        connection.close()


def test_a_body_over_the_limit_is_refused_before_it_is_read(registry: Path) -> None:
    with ServiceThread(build_app(registry, token="")) as service:
        declared = {"Content-Type": "application/json", "Content-Length": str(MAX_BODY_BYTES + 1)}
        status, body, _ = post(f"{service.url}/predict", b"{}", declared)  # the server never waits for 8 MiB
        assert status == 413 and "at most" in body["error"]
        chunked = b'{"texts": ["' + b"x" * (MAX_BODY_BYTES + 10) + b'"]}'
        status, body, _ = post(f"{service.url}/predict", chunked, {"Content-Type": "application/json"})
        assert status == 413


def test_only_json_bodies_are_read(registry: Path) -> None:
    with ServiceThread(build_app(registry, token="")) as service:
        form = json.dumps({"texts": ["vpn down"]}).encode()
        status, body, _ = post(f"{service.url}/predict", form, {"Content-Type": "text/plain"})
        assert status == 415 and "application/json" in body["error"]
        status, _, _ = post(f"{service.url}/predict", form, {"Content-Type": "application/json; charset=utf-8"})
        assert status == 200


def test_requests_to_random_paths_share_one_metrics_series(registry: Path) -> None:
    with ServiceThread(build_app(registry, token="")) as service:
        for _ in range(200):
            call(f"{service.url}/{uuid.uuid4().hex}", {})
        with urlopen(f"{service.url}/metrics", timeout=30) as response:
            text = response.read().decode()
    series = [line for line in text.splitlines() if line.startswith("refinery_requests_total{")]
    assert any('endpoint="unmatched",status="404"' in line for line in series)
    assert len(series) <= 3, series


def test_metrics_need_the_token_from_anywhere_but_loopback(registry: Path) -> None:
    from fastapi.testclient import TestClient  # its client address is "testclient": not loopback

    with TestClient(build_app(registry, token="s3cret")) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "bearer s3cret"}).status_code == 200
        client.app.state.close()
    with TestClient(build_app(registry, token="")) as client:
        assert client.get("/metrics").status_code == 403
        client.app.state.close()


def test_the_bearer_check_takes_any_scheme_case_and_only_the_token() -> None:
    assert has_token("Bearer s3cret", "s3cret") and has_token("bearer s3cret", "s3cret")
    assert not has_token("Bearer s3cre", "s3cret") and not has_token("Basic s3cret", "s3cret")
    assert not has_token(None, "s3cret") and not has_token("Bearer", "s3cret")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("testclient") and not is_loopback(None)


def test_feedback_must_label_a_prediction_this_service_made(registry: Path) -> None:
    with ServiceThread(build_app(registry, token="")) as service:
        _, answer = call(f"{service.url}/predict", {"texts": ["vpn down"]})
        known = answer["predictions"][0]["id"]
        status, body = call(f"{service.url}/feedback", {"feedback": [{"prediction_id": "forged", "label": "a"}]})
        assert status == 400 and "'forged'" in body["error"]
        too_long = {"feedback": [{"prediction_id": known, "label": "x" * 201}]}
        assert call(f"{service.url}/feedback", too_long)[0] == 400
        assert call(f"{service.url}/feedback", {"feedback": [{"prediction_id": known, "label": "a"}]}) == (
            200,
            {"accepted": 1},
        )


class _SlowModel:
    """A classifier that takes its time, so requests pile up behind it."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def predict(self, texts: list[str]) -> list[str]:
        self.release.wait(10)
        return list(texts)


def test_a_full_queue_refuses_at_once_instead_of_growing() -> None:
    slow = _SlowModel()
    holder = type("Holder", (), {"classifier": slow, "version": "v1"})()
    batcher = MicroBatcher(holder, max_texts=1, max_wait_ms=0, max_pending=2)

    async def scenario() -> list[object]:
        first = asyncio.ensure_future(batcher.predict(["a"]))  # taken by the worker, which then waits
        await asyncio.sleep(0.2)
        queued = [asyncio.ensure_future(batcher.predict([t])) for t in ("b", "c")]
        await asyncio.sleep(0.1)
        with pytest.raises(ServiceBusyError, match="2 requests are already waiting"):
            await batcher.predict(["d"])
        slow.release.set()
        return await asyncio.gather(first, *queued)

    started = time.monotonic()
    assert asyncio.run(scenario()) == [("v1", ["a"]), ("v1", ["b"]), ("v1", ["c"])]
    assert time.monotonic() - started < 5
    batcher.close()


def test_the_prediction_log_keeps_its_rows_through_a_failed_append_and_writes_them_later(tmp_path: Path) -> None:
    import polars as pl

    from service.logbook import DeltaAppender

    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "predictions").write_text("not a folder: the append fails")
    appender = DeltaAppender(lake, flush_seconds=3600)
    appender.add("predictions", [{"prediction_id": "a", "label": "x"}, {"prediction_id": "b", "label": "y"}])
    with pytest.raises(Exception):  # noqa: B017  the storage's own error, whatever its type
        appender.flush()
    appender.add("predictions", [{"prediction_id": "c", "label": "z"}])
    assert appender.buffered == 3
    (lake / "predictions").unlink()  # storage is back
    appender.flush()
    assert pl.read_delta(str(lake / "predictions"))["prediction_id"].to_list() == ["a", "b", "c"]
    assert appender.buffered == 0
    appender.close()


def test_the_prediction_log_waits_while_lake_maintenance_holds_the_table(tmp_path: Path) -> None:
    import polars as pl

    from contracts.table_lock import table_lock
    from service.logbook import DeltaAppender

    appender = DeltaAppender(tmp_path, flush_seconds=3600)
    appender.add("predictions", [{"prediction_id": "a", "label": "x"}])
    with table_lock(tmp_path, "predictions"):  # as `refinery lake maintain` does while it compacts
        flushing = threading.Thread(target=appender.flush)
        flushing.start()
        flushing.join(timeout=1.0)
        assert flushing.is_alive() and not (tmp_path / "predictions").exists()
    flushing.join(timeout=30)
    assert pl.read_delta(str(tmp_path / "predictions"))["prediction_id"].to_list() == ["a"]
    appender.close()


def test_serving_a_non_loopback_host_needs_a_token_or_insecure(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.access import InsecureHostError, check_host

    monkeypatch.delenv("REFINERY_API_TOKEN", raising=False)
    check_host("127.0.0.1")
    check_host("0.0.0.0", insecure=True)
    with pytest.raises(InsecureHostError, match=r"refusing to serve on 0\.0\.0\.0 without a token"):
        check_host("0.0.0.0")
    monkeypatch.setenv("REFINERY_API_TOKEN", "s3cret")
    check_host("0.0.0.0")


def closed_unanswered(client: socket.socket) -> bool:
    """Whether the server closed this connection without a byte of answer."""
    try:
        return client.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_a_connection_that_never_completes_its_request_head_is_closed(registry: Path, monkeypatch) -> None:
    monkeypatch.setattr(deadlines, "REQUEST_HEAD_TIMEOUT_S", 0.5)
    with ServiceThread(build_app(registry, token="")) as service:
        parts = urlsplit(service.url)
        silent = socket.create_connection((parts.hostname, parts.port), timeout=10)
        slow = socket.create_connection((parts.hostname, parts.port), timeout=10)
        started = time.monotonic()
        try:
            for piece in (b"GET /health HTTP/1.1\r\n", b"Host: x\r\n", b"X-Slow: 1\r\n"):
                slow.sendall(piece)  # bytes keep arriving, but the head never completes
                time.sleep(0.3)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending
        assert closed_unanswered(slow) and closed_unanswered(silent)
        assert time.monotonic() - started < 5
        with urlopen(f"{service.url}/health", timeout=10) as response:  # honest clients are still served
            assert response.status == 200


def test_a_body_that_trickles_in_slower_than_the_deadline_gets_408(registry: Path, monkeypatch) -> None:
    monkeypatch.setattr(requests_module, "BODY_TIMEOUT_S", 0.5)
    with ServiceThread(build_app(registry, token="")) as service:
        parts = urlsplit(service.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as client:
            head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            client.sendall(head + b'{"texts": [')
            answer = http.client.HTTPResponse(client)
            answer.begin()
            assert answer.status == 408 and "did not arrive within 0.5 s" in json.loads(answer.read())["error"]
