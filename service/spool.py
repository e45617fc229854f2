"""The prediction log's local spool: rows are written to JSON Lines files as they come, so a killed service or an
unreachable lake loses none of them, and the lake receives them file by file, oldest first.

Each process writes under its own folder, locked while it lives; a folder whose lock nobody holds was left by a
process that died, and its files are adopted and sent on by the next one to start.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOG = logging.getLogger("refinery.service")
ACTIVE = ".active.jsonl"  # rows still being written
READY = ".ready.jsonl"  # rows waiting for the lake
MAX_SPOOL_BYTES = 1 << 30  # past this (a lake gone for long), new rows are dropped and counted
SENDING = ".sending"  # held by whoever sends a folder's files or moves them: no file goes to the lake twice


class Spool:
    """One process's spool folder: `add` appends rows, `rotate` closes the files written so far for sending."""

    def __init__(self, root: Path, max_bytes: int = MAX_SPOOL_BYTES) -> None:
        self.root, self.max_bytes = private_folder(root), max_bytes
        # made and locked under a dot name, then renamed: no other process can take it for a dead one's
        starting = root / f".{os.getpid()}-{time.time_ns()}.starting"
        starting.mkdir()
        self._lock_file = (starting / ".lock").open("w")
        fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.folder = root / starting.name.removeprefix(".").removesuffix(".starting")
        starting.rename(self.folder)
        self._handles: dict[str, object] = {}
        self._guard = threading.Lock()
        self.dropped = 0
        self.adopted = self._adopt_orphans()
        self.size = spooled_bytes(self.folder)

    def add(self, table: str, rows: list[dict]) -> None:
        """Append rows to the table's active file (written through to the OS: a SIGKILL keeps them)."""
        lines = "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows).encode()
        with self._guard:
            if self.size + len(lines) > self.max_bytes:
                self.dropped += len(rows)
                LOG.error("the prediction log's spool holds %d bytes; %d rows dropped so far", self.size, self.dropped)
                return
            handle = self._handles.get(table)
            if handle is None:
                handle = self._handles[table] = (self.folder / f"{table}{ACTIVE}").open("ab")
            handle.write(lines)
            handle.flush()
            self.size += len(lines)

    def rotate(self) -> None:
        """Close the active files and mark them ready, each under a name that sorts after the older ones; the
        size counts again what the writer has not sent yet."""
        with self._guard:  # no add may reopen an active file between its close and its rename
            for table, handle in self._handles.items():
                handle.close()
                (self.folder / f"{table}{ACTIVE}").rename(self.folder / f"{table}.{time.time_ns()}{READY}")
            self._handles = {}
            self.size = spooled_bytes(self.folder)

    def ready_files(self) -> list[Path]:
        """The files waiting for the lake, oldest first."""
        return ready_files(self.folder)

    def close(self) -> None:
        """Release the folder; an empty one is removed."""
        self.rotate()
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()
        if not self.ready_files():
            (self.folder / SENDING).unlink(missing_ok=True)
            (self.folder / ".lock").unlink(missing_ok=True)
            self.folder.rmdir()

    def _adopt_orphans(self) -> int:
        """Move the files of folders no living process holds into this one, as ready; how many files."""
        adopted = 0
        others = (path for path in self.root.iterdir() if path.is_dir() and path != self.folder)
        for folder in sorted(path for path in others if not path.name.startswith(".")):
            try:
                adopted += self._adopt(folder)
            except OSError:  # another starting service adopted it first
                continue
        return adopted

    def _adopt(self, folder: Path) -> int:
        with (folder / ".lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # a running service's
            with sending(folder):  # a dead service's writer may be in its last append
                files = sorted(folder.glob("*.jsonl"))
                for path in files:
                    path.rename(self.folder / f"{table_of(path)}.{time.time_ns()}{READY}")
            (folder / SENDING).unlink(missing_ok=True)
            (folder / ".lock").unlink()
            folder.rmdir()  # while the lock is held: nobody adopts it twice
        return len(files)


def private_folder(root: Path) -> Path:
    """The spool root, made readable by this user alone (it holds logged texts); one owned by another user is
    refused, since its files would be sent to the lake as this service's rows."""
    root.mkdir(parents=True, mode=0o700, exist_ok=True)
    if root.stat().st_uid != os.getuid():
        raise PermissionError(f"{root}: the prediction log's spool belongs to another user; choose another folder")
    root.chmod(0o700)
    return root


@contextmanager
def sending(folder: Path) -> Iterator[None]:
    """Hold the folder's sending lock (across processes)."""
    with (folder / SENDING).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ready_files(folder: Path) -> list[Path]:
    """A spool folder's files waiting for the lake, oldest first."""
    return sorted(folder.glob(f"*{READY}"), key=lambda path: int(path.name.split(".")[-3]))


def spooled_bytes(folder: Path) -> int:
    """The bytes of a spool folder's files (a file the writer sends meanwhile counts as gone)."""
    total = 0
    for path in folder.glob("*.jsonl"):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total


def table_of(path: Path) -> str:
    """The table a spool file's rows go to."""
    return path.name.split(".")[0]


def spooled_rows(path: Path) -> Iterator[dict]:
    """The rows of a spool file; a last line cut short by a kill is skipped."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                LOG.warning("%s: a line cut short (the service was killed while writing it) is skipped", path)
