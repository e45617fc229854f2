"""Dagster run config derived from the dataclasses that define each setting once (default and help)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import get_type_hints

import dagster as dg
import pydantic


def config_fields(settings: type, *, skip: Iterable[str] = ()) -> dict[str, tuple[object, object]]:
    """A config field for each field of a settings dataclass, with its type, default and `setting()` help."""
    types = get_type_hints(settings)
    skipped = set(skip)
    return {
        item.name: (types[item.name], pydantic.Field(item.default, description=item.metadata["help"]))
        for item in fields(settings)
        if item.name not in skipped
    }


def derived_config(name: str, doc: str, module: str, config: dict[str, tuple[object, object]]) -> type[dg.Config]:
    """A `dg.Config` class with these fields, named and documented as if written in `module`."""
    return pydantic.create_model(name, __base__=dg.Config, __doc__=doc, __module__=module, **config)
