"""Refinery's data rules: YAML files in this folder, compiled into Pandera schemas and checks."""

from rules.compiler import RuleBook, RuleError, RuleSet, default_rule_book, load_rule_book

__all__ = ["RuleBook", "RuleError", "RuleSet", "default_rule_book", "load_rule_book"]
