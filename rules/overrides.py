"""A dataset's rules laid over the shipped ones: matching rules replaced by name, new checks added."""

from __future__ import annotations

import hashlib

from rules.compiler import RuleBook, RuleError, compile_rule_document
from rules.yaml_reader import YamlReader


def extend_rule_book(book: RuleBook, overrides: dict[str, dict], reader: YamlReader) -> RuleBook:
    """The book with some assets' rules extended or overridden (a dataset's `rules:`), compiled again.

    Checks and dataset rules with a shipped rule's name replace it, new ones are added; mappings merge key by
    key. A dataset may not add dataset rules of its own: they are asset checks, declared once for the code location.
    """
    rule_sets = dict(book.rule_sets)
    for asset, override in overrides.items():
        if asset == "__lines__":
            continue
        base = rule_sets.get(asset)
        if base is None or not isinstance(override, dict):
            raise reader.error(
                f"{reader.path}: rules for {asset!r}: expected a mapping for an asset with "
                f"shipped rules ({', '.join(sorted(rule_sets))})"
            )
        shipped = {rule.name for rule in base.dataset_rules}
        added = [spec.get("name") for spec in override.get("dataset", []) if isinstance(spec, dict)]
        unknown = [name for name in added if name not in shipped]
        if unknown:
            raise reader.error(
                f"{reader.path}: rules for {asset!r}: dataset rules {unknown} are not shipped ones "
                f"({', '.join(sorted(shipped))}); a dataset may only change those"
            )
        document = overlay_documents(YamlReader(base.path, RuleError).load(), override)
        rule_sets[asset] = compile_rule_document(reader, document)
    digest = hashlib.sha256(book.digest.encode() + repr(_without_lines(overrides)).encode()).hexdigest()[:16]
    return RuleBook(book.directory, rule_sets, digest)


def overlay_documents(base: object, override: object) -> object:
    """`override` laid over `base`: mappings merge by key, lists of named rules by name, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = overlay_documents(base[key], value) if key in base and key != "__lines__" else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and all(_named(item) for item in base + override):
        by_name = {item["name"]: item for item in base}
        for item in override:
            by_name[item["name"]] = overlay_documents(by_name.get(item["name"], {}), item)
        return list(by_name.values())
    return override


def _named(item: object) -> bool:
    return isinstance(item, dict) and isinstance(item.get("name"), str)


def _without_lines(node: object) -> object:
    if isinstance(node, dict):
        return {key: _without_lines(value) for key, value in sorted(node.items()) if key != "__lines__"}
    if isinstance(node, list):
        return [_without_lines(item) for item in node]
    return node
