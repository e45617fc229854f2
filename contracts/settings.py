"""A setting defined once: a dataclass field with its default and the one-line help the Dagster launchpad shows."""

from __future__ import annotations

from dataclasses import field


def setting(default: object, help: str) -> object:
    """A field with its default and the one-line help the Dagster launchpad shows."""
    return field(default=default, metadata={"help": help})
