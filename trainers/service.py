"""`refinery serve`: the production model as an HTTP service (FastAPI on uvicorn).

POST /predict batches concurrent requests into one forward pass (dynamic batching), GET /health,
GET /metrics (Prometheus), POST /feedback. The model is swapped when the `production` alias moves:
the new one loads beside the old one, which keeps answering until the swap, so no request fails.
Predictions and feedback are appended to Delta tables by a background writer, off the request path.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from trainers.registry import ALIASES, PRODUCTION, resolve_alias

MAX_TEXTS = 256
MAX_CHARS = 20_000
TOKEN_VARIABLE = "REFINERY_API_TOKEN"
PREDICTIONS_TABLE = "predictions"
FEEDBACK_TABLE = "feedback"


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


class ModelHolder:
    """The production model; a watcher thread loads a new one when the alias file changes, then swaps."""

    def __init__(
        self,
        model_root: Path,
        poll_seconds: float = 1.0,
        on_reload: Callable[[str], None] | None = None,
        quantize: bool = False,
    ):
        self.model_root, self.poll_seconds, self.on_reload = model_root, poll_seconds, on_reload
        self.quantize = quantize
        self._stamp: int | None = None
        self.version: str | None = None
        self.classifier = None
        self._stop = threading.Event()
        self.refresh()
        self._watcher = threading.Thread(target=self._watch, name="model-watcher", daemon=True)
        self._watcher.start()

    def refresh(self) -> bool:
        """Load the aliased model if the alias file changed; the old model serves until the new one is ready."""
        from trainers.export import Classifier

        stamp = (self.model_root / ALIASES).stat().st_mtime_ns
        if stamp == self._stamp:
            return False
        folder = resolve_alias(self.model_root, PRODUCTION)
        if folder.name != self.version:
            loaded = Classifier(folder, quantize=self.quantize)
            self.classifier, self.version = loaded, folder.name  # one reference swap; readers see old or new
            if self.on_reload:
                self.on_reload(folder.name)
        self._stamp = stamp
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception as error:  # a half-written or broken model must not stop the service
                print(f"model reload failed, still serving {self.version}: {error}", flush=True)

    def close(self) -> None:
        self._stop.set()


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class MicroBatcher:
    """Collects concurrent requests for up to `max_wait_ms` (or `max_texts` texts) and predicts them together."""

    def __init__(self, holder: ModelHolder, max_texts: int = 64, max_wait_ms: float = 5.0, observe=None):
        self.holder, self.max_texts, self.max_wait = holder, max_texts, max_wait_ms / 1000
        self.observe = observe or (lambda size: None)
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._thread.start()

    async def predict(self, texts: list[str]) -> tuple[str, list]:
        loop = asyncio.get_running_loop()
        pending = _Pending(texts, loop.create_future(), loop)
        self._queue.put(pending)
        return await pending.future

    def _collect(self) -> list[_Pending]:
        first = self._queue.get()
        if first is None:
            return []
        batch, size = [first], len(first.texts)
        deadline = time.perf_counter() + self.max_wait
        while size < self.max_texts:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)
                break
            batch.append(item)
            size += len(item.texts)
        return batch

    def _run(self) -> None:
        while batch := self._collect():
            classifier, version = self.holder.classifier, self.holder.version  # one model for the whole batch
            texts = [text for item in batch for text in item.texts]
            self.observe(len(texts))
            try:
                predictions = classifier.predict(texts)
            except Exception as error:
                for item in batch:
                    item.loop.call_soon_threadsafe(_set_exception, item.future, error)
                continue
            start = 0
            for item in batch:
                part = predictions[start : start + len(item.texts)]
                start += len(item.texts)
                item.loop.call_soon_threadsafe(_set_result, item.future, (version, part))

    def close(self) -> None:
        self._queue.put(None)


def _set_result(future: asyncio.Future, value: object) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future, error: Exception) -> None:
    if not future.done():
        future.set_exception(error)


@dataclass
class DeltaAppender:
    """Appends rows to Delta tables from a background thread, in batches, so requests never wait on storage."""

    lake: Path | None
    flush_seconds: float = 2.0
    _rows: dict[str, list[dict]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="delta-appender", daemon=True)
        if self.lake is not None:
            self._thread.start()

    def add(self, table: str, rows: list[dict]) -> None:
        if self.lake is not None:
            with self._lock:
                self._rows.setdefault(table, []).extend(rows)

    def flush(self) -> None:
        import pyarrow as pa
        from deltalake import write_deltalake

        with self._lock:
            pending, self._rows = self._rows, {}
        for table, rows in pending.items():
            if rows:
                write_deltalake(str(self.lake / table), pa.Table.from_pylist(rows), mode="append",
                                schema_mode="merge")  # fmt: skip

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception as error:  # storage trouble is logged, never raised into requests
                print(f"could not append to the lake: {error}", flush=True)

    def close(self) -> None:
        self._stop.set()
        if self.lake is not None:
            self.flush()


class Metrics:
    """Prometheus metrics of one service instance, in its own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("refinery_requests_total", "HTTP requests", ["endpoint", "status"],
                                registry=self.registry)  # fmt: skip
        self.latency = Histogram("refinery_request_seconds", "Request latency", ["endpoint"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))  # fmt: skip
        self.batch_size = Histogram("refinery_batch_texts", "Texts per model forward pass", registry=self.registry,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))  # fmt: skip
        self.errors = Counter("refinery_errors_total", "Requests that failed inside the service",
                              registry=self.registry)  # fmt: skip
        self.reloads = Counter("refinery_model_reloads_total", "Model swaps", registry=self.registry)
        self.predictions = Counter("refinery_predictions_total", "Texts classified", ["label"], registry=self.registry)
        self.model = Gauge("refinery_model_info", "Model being served", ["version"], registry=self.registry)


def build_app(
    model_root: Path,
    lake: Path | None = None,
    token: str | None = None,
    max_wait_ms: float = 5.0,
    quantize: bool | None = None,
):
    """The FastAPI app for the production model of `model_root`; `lake` receives predictions and feedback.

    `quantize` (default: on CPU) serves int8 dynamically quantized Linear layers.
    """
    import torch

    quantize = (not torch.cuda.is_available()) if quantize is None else quantize
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    token = token if token is not None else os.environ.get(TOKEN_VARIABLE) or None
    metrics = Metrics()

    def reloaded(version: str) -> None:
        metrics.reloads.inc()
        metrics.model.clear()
        metrics.model.labels(version).set(1)

    holder = ModelHolder(model_root, on_reload=reloaded, quantize=quantize)
    batcher = MicroBatcher(holder, max_wait_ms=max_wait_ms, observe=metrics.batch_size.observe)
    appender = DeltaAppender(lake)
    app = FastAPI(title="Refinery model service", docs_url=None, redoc_url=None)
    app.state.holder, app.state.batcher, app.state.appender = holder, batcher, appender

    @app.middleware("http")
    async def measure(request: Request, call_next):
        started = time.perf_counter()
        endpoint = request.url.path
        try:
            response = await call_next(request)
        except Exception:
            metrics.errors.inc()
            metrics.requests.labels(endpoint, "500").inc()
            return JSONResponse({"error": "internal error; see the service log"}, status_code=500)
        metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        return response

    def require_token(request: Request) -> None:
        if token and request.headers.get("authorization") != f"Bearer {token}":
            raise RequestError(f"missing or wrong bearer token (set by {TOKEN_VARIABLE})", 401,
                               {"WWW-Authenticate": "Bearer"})  # fmt: skip

    @app.exception_handler(RequestError)
    async def refused(request: Request, error: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=error.status, headers=error.headers)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model_version": holder.version, "precision": holder.classifier.precision}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/predict")
    async def predict(request: Request):
        require_token(request)
        texts = parse_predict_request(await request.body())
        version, predictions = await batcher.predict(texts)
        now = time.time()
        ids = [uuid.uuid4().hex for _ in texts]
        for prediction in predictions:
            metrics.predictions.labels(prediction.label).inc()
        appender.add(PREDICTIONS_TABLE, [
            {"prediction_id": i, "predicted_at": now, "model_version": version, "text": t, "label": p.label,
             "score": p.score}
            for i, t, p in zip(ids, texts, predictions, strict=True)
        ])  # fmt: skip
        return {
            "model_version": version,
            "predictions": [
                {"id": i, "label": p.label, "score": p.score} for i, p in zip(ids, predictions, strict=True)
            ],
        }

    @app.post("/feedback")
    async def feedback(request: Request):
        require_token(request)
        items = parse_feedback_request(await request.body())
        now = time.time()
        appender.add(FEEDBACK_TABLE, [{**item, "received_at": now} for item in items])
        return {"accepted": len(items)}

    @app.exception_handler(404)
    async def not_found(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": f"no route {request.method} {request.url.path}"}, status_code=404)

    @app.exception_handler(405)
    async def not_allowed(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": f"{request.method} is not allowed on {request.url.path}"}, status_code=405)

    def close() -> None:
        batcher.close()
        holder.close()
        appender.close()

    app.state.close = close
    return app


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class ServiceThread:
    """The service on uvicorn in a background thread (tests, benchmarks); `port=0` picks a free port."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        port = port or free_port(host)
        self.app, self.url = app, f"http://{host}:{port}"
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServiceThread:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the service failed to start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.state.close()


def serve(model_root: Path, lake: Path | None, host: str, port: int, quantize: bool | None = None) -> None:
    """Run the service in the foreground until interrupted."""
    import uvicorn

    app = build_app(model_root, lake, quantize=quantize)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
    finally:
        app.state.close()


def main(argv: list[str] | None = None) -> None:
    """`python -m trainers.service --models DIR [--lake DIR] [--host H] [--port P]`."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--models", type=Path, required=True, help="registry folder with aliases.json")
    parser.add_argument("--lake", type=Path, default=None, help="lake folder for predictions and feedback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--no-quantize", action="store_true", help="serve float32 weights on CPU too")
    args = parser.parse_args(argv)
    serve(args.models, args.lake, args.host, args.port, quantize=False if args.no_quantize else None)


if __name__ == "__main__":
    main()
