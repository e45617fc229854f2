"""The service's log of predictions and feedback: Delta tables appended off the request path."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from contracts.store_options import object_store_options
from contracts.table_lock import table_lock
from service.spool import Spool, spooled_rows, table_of

APPEND_BYTES = 64 << 20  # spooled JSON sent to the lake in one append


@dataclass
class DeltaAppender:
    """Appends rows to Delta tables from a background thread, in batches, so requests never wait on storage.
    `lake` is a folder or an object-store URI (s3://...; credentials from the environment).

    Rows go first to a local spool (`service.spool`), then to the lake file by file: a killed process, a crashed
    flush or an unreachable lake loses none (within the spool's cap), and memory holds one file at a time.
    """

    lake: Path | str | None
    flush_seconds: float = 2.0
    spool_root: Path | None = None  # default: `service-spool/<lake hash>` beside a local lake
    _stop: threading.Event = field(default_factory=threading.Event)
    _flushing: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="delta-appender", daemon=True)
        self.spool = None
        if self.lake is not None:
            # Imported now, before the first request, not by the first flush while requests are in flight:
            # an import holds the GIL.
            import deltalake  # noqa: F401
            import pyarrow  # noqa: F401

            self.spool = Spool(self.spool_root or default_spool_root(self.lake))
            self._thread.start()

    def add(self, table: str, rows: list[dict]) -> None:
        if self.spool is not None and rows:
            self.spool.add(table, rows)

    def flush(self) -> None:
        """Send the spooled rows to the lake, file by file, oldest first; a table whose append fails keeps its
        files (in order) for the next flush, and the error is raised once the other tables are sent."""
        if self.spool is None:
            return
        with self._flushing:
            self.spool.rotate()
            failed: dict[str, Exception] = {}
            for table, paths in send_groups(self.spool.ready_files()):
                if table in failed:
                    continue
                try:
                    self._append(table, [row for path in paths for row in spooled_rows(path)])
                except Exception as error:  # kept on disk for the next flush: a failed append drops nothing
                    failed[table] = error
                    continue
                for path in paths:
                    self.spool.sent(path)
        if failed:
            raise next(iter(failed.values()))

    def _append(self, table: str, rows: list[dict]) -> None:
        import pyarrow as pa
        from deltalake import write_deltalake

        if not rows:
            return
        columns = list(dict.fromkeys(key for row in rows for key in row))  # from_pylist reads the first row's only
        batch = pa.Table.from_pylist([{key: row.get(key) for key in columns} for row in rows])
        with self._writing(table):
            write_deltalake(
                f"{str(self.lake).rstrip('/')}/{table}",
                batch,
                mode="append",
                schema_mode="merge",
                storage_options=object_store_options(str(self.lake), {}) or None,
            )

    @contextmanager
    def _writing(self, table: str) -> Iterator[None]:
        """The table's write lock beside a local lake (`refinery lake maintain` may be compacting it)."""
        if "://" in str(self.lake):
            yield
            return
        with table_lock(Path(self.lake), table):
            yield

    @property
    def buffered(self) -> int:
        """Rows waiting for the lake (in the spool)."""
        if self.spool is None:
            return 0
        self.spool.rotate()
        return sum(sum(1 for _ in spooled_rows(path)) for path in self.spool.ready_files())

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception as error:  # storage trouble is logged, never raised into requests
                print(f"could not append to the lake: {error}", flush=True)

    def close(self) -> None:
        """Stop the flush thread, wait for a flush it is in, flush, and release the spool (what the lake did not
        take stays there for the next service to send)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.spool is None:
            return
        try:
            self.flush()
        finally:
            self.spool.close()


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


def default_spool_root(lake: Path | str, *, remote_home: Path | None = None) -> Path:
    """Where the spool lives by default: a private folder per lake beside a local lake (in the home that holds
    it), or in `remote_home` (the service's home) for an object-store lake, which has no local folder."""
    import hashlib

    uri = str(lake) if "://" in str(lake) else str(Path(lake).resolve())
    if "://" in uri and remote_home is None:
        raise ValueError(f"{uri}: an object-store lake needs a local folder for the prediction log's spool")
    folder = remote_home if "://" in uri else Path(uri).parent
    return folder / "service-spool" / hashlib.sha256(uri.encode()).hexdigest()[:16]
