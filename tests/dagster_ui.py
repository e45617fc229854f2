"""`dagster dev` (webserver and daemon) on 127.0.0.1 in its own process group, for the browser tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from assets.storage.home import RefineryHome
from dagster_project.cli.tools import live_members
from tests.servers import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
LOCATION_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


@dataclass
class DagsterDev:
    """A running `dagster dev`: its URL, its home and its log."""

    url: str
    home: RefineryHome
    log: Path
    process: subprocess.Popen

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        """Run a GraphQL query against the webserver."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["data"]

    def log_tail(self, characters: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-characters:]


def wait_until_loaded(server: DagsterDev, timeout: float = 180.0) -> None:
    """Wait until the webserver answers and the refinery code location has loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            entries = server.graphql(LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                return
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(1)
    raise TimeoutError(f"dagster dev did not load the code location in {timeout:.0f}s:\n{server.log_tail()}")


@contextmanager
def dagster_dev(home: RefineryHome, log: Path) -> Iterator[DagsterDev]:
    """Start `dagster dev` for `home`; on exit stop the whole process group with SIGTERM, as Ctrl-C would."""
    port = free_port()
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]
    environment = {**os.environ, "REFINERY_HOME": str(home.root), "DAGSTER_HOME": str(home.dagster)}
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = DagsterDev(f"http://127.0.0.1:{port}", home, log, process)
    try:
        wait_until_loaded(server)
        yield server
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen, grace: float = 180.0) -> None:
    """SIGTERM the process group and wait for every member to exit; SIGKILL and raise if any outlives `grace`."""
    group = process.pid
    os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()
        if not live_members(group):
            return
        time.sleep(0.5)
    leftovers = [command_line(pid) for pid in live_members(group)]
    os.killpg(group, signal.SIGKILL)
    raise RuntimeError(f"dagster dev left processes running {grace:.0f}s after SIGTERM: {leftovers}")


def command_line(pid: int) -> str:
    """A process's pid and command line, to name a leftover."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return str(pid)
    return f"{pid}: " + " ".join(argument.decode(errors="replace") for argument in arguments)[:300]
