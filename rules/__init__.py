"""Refinery's data rules: YAML files in this folder, compiled into Pandera schemas and checks."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rules.compiler import RuleBook, RuleError, RuleSet, default_rule_book, load_rule_book

__all__ = ["RuleBook", "RuleError", "RuleSet", "default_rule_book", "load_rule_book"]


def __getattr__(name: str) -> object:
    """The compiler's names, imported on first use: reading a YAML control file must not load Pandera."""
    if name not in __all__:
        raise AttributeError(f"module 'rules' has no attribute {name!r}")
    return getattr(importlib.import_module("rules.compiler"), name)
