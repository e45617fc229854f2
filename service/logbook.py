"""The service's log of predictions and feedback: Delta tables appended off the request path and process."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from service.log_writer import send_ready
from service.spool import Spool, sending, spooled_rows

LOG = logging.getLogger("refinery.service")
WRITER_STOP_S = 60.0  # a stopping service waits this long for the writer's last pass, then sends what is left itself


@dataclass
class DeltaAppender:
    """Appends rows to Delta tables from a child process (`service.log_writer`), in batches, so requests never
    wait on storage nor on the GIL it holds. `lake` is a folder or an object-store URI (s3://...; credentials
    from the environment).

    Rows go first to a local spool (`service.spool`), then to the lake file by file: a killed process, a crashed
    writer or an unreachable lake loses none (within the spool's cap), and memory holds one file at a time.
    """

    lake: Path | str | None
    flush_seconds: float = 2.0
    spool_root: Path | None = None  # default: `service-spool/<lake hash>` beside a local lake
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="log-writer-watch", daemon=True)
        self.spool, self.writer, self.writer_restarts = None, None, 0
        if self.lake is not None:
            self.spool = Spool(self.spool_root or default_spool_root(self.lake))
            self.writer = self._start_writer()
            self._thread.start()

    def add(self, table: str, rows: list[dict]) -> None:
        if self.spool is not None and rows:
            self.spool.add(table, rows)

    def flush(self) -> None:
        """Send the spooled rows to the lake now, from this process, file by file, oldest first; a table whose
        append fails keeps its files (in order) for the next pass, and the error is raised once the others are
        sent."""
        if self.spool is None:
            return
        self.spool.rotate()
        send_ready(self.spool.folder, str(self.lake))

    @property
    def buffered(self) -> int:
        """Rows waiting for the lake (in the spool)."""
        if self.spool is None:
            return 0
        self.spool.rotate()
        with sending(self.spool.folder):  # no file leaves while they are counted
            return sum(sum(1 for _ in spooled_rows(path)) for path in self.spool.ready_files())

    def _start_writer(self) -> subprocess.Popen:
        command = [sys.executable, "-m", "service.log_writer", str(self.spool.folder), str(self.lake)]
        arguments = ["--every", str(self.flush_seconds), "--parent", str(os.getpid())]
        return subprocess.Popen([*command, *arguments], stdin=subprocess.DEVNULL)

    def _run(self) -> None:
        """Every `flush_seconds`: hand the rows written so far to the writer, and restart it if it died."""
        while not self._stop.wait(self.flush_seconds):
            self.spool.rotate()
            code = self.writer.poll()
            if code is not None:
                self.writer_restarts += 1
                LOG.error("the prediction log's writer exited (%s); restarted (%d so far)", code, self.writer_restarts)
                self.writer = self._start_writer()

    def close(self) -> None:
        """Stop watching, let the writer make its last pass, send what it left, and release the spool (what the
        lake did not take stays there for the next service to send)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.spool is None:
            return
        try:
            self.spool.rotate()
            self.writer.terminate()
            try:
                self.writer.wait(timeout=WRITER_STOP_S)
            except subprocess.TimeoutExpired:
                self.writer.kill()
                self.writer.wait()
            self.flush()
        finally:
            self.spool.close()


def default_spool_root(lake: Path | str, *, remote_home: Path | None = None) -> Path:
    """Where the spool lives by default: a private folder per lake beside a local lake (in the home that holds
    it), or in `remote_home` (the service's home) for an object-store lake, which has no local folder."""
    import hashlib

    uri = str(lake) if "://" in str(lake) else str(Path(lake).resolve())
    if "://" in uri and remote_home is None:
        raise ValueError(f"{uri}: an object-store lake needs a local folder for the prediction log's spool")
    folder = remote_home if "://" in uri else Path(uri).parent
    return folder / "service-spool" / hashlib.sha256(uri.encode()).hexdigest()[:16]
