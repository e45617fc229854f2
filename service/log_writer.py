"""The prediction log's writer: sends a spool folder's ready files to the lake, from a child process of the service.

The Delta appends (Arrow conversion, Parquet encoding, the commit) hold the GIL for tens of milliseconds, so
done in a thread of the serving process they stalled every request in flight: the service's p99 rose by
two thirds. Here they run in their own process, which the service restarts if it dies; the files stay in the
spool until the lake has them, so a crash, a kill or an unreachable lake loses no row.

`python -m service.log_writer FOLDER LAKE --every SECONDS --parent PID` sends every SECONDS until SIGTERM, then
makes one last pass; it stops at once, sending nothing more, when the service that started it is gone (the
next service adopts the folder).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from contracts.store_options import object_store_options
from contracts.table_lock import table_lock
from service.spool import ready_files, sending, spooled_rows, table_of

APPEND_BYTES = 64 << 20  # spooled JSON sent to the lake in one append


def send_ready(folder: Path, lake: str, keep_going: Callable[[], bool] = lambda: True) -> None:
    """Send the folder's ready files to the lake, oldest first, one append per run of a table's files; a table
    whose append fails keeps its files (in order) for the next pass, and the error is raised once the other
    tables are sent. Stops between appends once `keep_going()` is false."""
    failed: dict[str, Exception] = {}
    with sending(folder):
        for table, paths in send_groups(ready_files(folder)):
            if not keep_going():
                return
            if table in failed:
                continue
            try:
                append_rows(lake, table, [row for path in paths for row in spooled_rows(path)])
            except Exception as error:  # kept on disk for the next pass: a failed append drops nothing
                failed[table] = error
                continue
            for path in paths:
                path.unlink()
    if failed:
        raise next(iter(failed.values()))


def send_groups(paths: list[Path], budget: int = APPEND_BYTES) -> Iterator[tuple[str, list[Path]]]:
    """The ready files, oldest first, as runs of one table's files of at most `budget` bytes: one append each."""
    group: list[Path] = []
    size = 0
    for path in paths:
        if group and (table_of(path) != table_of(group[0]) or size + path.stat().st_size > budget):
            yield table_of(group[0]), group
            group, size = [], 0
        group.append(path)
        size += path.stat().st_size
    if group:
        yield table_of(group[0]), group


def append_rows(lake: str, table: str, rows: list[dict]) -> None:
    """Append rows to a lake table, adding the columns it does not have yet."""
    import pyarrow as pa
    from deltalake import write_deltalake

    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))  # from_pylist reads the first row's only
    batch = pa.Table.from_pylist([{key: row.get(key) for key in columns} for row in rows])
    with writing(lake, table):
        write_deltalake(
            f"{lake.rstrip('/')}/{table}",
            batch,
            mode="append",
            schema_mode="merge",
            storage_options=object_store_options(lake, {}) or None,
        )


@contextmanager
def writing(lake: str, table: str) -> Iterator[None]:
    """The table's write lock beside a local lake (`refinery lake maintain` may be compacting it)."""
    if "://" in lake:
        yield
        return
    with table_lock(Path(lake), table):
        yield


def run(folder: Path, lake: str, *, every: float, parent: int) -> None:
    """Send every `every` seconds until SIGTERM, then once more; return at once if `parent` is gone."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the whole group: the service stops us
    while True:
        stopping = stop.wait(every)
        if os.getppid() != parent:
            return
        try:
            send_ready(folder, lake, keep_going=lambda: os.getppid() == parent)
        except Exception as error:  # the lake is unreachable or refused: the files wait for the next pass
            print(f"could not append to the lake: {error}", flush=True)
        if stopping:
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("lake")
    parser.add_argument("--every", type=float, default=2.0)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args()
    run(args.folder, args.lake, every=args.every, parent=args.parent)


if __name__ == "__main__":
    main()
