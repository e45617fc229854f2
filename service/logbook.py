"""The service's log of predictions and feedback: Delta tables appended off the request path."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from contracts.store_options import object_store_options
from contracts.table_lock import table_lock


@dataclass
class DeltaAppender:
    """Appends rows to Delta tables from a background thread, in batches, so requests never wait on storage.
    `lake` is a folder or an object-store URI (s3://...; credentials from the environment)."""

    lake: Path | str | None
    flush_seconds: float = 2.0
    _rows: dict[str, list[dict]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="delta-appender", daemon=True)
        if self.lake is not None:
            # Imported now, before the first request, not by the first flush while requests are in flight:
            # an import holds the GIL.
            import deltalake  # noqa: F401
            import pyarrow  # noqa: F401

            self._thread.start()

    def add(self, table: str, rows: list[dict]) -> None:
        if self.lake is not None:
            with self._lock:
                self._rows.setdefault(table, []).extend(rows)

    def flush(self) -> None:
        """Append what is buffered, table by table; rows a failed append held go back to the buffer, first."""
        import pyarrow as pa
        from deltalake import write_deltalake

        with self._lock:
            pending, self._rows = self._rows, {}
        failure = None
        for table, rows in pending.items():
            if not rows:
                continue
            try:
                with self._writing(table):
                    write_deltalake(
                        f"{str(self.lake).rstrip('/')}/{table}",
                        pa.Table.from_pylist(rows),
                        mode="append",
                        schema_mode="merge",
                        storage_options=object_store_options(str(self.lake), {}) or None,
                    )
            except Exception as error:  # kept, in order, for the next flush: a failed append drops nothing
                with self._lock:
                    self._rows[table] = rows + self._rows.get(table, [])
                failure = error
        if failure is not None:
            raise failure

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
        """Rows waiting to be appended."""
        with self._lock:
            return sum(len(rows) for rows in self._rows.values())

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception as error:  # storage trouble is logged, never raised into requests
                print(f"could not append to the lake: {error}", flush=True)

    def close(self) -> None:
        """Stop the flush thread, wait for a flush it is in (it holds rows taken from the buffer), then flush."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.lake is not None:
            self.flush()
