"""Regexes checked by the engine that runs them: Polars' (Rust's regex crate: no look-around, no
back-references, a bounded compiled size), so a pattern that passes `rules check` cannot fail at run time."""

from __future__ import annotations

import polars as pl


class PatternError(ValueError):
    """A pattern Polars' regex engine refuses, with its reason."""


def check_pattern(pattern: str) -> str:
    """The pattern, once Polars' engine has compiled it; PatternError with the engine's reason otherwise."""
    try:
        pl.select(pl.lit("", dtype=pl.String).str.contains(pattern))
    except pl.exceptions.PolarsError as error:
        reason = str(error).split("This error occurred")[0]
        raise PatternError(f"bad regex for Polars' engine: {' '.join(reason.split())}") from None
    return pattern
