"""The prediction log's writer process: restarted when it dies, a last pass on SIGTERM, nothing sent twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from service.logbook import DeltaAppender
from service.spool import Spool


def _logged_ids(lake: Path) -> list[str]:
    table = lake / "predictions"
    return sorted(pl.read_delta(str(table))["prediction_id"].to_list()) if (table / "_delta_log").is_dir() else []


def _wait_for(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_killed_writer_is_restarted_and_every_row_reaches_the_lake_once(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    appender = DeltaAppender(lake, flush_seconds=0.2, spool_root=tmp_path / "spool")
    try:
        appender.add("predictions", [{"prediction_id": "a", "label": "x"}])
        assert _wait_for(lambda: _logged_ids(lake) == ["a"])
        first = appender.writer.pid
        os.kill(first, signal.SIGKILL)
        appender.add("predictions", [{"prediction_id": "b", "label": "y"}, {"prediction_id": "c", "label": "z"}])
        assert _wait_for(lambda: _logged_ids(lake) == ["a", "b", "c"])
        assert appender.writer_restarts == 1 and appender.writer.pid != first
    finally:
        appender.close()
    assert _logged_ids(lake) == ["a", "b", "c"] and appender.writer.poll() is not None


def test_the_writer_makes_a_last_pass_on_sigterm(tmp_path: Path) -> None:
    lake, spool = tmp_path / "lake", Spool(tmp_path / "spool")
    spool.add("predictions", [{"prediction_id": "a"}, {"prediction_id": "b"}])
    spool.rotate()
    command = [sys.executable, "-m", "service.log_writer", str(spool.folder), str(lake)]
    writer = subprocess.Popen([*command, "--every", "3600", "--parent", str(os.getpid())])
    time.sleep(1.0)  # its imports done: the signal finds the loop waiting
    writer.send_signal(signal.SIGTERM)
    assert writer.wait(timeout=60) == 0
    assert _logged_ids(lake) == ["a", "b"] and spool.ready_files() == []
    spool.close()


def test_a_writer_whose_service_is_gone_sends_nothing_and_leaves_the_files_for_the_next(tmp_path: Path) -> None:
    lake, spool = tmp_path / "lake", Spool(tmp_path / "spool")
    spool.add("predictions", [{"prediction_id": "a"}])
    spool.rotate()
    command = [sys.executable, "-m", "service.log_writer", str(spool.folder), str(lake)]
    orphan = subprocess.Popen([*command, "--every", "0.1", "--parent=-1"])  # no process has that pid: gone
    assert orphan.wait(timeout=60) == 0
    assert _logged_ids(lake) == [] and len(spool.ready_files()) == 1
    spool.close()
