"""scikit-learn estimators on disk in skops' format, which cannot run code: a file is loaded only when every type
it names is on skops' trusted list (scikit-learn's estimators, numpy, scipy), and a pickle is never loaded.

A model folder can come from a shared object store; a pickle in it would run whatever its author wrote on every
machine that serves it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


class UnsafeModelFileError(ValueError):
    """A model file in a format that can run code, or naming types outside the trusted list."""


def skops_io() -> ModuleType:
    """skops' io module, imported on first use: it loads all of scikit-learn (3 s), which an encoder never needs."""
    return importlib.import_module("skops.io")


def save_estimator(estimator: object, path: Path) -> Path:
    """Write a fitted estimator as a skops file."""
    path.write_bytes(skops_io().dumps(estimator))
    return path


def load_estimator(path: Path) -> object:
    """A fitted estimator from a skops file, refused when it names any type skops does not trust by default."""
    if path.suffix in PICKLE_SUFFIXES:
        raise UnsafeModelFileError(f"{path}: Refinery does not load pickles from model folders; export it again")
    blob = path.read_bytes()
    try:
        untrusted = skops_io().get_untrusted_types(data=blob)
    except Exception as error:  # a damaged or crafted archive: skops raises whatever its reader meets
        raise UnsafeModelFileError(f"{path}: not a readable skops file ({error})") from error
    if untrusted:
        raise UnsafeModelFileError(f"{path}: names types outside the trusted list, refused: {', '.join(untrusted)}")
    return skops_io().loads(blob)
