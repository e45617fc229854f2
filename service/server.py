"""Running the service: in the foreground (`refinery serve`) or in a background thread (tests, benchmarks)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from service.access import allowed_hosts, check_host
from service.app import build_app
from service.deadlines import BoundedH11Protocol

# Requests beyond `limit_concurrency` get a 503 from uvicorn (health checks have a few places more); an idle
# keep-alive connection closes after 5 s; a request head (line and headers) may hold at most 64 KiB and must be
# complete within 10 s; service.deadlines bounds the rest of a connection's life.
# h11 is named: with httptools installed, uvicorn would pick it and ignore the request-head limit.
CONNECTION_LIMITS = {
    "http": BoundedH11Protocol,
    "limit_concurrency": 256,
    "timeout_keep_alive": 5,
    "h11_max_incomplete_event_size": 64 * 1024,
}


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class ServiceThread:
    """The service on uvicorn in a background thread (tests, benchmarks); `port=0` picks a free port."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, *, concurrency: int | None = None):
        import uvicorn

        port = port or free_port(host)
        self.app, self.url = app, f"http://{host}:{port}"
        limits = {**CONNECTION_LIMITS, **({"limit_concurrency": concurrency} if concurrency else {})}
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, **limits)
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


def serve(
    model_root: Path,
    lake: Path | str | None,
    host: str,
    port: int,
    quantize: bool | None = None,
    insecure: bool = False,
) -> None:
    """Run the service in the foreground until interrupted; a non-loopback host needs a token or `insecure`."""
    import uvicorn

    check_host(host, insecure)
    app = build_app(model_root, lake, quantize=quantize, hosts=allowed_hosts(host))
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, **CONNECTION_LIMITS)
    finally:
        app.state.close()


def main(argv: list[str] | None = None) -> None:
    """`python -m service.server --models DIR [--lake DIR] [--host H] [--port P]`."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--models", type=Path, required=True, help="registry folder with aliases.json")
    parser.add_argument("--lake", default=None, help="lake folder or object-store URI for predictions and feedback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--no-quantize", action="store_true", help="serve float32 weights on CPU too")
    parser.add_argument("--insecure", action="store_true", help="serve a non-loopback host without a token")
    args = parser.parse_args(argv)
    quantize = False if args.no_quantize else None
    serve(args.models, args.lake, args.host, args.port, quantize=quantize, insecure=args.insecure)


if __name__ == "__main__":
    main()
