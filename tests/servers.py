"""Real servers for tests: PostgreSQL started from Debian's binaries, and a paginated JSON API on 127.0.0.1."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.error import HTTPError
from urllib.parse import parse_qs, urlparse
from urllib.request import Request, urlopen


def call(url: str, body: object = None, token: str | None = None, raw: bytes | None = None) -> tuple[int, dict]:
    """GET `url`, or POST `body` as JSON (or `raw` bytes); the status and the JSON answer, errors included."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except HTTPError as error:
        return error.code, json.loads(error.read())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Postgres:
    port: int
    user: str
    password: str
    database: str = "postgres"

    @property
    def uri(self) -> str:
        """A URI without the password, as a sources file holds it."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"


def postgres_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    """initdb + pg_ctl start on a free port of 127.0.0.1 with password auth; stopped and removed after."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql (.ci/run does)")
    root = tempfile.mkdtemp(prefix="refinery-pg-")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(root, "postgres")
    server = Postgres(port=free_port(), user="refinery", password="s3cret-from-env")
    pwfile = os.path.join(root, "pw")
    with open(pwfile, "w") as handle:
        handle.write(server.password)
    if as_postgres:
        shutil.chown(pwfile, "postgres")
    data = os.path.join(root, "data")
    subprocess.run(
        [*as_postgres, f"{bindir}/initdb", "-D", data, "-U", server.user, "--auth=scram-sha-256", f"--pwfile={pwfile}"],
        check=True,
        capture_output=True,
    )
    options = f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [*as_postgres, f"{bindir}/pg_ctl", "-D", data, "-o", options, "-l", f"{root}/log", "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield server
    finally:
        subprocess.run([*as_postgres, f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def gzipped_json(head: bytes, spaces: int, tail: bytes) -> bytes:
    """gzip of head + `spaces` spaces + tail, compressed a MiB at a time (the padding is never in memory)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts, block = [packer.compress(head)], b" " * (1 << 20)
    for start in range(0, spaces, len(block)):
        parts.append(packer.compress(block[: min(len(block), spaces - start)]))
    return b"".join([*parts, packer.compress(tail), packer.flush()])


class TicketApiHandler(BaseHTTPRequestHandler):
    """The endpoints of a `TicketApi` (the server's `api`)."""

    def do_GET(self) -> None:
        api = self.server.api
        api.requests.append(self.path)
        api.headers_seen.append(dict(self.headers))
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if api.token and self.headers.get("Authorization") != f"Bearer {api.token}":
            return self._send(401, {"error": "missing or wrong bearer token"})
        if api.failures:
            status = api.failures.pop(0)
            return self._send(status, {"error": "try again"}, {"Retry-After": "0"})
        if url.path == "/page":
            page, size = int(query.get("page", 1)), int(query.get("per_page", 10))
            return self._send(200, {"data": api.records[(page - 1) * size : page * size]})
        if url.path == "/offset":
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 10))
            return self._send(200, {"items": api.records[offset : offset + limit]})
        if url.path == "/cursor":
            start = int(query.get("cursor", 0))
            end = start + 3
            following = str(end) if end < len(api.records) else None
            return self._send(200, {"result": {"tickets": api.records[start:end]}, "next": following})
        return self._moved_or_big(url)

    def _moved_or_big(self, url) -> None:
        api = self.server.api
        if url.path == "/moved":
            self.send_response(302)
            self.send_header("Location", api.redirect_to + (f"?{url.query}" if url.query else ""))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if url.path == "/big":
            return self._send(200, {"data": [{"body": "x" * api.big_bytes, "queue": "a"}]})
        if url.path == "/drip":  # a page that never ends: one byte every 0.1 s
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            for _ in range(200):
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return None
                time.sleep(0.1)
            return None
        if url.path == "/gzipped":  # the records, after `big_bytes` of spaces: a few hundred KB on the wire
            return self._send_raw(gzipped_json(b'{"data": ', api.big_bytes, json.dumps(api.records).encode() + b"}"))
        return self._send(404, {"error": "no such endpoint"})

    def _send_raw(self, gzipped: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(gzipped)))
        self.end_headers()
        self.wfile.write(gzipped)

    def _send(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class TicketApi:
    """A JSON API over `records`, with page, offset and cursor endpoints, a token, and scripted failures."""

    def __init__(self, records: list[dict], token: str | None = None):
        self.records, self.token = records, token
        self.failures: list[int] = []  # statuses to answer before succeeding, consumed in order
        self.redirect_to = "/page"  # where /moved sends a client (a path on this server, or a whole URL)
        self.big_bytes = 0  # how large /big's answer is
        self.requests: list[str] = []
        self.headers_seen: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), TicketApiHandler)
        self.server.api = self
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> TicketApi:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
