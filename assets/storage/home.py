"""Where Refinery keeps everything a run writes: `$REFINERY_HOME` (default `./.refinery`)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import yaml

from trainers.model_store import MODELS_URI

DEFAULT_HOME = ".refinery"
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout or install root: workspace.yaml, sources/
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # the whole name: fullmatch

LAKE_URI = "REFINERY_LAKE_URI"  # s3://bucket/prefix (or another delta-rs scheme); credentials from the environment
DAGSTER_POSTGRES_URL = "REFINERY_DAGSTER_POSTGRES_URL"  # postgresql://user@host:port/db, no password in it
DAGSTER_POSTGRES_PASSWORD = "REFINERY_DAGSTER_POSTGRES_PASSWORD"  # read by Dagster itself at run time
WRITTEN_BY_REFINERY = "# Written by Refinery."
_RUN_COORDINATOR = """\
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


def dagster_yaml(postgres_url: str | None = None) -> str:
    """The home's Dagster instance config: SQLite files beside it, or run, event-log and schedule storage in
    PostgreSQL (`postgres_url`, whose password Dagster reads from $REFINERY_DAGSTER_POSTGRES_PASSWORD)."""
    if not postgres_url:
        where = "Runs, event logs and schedules live in SQLite files beside this one."
        return f"{WRITTEN_BY_REFINERY} {where}\ntelemetry:\n  enabled: false\n{_RUN_COORDINATOR}"
    url = urlsplit(postgres_url)
    if url.scheme not in ("postgresql", "postgres") or not url.hostname or not url.username:
        raise ValueError(f"{DAGSTER_POSTGRES_URL}: expected postgresql://user@host:port/database, got {postgres_url!r}")
    if url.password is not None:
        raise ValueError(f"{DAGSTER_POSTGRES_URL}: put the password in ${DAGSTER_POSTGRES_PASSWORD}, not in the URL")
    database = {
        "username": url.username,
        "password": {"env": DAGSTER_POSTGRES_PASSWORD},
        "hostname": url.hostname,
        "port": url.port or 5432,
        "db_name": url.path.lstrip("/") or "postgres",
        # psycopg2 named: SQLAlchemy 2.1 defaults to psycopg 3, where dagster-postgres's NOTIFY with a
        # bound parameter is a syntax error
        "scheme": "postgresql+psycopg2",
    }
    if url.query:
        database["params"] = dict(parse_qsl(url.query))  # e.g. sslmode=require
    storage = yaml.safe_dump({"storage": {"postgres": {"postgres_db": database}}}, sort_keys=False)
    where = f"Runs, event logs and schedules live in PostgreSQL ({DAGSTER_POSTGRES_URL})."
    return f"{WRITTEN_BY_REFINERY} {where}\ntelemetry:\n  enabled: false\n{storage}{_RUN_COORDINATOR}"


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
    def lake_uri(self) -> str:
        """Where the pipeline's Delta tables live: $REFINERY_LAKE_URI (an object store), else the home's lake."""
        return os.environ.get(LAKE_URI) or str(self.lake)

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def models_uri(self) -> str:
        """Where deployed models are published for services elsewhere: $REFINERY_MODELS_URI, else nowhere ('')."""
        return os.environ.get(MODELS_URI, "")

    @property
    def model_cache(self) -> Path:
        """Where `refinery serve` mirrors the models of $REFINERY_MODELS_URI."""
        return self.root / "model-cache"

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
        config, postgres_url = self.dagster / "dagster.yaml", os.environ.get(DAGSTER_POSTGRES_URL)
        current = config.read_text() if config.exists() else None
        if current is None:
            config.write_text(dagster_yaml(postgres_url))
        elif postgres_url and current.startswith(WRITTEN_BY_REFINERY) and current != dagster_yaml(postgres_url):
            # to PostgreSQL (or another database) when the setting says so; its absence never switches a home
            # back to SQLite, where a daemon's next runs would silently land elsewhere. Hand-written: left alone.
            config.write_text(dagster_yaml(postgres_url))
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
