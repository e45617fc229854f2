"""YAML files whose errors name the file, the line and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class YamlError(ValueError):
    """A YAML file that does not validate; the message names the file, line and key."""


MAX_YAML_BYTES = 1024 * 1024  # rules and source declarations are small; a larger file is refused unread
MAX_YAML_DEPTH = 64  # composing recurses once per level: 5,000 nested lists would exhaust Python's stack


def _compose_without_aliases(loader: yaml.SafeLoader, parent: yaml.Node | None, index: object) -> yaml.Node | None:
    """SafeLoader's compose_node, refusing `*name` (nested aliases expand without bound: billion laughs) and
    nesting deeper than MAX_YAML_DEPTH."""
    if loader.check_event(yaml.AliasEvent):
        mark = loader.peek_event().start_mark
        raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed here; write the value", mark)
    depth = getattr(loader, "depth", 0)
    if depth >= MAX_YAML_DEPTH:
        mark = loader.peek_event().start_mark
        raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", mark)
    loader.depth = depth + 1
    try:
        return yaml.SafeLoader.compose_node(loader, parent, index)
    finally:
        loader.depth = depth


class LineLoader(yaml.SafeLoader):
    """A YAML loader that records the line of every mapping key, for error messages, and refuses aliases."""

    compose_node = _compose_without_aliases


def _mapping_with_lines(loader: LineLoader, node: yaml.MappingNode) -> dict:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__lines__"] = {k.value: k.start_mark.line + 1 for k, _ in node.value}
    return mapping


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_lines)


class YamlReader:
    """Loads and walks one YAML file, raising `error` (a YamlError) that names file, line and key."""

    def __init__(self, path: Path, error: type[YamlError] = YamlError) -> None:
        self.path, self.error = path, error

    def load(self) -> Any:
        """The parsed document; every mapping carries its keys' lines under `__lines__`."""
        size = self.path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise self.error(f"{self.path}: {size} bytes; a YAML file here may hold at most {MAX_YAML_BYTES}")
        try:
            return yaml.load(self.path.read_text(), Loader=LineLoader)
        except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as problem:
            raise self.error(f"{self.path}: not valid YAML: {problem}") from None

    def fail(self, node: dict, key: str, message: str) -> YamlError:
        line = node.get("__lines__", {}).get(key, "?")
        return self.error(f"{self.path}:{line}: key {key!r}: {message}")

    def keys(self, node: dict, allowed: tuple[str, ...], where: str) -> None:
        for key in node:
            if key != "__lines__" and key not in allowed:
                raise self.fail(node, key, f"unknown key in {where} (allowed: {', '.join(allowed)})")

    def get(self, node: dict, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in node:
            if default is ...:
                raise self.error(f"{self.path}: missing required key {key!r}")
            return default
        value = node[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
            names = "/".join(k.__name__ for k in _tuple(kind))
            raise self.fail(node, key, f"expected {names}, got {type(value).__name__} {value!r}")
        return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


class _NoAliasLoader(yaml.SafeLoader):
    """A safe loader that refuses aliases, without line bookkeeping."""

    compose_node = _compose_without_aliases


def load_control_file(path: Path, error: type[Exception] = YamlError) -> Any:
    """A small YAML control file (`_source.yaml`, `_version.yaml`): no links, at most 1 MiB, no aliases."""
    if path.is_symlink():
        raise error(f"{path}: a symbolic link; control files must be regular files")
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise error(f"{path}: {size} bytes; a YAML file here may hold at most {MAX_YAML_BYTES}")
    try:
        return yaml.load(path.read_text(), Loader=_NoAliasLoader)
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as problem:
        raise error(f"{path}: not valid YAML: {problem}") from None
