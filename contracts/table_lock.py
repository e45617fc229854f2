"""One writer at a time per Delta table of a local lake: an OS file lock in `<lake>/.locks/`.

The pipeline's writers, `refinery lake maintain` and the service's prediction log all take it, so a
compaction never races an append. Object-store lakes rely on Delta's own commit protocol instead.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def table_lock(lake: Path, table: str) -> Iterator[None]:
    """Hold the exclusive write lock of `table` in the local lake at `lake`."""
    locks = lake / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{table}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
