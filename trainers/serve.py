"""`refinery serve`: the production model over HTTP (POST /predict, GET /health), reloaded when its alias moves."""

from __future__ import annotations

import json
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from trainers.registry import ALIASES, PRODUCTION, resolve_alias

MAX_TEXTS = 256
MAX_CHARS = 20_000


class ModelHolder:
    """The loaded production model; reloads when `aliases.json` changes, without dropping requests."""

    def __init__(self, model_root: Path):
        self.model_root = model_root
        self._lock = threading.Lock()
        self._stamp: int | None = None
        self.version: str | None = None
        self.classifier = None
        self.refresh()

    def refresh(self):
        """Load the aliased model if the alias file changed since the last load; returns the classifier."""
        from trainers.export import Classifier

        stamp = (self.model_root / ALIASES).stat().st_mtime_ns
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    folder = resolve_alias(self.model_root, PRODUCTION)
                    self.classifier, self.version, self._stamp = Classifier(folder), folder.name, stamp
        return self.classifier


def parse_predict_request(body: bytes) -> list[str]:
    """Validate a /predict body: {"texts": [str, ...]} within the size limits, else ValueError."""
    try:
        payload = json.loads(body or b"null")
    except json.JSONDecodeError as error:
        raise ValueError(f"body is not valid JSON: {error.msg}") from error
    if not isinstance(payload, dict) or not isinstance(payload.get("texts"), list):
        raise ValueError('body must be a JSON object {"texts": ["...", ...]}')
    texts = payload["texts"]
    if not texts or len(texts) > MAX_TEXTS:
        raise ValueError(f"texts must hold 1 to {MAX_TEXTS} strings, got {len(texts)}")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{index}] is not a string")
        if len(text) > MAX_CHARS:
            raise ValueError(f"texts[{index}] has {len(text)} characters, more than {MAX_CHARS}")
    return texts


def make_handler(holder: ModelHolder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "refinery"

        def _send(self, status: HTTPStatus, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path != "/health":
                self._send(HTTPStatus.NOT_FOUND, {"error": f"no route GET {self.path}"})
                return
            holder.refresh()
            self._send(HTTPStatus.OK, {"status": "ok", "model_version": holder.version})

        def do_POST(self) -> None:
            if self.path != "/predict":
                self._send(HTTPStatus.NOT_FOUND, {"error": f"no route POST {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                texts = parse_predict_request(self.rfile.read(length))
            except ValueError as error:
                self._send(HTTPStatus.BAD_REQUEST, {"error": str(error)})
                return
            classifier = holder.refresh()
            predictions = classifier.predict(texts)
            self._send(
                HTTPStatus.OK,
                {
                    "model_version": holder.version,
                    "predictions": [{"label": p.label, "score": p.score} for p in predictions],
                },
            )

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def build_server(model_root: Path, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """An HTTP server for the production model (port 0 picks a free port)."""
    return ThreadingHTTPServer((host, port), make_handler(ModelHolder(model_root)))
