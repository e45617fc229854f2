"""Helpers for benchmarks: run a measured function in a fresh process and report its time and peak RSS."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def measure_in_subprocess(module: str, function: str, *args: str) -> dict[str, float]:
    """Run `module.function(*args)` in a new interpreter; returns its result plus seconds and peak RSS."""
    code = (
        "import json, resource, sys, time, importlib\n"
        f"fn = getattr(importlib.import_module({module!r}), {function!r})\n"
        "start = time.perf_counter()\n"
        f"result = fn(*{list(args)!r})\n"
        "result['seconds'] = time.perf_counter() - start\n"
        "result['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print('MEASURED ' + json.dumps(result))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    for line in completed.stdout.splitlines():
        if line.startswith("MEASURED "):
            return json.loads(line.removeprefix("MEASURED "))
    raise RuntimeError(f"{module}.{function} failed:\n{completed.stderr[-4000:]}")


def timed(function: Callable[..., T], *args: object) -> tuple[float, T]:
    """Seconds one call takes, and what it returned."""
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def result_line(**values: object) -> str:
    """The benchmark's last line: `RESULT key=value ...`."""
    return "RESULT " + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
