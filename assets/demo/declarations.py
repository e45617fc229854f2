"""A demo dataset's declaration, written as a user's would be: `datasets/<name>.yaml`, its training on a named base
or, unnamed, on the shipped SmolLM2-135M-Instruct."""

from __future__ import annotations

from pathlib import Path

import yaml

DEFAULT_BASE = "the default base, SmolLM2-135M-Instruct"


def write_demo_dataset(datasets_dir: Path, declaration: dict, base_model: str | Path | None, *, header: str) -> Path:
    """Write the declaration (`base_model` laid under its training) unless the folder has one; `header`'s `{base}`
    names the base in the file's first line."""
    path = datasets_dir / f"{declaration['name']}.yaml"
    if not path.exists():
        named = {"model_name_or_path": str(base_model)} if base_model else {}
        document = {**declaration, "training": {**named, **declaration["training"]}}
        path.parent.mkdir(parents=True, exist_ok=True)
        first_line = f"# {header.format(base=base_model or DEFAULT_BASE)}\n"
        path.write_text(first_line + yaml.safe_dump(document, sort_keys=False))
    return path
