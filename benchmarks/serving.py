"""`python -m benchmarks.serving [--seconds N] [--clients N]`: the model service against a naive baseline
and against LitServe.

All serve the demo model (run `make demo` first) from their own processes on 127.0.0.1 and get the
same closed-loop load: N clients, each sending one ticket per request, for N seconds. The naive baseline
is FastAPI calling a transformers `pipeline` per request. The strong one is LitServe with dynamic batching
(the service's own limits: up to 64 texts, 5 ms wait) around the same `Classifier`, so both run the same
model, recipe and numerics and differ only in the serving layer. LitServe logs no predictions, so the service
runs twice: as deployed, appending every prediction to the lake, and like for like, without a lake
(`ratio_to_litserve` compares that run, `ratio_to_litserve_logged` the first). Halfway through the first run
the `production` alias moves to a copy of the model, so a reload happens under load; a request that fails
then counts as a reload failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from benchmarks.common import result_line
from service.server import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PORT = "{port}"  # stands for the free port a server command is started on


class Body(BaseModel):
    """The baseline's request body."""

    texts: list[str]


@dataclass
class LoadResult:
    """What one server did under load."""

    latencies: list[float] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)  # monotonic time of each answer
    errors: list[tuple[float, str]] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    refused: int = 0  # texts the service answered with a refusal (the corpus's planted defects): not logged
    seconds: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, q: int, before: float | None = None) -> float:
        kept = [t for t, at in zip(self.latencies, self.finished, strict=True) if before is None or at < before]
        return statistics.quantiles(kept, n=100)[q - 1] * 1000


def start(command: list[str], port: int) -> subprocess.Popen:
    """Start a server process and wait until /health answers."""
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[2]} exited: {process.stderr.read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{' '.join(command)} did not answer /health in 120 s")


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def drive(url: str, texts: list[str], clients: int, seconds: float, at_half=None) -> LoadResult:
    """Closed-loop load: each client sends one text, waits for the answer, and sends the next."""
    result, lock, stop_at = LoadResult(), threading.Lock(), time.monotonic() + seconds
    started = time.monotonic()

    def client(offset: int) -> None:
        i = offset
        while time.monotonic() < stop_at:
            body = json.dumps({"texts": [texts[i % len(texts)]]}).encode()
            request = urllib.request.Request(f"{url}/predict", body, {"Content-Type": "application/json"})
            sent = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    answer = json.loads(response.read())
                elapsed = time.perf_counter() - sent
                with lock:
                    result.latencies.append(elapsed)
                    result.finished.append(time.monotonic())
                    result.versions.append(str(answer.get("model_version")))
                    result.refused += sum(1 for item in answer.get("predictions", []) if item.get("refused"))
            except (OSError, ValueError) as error:
                with lock:
                    result.errors.append((time.monotonic(), str(error)))
            i += clients

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    if at_half is not None:
        time.sleep(seconds / 2)
        at_half()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    return result


def baseline_app(model: str):
    """The naive service: FastAPI calling a transformers pipeline for each request."""
    from fastapi import FastAPI
    from transformers import pipeline

    classify = pipeline("text-classification", model=model, device="cpu")
    app = FastAPI()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/predict")
    def predict(body: Body) -> dict:
        return {"model_version": "baseline", "predictions": classify(body.texts, truncation=True)}

    return app


def serve_baseline(model: str, port: int) -> None:
    import uvicorn

    uvicorn.run(baseline_app(model), host="127.0.0.1", port=port, log_level="warning")


def demo_texts(count: int = 2000) -> list[str]:
    from assets.demo.tickets import generate_tickets
    from service.requests import MAX_CHARS

    records, _ = generate_tickets(count, seed=99)
    # The corpus carries deliberate defects; texts the service refuses (over MAX_CHARS) are left out of the load.
    return [r["body"] for r in records if r.get("body") and r["body"].strip() and len(r["body"]) <= MAX_CHARS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("REFINERY_HOME", PROJECT_ROOT / ".refinery")))
    parser.add_argument("--baseline-server", nargs=2, metavar=("MODEL", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--litserve-server", nargs=2, metavar=("MODEL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        serve_baseline(args.baseline_server[0], int(args.baseline_server[1]))
        return
    if args.litserve_server:
        from benchmarks.litserve_app import serve_litserve  # pip install litserve

        serve_litserve(args.litserve_server[0], int(args.litserve_server[1]))
        return
    from trainers.registry import promote, resolve_alias

    source_root = args.home / "models" / "tickets"  # the demo dataset's registry
    try:
        production = resolve_alias(source_root)
    except (LookupError, FileNotFoundError):
        sys.exit(f"{source_root}: no production model; run `make demo` first")
    texts = demo_texts()
    with tempfile.TemporaryDirectory() as scratch:
        registry = Path(scratch) / "tickets"
        for version in ("served", "reloaded"):
            shutil.copytree(production, registry / version)
        promote(registry, "served")
        reload_at: list[float] = []

        def move_alias() -> None:
            reload_at.append(time.monotonic())
            promote(registry, "reloaded")

        load = (texts, args.clients, args.seconds)
        lake = Path(scratch) / "lake"
        ours = drive_server(service_command(registry, lake), *load, at_half=move_alias)
        logged = logged_predictions(lake)
        this = [sys.executable, "-m", "benchmarks.serving"]
        naive = drive_server([*this, "--baseline-server", str(production), PORT], *load)
        unlogged = drive_server(service_command(registry, None), *load)
        strong = drive_server([*this, "--litserve-server", str(production), PORT], *load)
    report(ours, naive, unlogged, strong, reload_at[0], logged=logged)


def logged_predictions(lake: Path) -> int:
    """The rows of the prediction log once the logged service has stopped (SIGTERM)."""
    import polars as pl

    table = lake / "predictions"
    return pl.scan_delta(str(table)).select(pl.len()).collect().item() if table.is_dir() else 0


def report(
    ours: LoadResult, naive: LoadResult, unlogged: LoadResult, strong: LoadResult, reload_at: float, *, logged: int
) -> None:
    """The RESULT line; `logged` rows in the lake against one per prediction the logged service gave."""
    reload_failures = sum(1 for when, _ in ours.errors if when >= reload_at)
    swapped = ours.versions.count("reloaded")
    print(f"service: {len(ours.latencies)} answers, {len(ours.errors)} errors, {swapped} from the reloaded model")
    print(f"baseline: {len(naive.latencies)} answers, {len(naive.errors)} errors")
    if ours.errors:
        print("first service error:", ours.errors[0][1])
    print(f"litserve: {len(strong.latencies)} answers, {len(strong.errors)} errors")
    print(
        result_line(
            rps=ours.rps,
            p50_ms=ours.percentile_ms(50),
            p99_ms=ours.percentile_ms(99),
            baseline_rps=naive.rps,
            baseline_p99_ms=naive.percentile_ms(99),
            speedup=ours.rps / naive.rps,
            p99_ms_before_reload=ours.percentile_ms(99, before=reload_at),
            unlogged_rps=unlogged.rps,
            unlogged_p50_ms=unlogged.percentile_ms(50),
            unlogged_p99_ms=unlogged.percentile_ms(99),
            log_p99_ratio=ours.percentile_ms(99) / unlogged.percentile_ms(99),
            logged_rows=logged,
            lost_rows=len(ours.latencies) - ours.refused - logged,
            litserve_rps=strong.rps,
            litserve_p50_ms=strong.percentile_ms(50),
            litserve_p99_ms=strong.percentile_ms(99),
            ratio_to_litserve=unlogged.rps / strong.rps,
            ratio_to_litserve_logged=ours.rps / strong.rps,
            litserve_errors=len(strong.errors),
            errors=len(ours.errors),
            reload_failures=reload_failures,
        )
    )


def service_command(registry: Path, lake: Path | None) -> list[str]:
    """The service on `registry`, logging its predictions to `lake` or (None) not at all."""
    command = [sys.executable, "-m", "service.server", "--models", str(registry), "--port", PORT]
    return command + (["--lake", str(lake)] if lake else [])


def drive_server(command: list[str], texts: list[str], clients: int, seconds: float, at_half=None) -> LoadResult:
    """Start a server on a free port (the command's PORT), drive it, stop it."""
    port = free_port()
    server = start([str(port) if part == PORT else part for part in command], port)
    try:
        return drive(f"http://127.0.0.1:{port}", texts, clients, seconds, at_half=at_half)
    finally:
        stop(server)


if __name__ == "__main__":
    main()
