"""Where Refinery keeps everything a run writes: `$REFINERY_HOME` (default `./.refinery`)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = ".refinery"
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout or install root: workspace.yaml, sources/
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # the whole name: fullmatch

_DAGSTER_YAML = """\
# Written by Refinery. Runs, event logs and schedules live in SQLite files beside this one.
telemetry:
  enabled: false
# Runs launched from the UI and by sensors queue; one run per dataset version at a time (the lake's write lock
# also keeps in-process runs from colliding).
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    tag_concurrency_limits:
      - key: dagster/partition
        value:
          applyLimitPerUniqueValue: true
        limit: 1
"""


def check_version_name(version: str) -> str:
    """Return `version` if it is a usable dataset-version key, else raise ValueError."""
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise ValueError(
            f"invalid dataset version {version!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return version


@dataclass(frozen=True)
class RefineryHome:
    """The folders under one `$REFINERY_HOME`."""

    root: Path

    @classmethod
    def from_env(cls) -> RefineryHome:
        """The home named by `$REFINERY_HOME`, or `./.refinery`, as an absolute path."""
        return cls(Path(os.environ.get("REFINERY_HOME") or DEFAULT_HOME).expanduser().resolve())

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def bundles(self) -> Path:
        return self.root / "bundles"

    @property
    def dagster(self) -> Path:
        return self.root / "dagster"

    def ensure(self) -> RefineryHome:
        """Create the folders and the Dagster instance config if they are missing."""
        for folder in (self.landing, self.lake, self.models, self.bundles, self.dagster, self.datasets):
            folder.mkdir(parents=True, exist_ok=True)
        config = self.dagster / "dagster.yaml"
        if not config.exists():
            config.write_text(_DAGSTER_YAML)
        return self


def git_commit() -> str | None:
    """The project's git commit, when it runs from a checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
