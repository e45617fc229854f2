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
from urllib.error import HTTPError
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

    with TestClient(build_app(registry, token="s3cret", hosts=frozenset({"testserver"}))) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "bearer s3cret"}).status_code == 200
        client.app.state.close()
    with TestClient(build_app(registry, token="", hosts=frozenset({"testserver"}))) as client:
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
            for piece in (b"GET /health HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n", b"X-Slow: 1\r\n"):
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
            head = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            client.sendall(head + b'Content-Length: 100\r\n\r\n{"texts": [')
            answer = http.client.HTTPResponse(client)
            answer.begin()
            assert answer.status == 408 and "did not arrive within 0.5 s" in json.loads(answer.read())["error"]


def trickle(client: socket.socket, stop: threading.Event, every_s: float = 0.2) -> None:
    """Send one body byte at a time until stopped or the server closes (uvicorn's keep-alive resets on each)."""
    while not stop.wait(every_s):
        try:
            client.sendall(b" ")
        except OSError:
            return


def test_an_answer_sent_before_the_body_ended_closes_the_connection(registry: Path, monkeypatch) -> None:
    monkeypatch.setattr(deadlines, "UNREAD_BODY_LINGER_S", 0.5)
    with ServiceThread(build_app(registry, token="s3cret")) as service:
        parts = urlsplit(service.url)
        client = socket.create_connection((parts.hostname, parts.port), timeout=10)
        head = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        client.sendall(head + b"Content-Length: 100000000\r\n\r\n{")
        answer = http.client.HTTPResponse(client)
        answer.begin()
        assert answer.status == 401  # answered at once, the 100 MB never read
        answer.read()
        stop = threading.Event()
        sender = threading.Thread(target=trickle, args=(client, stop), daemon=True)
        sender.start()
        started = time.monotonic()
        try:
            client.settimeout(4)
            assert client.recv(1) == b""  # the server ended the connection though bytes kept coming
            sender.join(timeout=4)
            assert not sender.is_alive()  # and then closed it: sending fails
        finally:
            stop.set()
            client.close()
        assert time.monotonic() - started < 4


def test_health_checks_are_answered_while_slow_bodies_hold_every_ordinary_place(registry: Path) -> None:
    with ServiceThread(build_app(registry, token=""), concurrency=4) as service:
        parts = urlsplit(service.url)
        stop, held = threading.Event(), []
        try:
            for _ in range(16):  # four take the ordinary places, the others are refused with a 503
                client = socket.create_connection((parts.hostname, parts.port), timeout=10)
                head = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                client.sendall(head + b'Content-Length: 100000\r\n\r\n{"texts": [')
                threading.Thread(target=trickle, args=(client, stop, 1.0), daemon=True).start()
                held.append(client)
            silent = [socket.create_connection((parts.hostname, parts.port), timeout=10) for _ in range(12)]
            held += silent  # and more connections that send nothing at all
            time.sleep(0.3)
            with urlopen(f"{service.url}/health", timeout=5) as response:
                assert response.status == 200
            with pytest.raises(HTTPError) as refused:
                urlopen(f"{service.url}/predict", data=b'{"texts": ["x"]}', timeout=5)
            assert refused.value.code == 503
        finally:
            stop.set()
            for client in held:
                client.close()


def test_no_connection_outlives_its_lifetime_even_when_busy(registry: Path, monkeypatch) -> None:
    monkeypatch.setattr(deadlines, "CONNECTION_LIFETIME_S", 1.0)
    with ServiceThread(build_app(registry, token="")) as service:
        parts = urlsplit(service.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        started, answered = time.monotonic(), 0
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            while time.monotonic() - started < 5:  # keep-alive requests, one every 0.1 s
                connection.request("GET", "/health")
                connection.getresponse().read()
                connection.auto_open = 0  # a closed connection must not be silently reopened
                answered += 1
                time.sleep(0.1)
        assert answered >= 3 and time.monotonic() - started < 3


def get_with_host(url: str, host: str) -> tuple[int, dict]:
    """GET `url` with this Host header, as a page whose name was rebound to 127.0.0.1 would send it."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", parts.path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_request_by_a_name_other_than_loopback_or_an_allowed_one_is_refused(registry: Path, monkeypatch) -> None:
    monkeypatch.setenv("REFINERY_ALLOWED_HOSTS", "models.internal")
    with ServiceThread(build_app(registry, token="")) as service:
        status, body = get_with_host(f"{service.url}/health", "rebind.attacker.example")
        assert status == 421 and "rebind.attacker.example" in body["error"]
        for allowed in ("localhost:8080", "127.0.0.1", "[::1]:8080", "MODELS.internal.", "models.internal:443"):
            assert get_with_host(f"{service.url}/health", allowed)[0] == 200, allowed


def test_json_nested_past_the_parser_is_a_400_and_a_failure_is_a_logged_500(
    registry: Path, monkeypatch, caplog
) -> None:
    import service.app as app_module

    with ServiceThread(build_app(registry, token="")) as service:
        status, body = call(f"{service.url}/predict", raw=b'{"texts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
        assert status == 400 and "nested too deep" in body["error"]

        def broken(model):
            raise RuntimeError("the model folder vanished")

        monkeypatch.setattr(app_module, "model_health", broken)
        with caplog.at_level("ERROR", logger="refinery.service"):
            status, body = call(f"{service.url}/health")
        assert status == 500 and "see the service log" in body["error"]
        assert "the model folder vanished" in caplog.text and "GET /health failed" in caplog.text


def test_predictions_answered_before_a_sigkill_reach_the_lake_through_the_spool(registry: Path, tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys

    import polars as pl

    from service.logbook import DeltaAppender
    from service.server import free_port

    lake, port = tmp_path / "lake", free_port()
    command = [sys.executable, "-m", "service.server", "--models", str(registry), "--lake", str(lake)]
    environment = {**os.environ, "REFINERY_API_TOKEN": ""}
    server = subprocess.Popen([*command, "--port", str(port)], env=environment, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        answered = [call(f"http://127.0.0.1:{port}/predict", {"texts": ["vpn down", "printer jam"]}) for _ in range(3)]
        ids = {item["id"] for status, body in answered for item in body["predictions"] if status == 200}
        server.send_signal(signal.SIGKILL)  # before the flush thread's next append (every 2 s)
        server.wait(timeout=30)
    finally:
        server.kill()
    assert len(ids) == 6
    restarted = DeltaAppender(lake, flush_seconds=3600)  # the next service adopts the dead one's spool
    restarted.close()
    logged = pl.read_delta(str(lake / "predictions"))["prediction_id"].to_list()
    assert sorted(logged) == sorted(ids)


def test_a_full_spool_drops_and_counts_new_rows_instead_of_growing(tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    from service.prometheus import ServiceMetrics
    from service.spool import Spool

    spool, metrics = Spool(tmp_path / "spool", max_bytes=200), ServiceMetrics()
    metrics.watch_spool(spool)
    spool.add("predictions", [{"prediction_id": "a" * 50}, {"prediction_id": "b" * 50}])
    spool.add("predictions", [{"prediction_id": "c" * 50}] * 3)
    assert spool.dropped == 3 and spool.size < 200
    assert "refinery_log_dropped_rows 3.0" in generate_latest(metrics.registry).decode()
    spool.close()
