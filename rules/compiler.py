"""Compile the YAML rule files of a folder into Pandera (polars) schemas and dataset rules."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandera.polars as pa
import polars as pl

from recipe.pii_policy import BUILTIN_TYPES, PiiPolicy, compile_national_id
from recipe.regex import PatternError, check_pattern
from rules.expressions import ExpressionError, compile_expression
from rules.yaml_reader import YamlError, YamlReader

RULES_DIR_ENV = "REFINERY_RULES_DIR"
# each dataset kind's rules: a sub-folder of the rules folder ("": the folder itself)
KIND_RULES = {
    "classification": "",
    "generation": "generation",
    "preference": "preference",
    "pretraining": "pretraining",
}
SEVERITIES = ("error", "warn")
DTYPES: dict[str, type | pl.DataType] = {
    "string": pl.String,
    "int": pl.Int64,
    "float": pl.Float64,
    "bool": pl.Boolean,
}
COLUMN_CHECKS = ("str_length", "isin", "in_range", "str_matches", "expr")
ROW_LEVEL = "__rows__"  # the "column" of rules that look at whole rows
DATASET_RULES = {
    "min_rows": (int, float),
    "min_examples_per_label": (int, float),
    "max_imbalance_ratio": (int, float),
    "max_missing_rate": (int, float),
    "max_duplicate_rate": (int, float),
    "label_set": list,
    "text_length": dict,
    "max_label_psi": (int, float),
    "max_length_shift": (int, float),
    "max_rejected_rate": (int, float),
    "max_label_issue_rate": (int, float),
}
TEXT_LENGTH_BOUNDS = ("min_median", "max_median", "max_p95")
QUALITY_THRESHOLDS = {
    "min_words": int,
    "max_words": int,
    "min_mean_word_length": (int, float),
    "max_mean_word_length": (int, float),
    "max_symbol_ratio": (int, float),
    "min_alpha_word_fraction": (int, float),
    "max_duplicate_line_fraction": (int, float),
    "max_repeated_word_fraction": (int, float),
    "languages": list,
    "min_language_confidence": (int, float),
}


class RuleError(YamlError):
    """A rule file that does not compile; the message names the file, line and key."""


@dataclass(frozen=True)
class RowRule:
    """A rule on single rows: failing rows are quarantined under its name (`warn`: only counted)."""

    name: str
    column: str
    description: str
    severity: str
    order: int = 0


@dataclass(frozen=True)
class DatasetRule:
    """A rule on a whole dataset version, reported as an asset check named `check_<name>`."""

    name: str
    kind: str
    threshold: object
    description: str
    severity: str
    column: str = "label"


@dataclass
class RuleSet:
    """The compiled rules of one asset: a Pandera schema, dataset rules, PII and quality settings."""

    asset: str
    path: Path
    schema: pa.DataFrameSchema
    row_rules: dict[tuple[str, str, str], RowRule] = field(default_factory=dict)
    dataset_rules: list[DatasetRule] = field(default_factory=list)
    pii: PiiPolicy | None = None
    quality: dict[str, object] = field(default_factory=dict)

    warn_schema: pa.DataFrameSchema | None = None
    coerce: dict[str, type | pl.DataType] = field(default_factory=dict)
    length_bounds: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)  # error str_length rules

    def rule_table(self, severity: str = "error") -> pl.DataFrame:
        """Pandera failure keys -> rule name, description and order, for joining with failure cases."""
        rows = [(c, k, r.name, r.description, r.order) for (c, k, sev), r in self.row_rules.items() if sev == severity]
        return pl.DataFrame(rows, schema=["__column", "__check", "__rule", "__reason", "__order"], orient="row")


@dataclass
class RuleBook:
    """Every asset's rule set from one folder, with a hash of the files they came from."""

    directory: Path
    rule_sets: dict[str, RuleSet]
    digest: str

    def for_asset(self, asset: str) -> RuleSet | None:
        return self.rule_sets.get(asset)


def _sql(reader: YamlReader, spec: dict, key: str) -> pl.Expr:
    """A boolean SQL expression over a row's columns, allow-listed as a syntax tree (`rules.expressions`)."""
    try:
        return compile_expression(reader.get(spec, key, str))
    except ExpressionError as error:
        raise reader.fail(spec, key, str(error)) from None


def _expr_check(expression: pl.Expr, name: str, column: str | None) -> pa.Check:
    def evaluate(data) -> pl.LazyFrame:
        return data.lazyframe.select(expression.fill_null(False).alias(column or "valid"))

    return pa.Check(evaluate, name=name)


def _column_check(reader: YamlReader, spec: dict, column: str) -> tuple[pa.Check, RowRule]:
    reader.keys(spec, ("name", "description", "severity", *COLUMN_CHECKS), f"check of column {column!r}")
    name = reader.get(spec, "name", str)
    description = reader.get(spec, "description", str, default=name)
    severity = reader.get(spec, "severity", str, default="error")
    if severity not in SEVERITIES:
        raise reader.fail(spec, "severity", f"must be one of {SEVERITIES}")
    kinds = [k for k in COLUMN_CHECKS if k in spec]
    if len(kinds) != 1:
        raise RuleError(f"{reader.path}: check {name!r} needs exactly one of {', '.join(COLUMN_CHECKS)}")
    kind = kinds[0]
    if kind == "str_length" or kind == "in_range":
        bounds = reader.get(spec, kind, dict)
        reader.keys(bounds, ("min", "max"), f"{kind} of check {name!r}")
        low = reader.get(bounds, "min", (int, float), default=None)
        high = reader.get(bounds, "max", (int, float), default=None)
        if kind == "str_length":
            check = pa.Check.str_length(min_value=low, max_value=high)
        else:
            check = pa.Check.in_range(
                min_value=low if low is not None else float("-inf"),
                max_value=high if high is not None else float("inf"),
            )
    elif kind == "isin":
        allowed = reader.get(spec, "isin", list)
        check = pa.Check.isin(allowed)
    elif kind == "expr":
        check = _expr_check(_sql(reader, spec, "expr"), name, column)
    else:
        pattern = reader.get(spec, "str_matches", str)
        try:
            check_pattern(pattern)
        except PatternError as error:
            raise reader.fail(spec, "str_matches", str(error)) from None
        check = pa.Check.str_matches(pattern)
    return check, RowRule(name, column, description, severity)


def _dataset_rule(reader: YamlReader, spec: dict) -> DatasetRule:
    reader.keys(spec, ("name", "description", "severity", "column", *DATASET_RULES), "dataset rule")
    name = reader.get(spec, "name", str)
    kinds = [k for k in DATASET_RULES if k in spec]
    if len(kinds) != 1:
        raise YamlError(f"{reader.path}: dataset rule {name!r} needs exactly one of {', '.join(DATASET_RULES)}")
    kind = kinds[0]
    severity = reader.get(spec, "severity", str, default="error")
    if severity not in SEVERITIES:
        raise reader.fail(spec, "severity", f"must be one of {SEVERITIES}")
    threshold = reader.get(spec, kind, DATASET_RULES[kind])
    if kind == "text_length":
        reader.keys(threshold, TEXT_LENGTH_BOUNDS, "text_length")
        threshold = {k: float(reader.get(threshold, k, (int, float))) for k in TEXT_LENGTH_BOUNDS if k in threshold}
    elif kind == "label_set":
        threshold = sorted(str(label) for label in threshold)
    else:
        threshold = float(threshold)
    default_column = "text" if kind in ("max_duplicate_rate", "text_length", "max_length_shift") else "label"
    return DatasetRule(
        name=name,
        kind=kind,
        threshold=threshold,
        description=reader.get(spec, "description", str, default=name),
        severity=severity,
        column=reader.get(spec, "column", str, default=default_column),
    )


def _pii_policy(reader: YamlReader, node: dict) -> PiiPolicy:
    reader.keys(node, ("types", "national_ids", "ner_model"), "pii")
    types = tuple(reader.get(node, "types", list, default=list(BUILTIN_TYPES)))
    unknown = [t for t in types if t not in BUILTIN_TYPES]
    if unknown:
        raise reader.fail(node, "types", f"unknown PII types {unknown} (known: {', '.join(BUILTIN_TYPES)})")
    patterns = []
    for spec in reader.get(node, "national_ids", list, default=[]):
        if not isinstance(spec, dict):
            raise reader.fail(node, "national_ids", "each entry must be a mapping")
        reader.keys(spec, ("name", "description", "pattern", "placeholder"), "national_ids entry")
        name, pattern = reader.get(spec, "name", str), reader.get(spec, "pattern", str)
        try:
            patterns.append(compile_national_id(name, pattern, reader.get(spec, "placeholder", str, default="<ID>")))
        except PatternError as error:
            raise reader.fail(spec, "pattern", str(error)) from None
    return PiiPolicy(
        types=types, national_ids=tuple(patterns), ner_model=reader.get(node, "ner_model", str, default=None)
    )


def _quality(reader: YamlReader, node: dict) -> dict[str, object]:
    reader.keys(node, tuple(QUALITY_THRESHOLDS), "quality")
    return {key: reader.get(node, key, kind) for key, kind in QUALITY_THRESHOLDS.items() if key in node}


@dataclass
class _Compiled:
    """What compiling a file's columns and rows collects, by severity."""

    columns: dict[str, dict[str, pa.Column]] = field(default_factory=lambda: {"error": {}, "warn": {}})
    frame_checks: dict[str, list[pa.Check]] = field(default_factory=lambda: {"error": [], "warn": []})
    row_rules: dict[tuple[str, str, str], RowRule] = field(default_factory=dict)
    coerce: dict[str, type | pl.DataType] = field(default_factory=dict)
    length_bounds: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    order: int = 0


def _compile_column(reader: YamlReader, document: dict, column: str, spec: object, compiled: _Compiled) -> None:
    if not isinstance(spec, dict):
        raise reader.fail(document["columns"], column, "expected a mapping")
    reader.keys(spec, ("dtype", "nullable", "unique", "coerce", "checks"), f"column {column!r}")
    dtype_name = reader.get(spec, "dtype", str, default="string")
    if dtype_name not in DTYPES:
        raise reader.fail(spec, "dtype", f"unknown dtype {dtype_name!r} (known: {', '.join(DTYPES)})")
    checks: dict[str, list[pa.Check]] = {"error": [], "warn": []}
    for check_spec in reader.get(spec, "checks", list, default=[]):
        if not isinstance(check_spec, dict):
            raise reader.fail(spec, "checks", "each check must be a mapping")
        check, rule = _column_check(reader, check_spec, column)
        compiled.order += 1
        compiled.row_rules[(column, str(len(checks[rule.severity])), rule.severity)] = RowRule(
            rule.name, column, rule.description, rule.severity, compiled.order
        )
        checks[rule.severity].append(check)
        if "str_length" in check_spec and rule.severity == "error":
            bounds = check_spec["str_length"]
            compiled.length_bounds[column] = (bounds.get("min"), bounds.get("max"))
    for builtin, description in (
        ("not_nullable", f"{column} is required"),
        ("field_uniqueness", f"{column} is unique"),
        ("coerce_dtype", f"{column} converts to {dtype_name}"),
    ):
        suffix = {"not_nullable": "not_null", "field_uniqueness": "unique", "coerce_dtype": "dtype"}[builtin]
        compiled.row_rules[(column, builtin, "error")] = RowRule(f"{column}_{suffix}", column, description, "error", -1)
    if reader.get(spec, "coerce", bool, default=False):  # cast per row in enforce: Pandera fails whole frames
        compiled.coerce[column] = DTYPES[dtype_name]
    compiled.columns["error"][column] = pa.Column(
        DTYPES[dtype_name],
        checks=checks["error"],
        nullable=reader.get(spec, "nullable", bool, default=True),
        unique=reader.get(spec, "unique", bool, default=False),
    )
    if checks["warn"]:
        compiled.columns["warn"][column] = pa.Column(DTYPES[dtype_name], checks=checks["warn"], nullable=True)


def _compile_row_rule(reader: YamlReader, document: dict, spec: object, compiled: _Compiled) -> None:
    if not isinstance(spec, dict):
        raise reader.fail(document, "rows", "each row rule must be a mapping")
    reader.keys(spec, ("name", "description", "severity", "expr"), "row rule")
    name = reader.get(spec, "name", str)
    severity = reader.get(spec, "severity", str, default="error")
    if severity not in SEVERITIES:
        raise reader.fail(spec, "severity", f"must be one of {SEVERITIES}")
    compiled.order += 1
    key = (ROW_LEVEL, str(len(compiled.frame_checks[severity])), severity)
    description = reader.get(spec, "description", str, default=name)
    compiled.row_rules[key] = RowRule(name, ROW_LEVEL, description, severity, compiled.order)
    compiled.frame_checks[severity].append(_expr_check(_sql(reader, spec, "expr"), name, None))


def compile_rule_file(path: Path) -> RuleSet:
    """Compile one YAML rule file into a RuleSet."""
    reader = YamlReader(path, RuleError)
    return compile_rule_document(reader, reader.load())


def compile_rule_document(reader: YamlReader, document: object) -> RuleSet:
    """Compile one parsed rule document; errors name the reader's file."""
    path = reader.path
    if not isinstance(document, dict):
        raise RuleError(f"{path}: expected a mapping with keys asset, columns, dataset")
    reader.keys(document, ("asset", "description", "columns", "rows", "dataset", "pii", "quality"), "rule file")
    asset = reader.get(document, "asset", str)
    compiled = _Compiled()
    for column, spec in (reader.get(document, "columns", dict, default={}) or {}).items():
        if column != "__lines__":
            _compile_column(reader, document, column, spec, compiled)
    for spec in reader.get(document, "rows", list, default=[]):
        _compile_row_rule(reader, document, spec, compiled)
    dataset_rules = []
    for spec in reader.get(document, "dataset", list, default=[]):
        if not isinstance(spec, dict):
            raise reader.fail(document, "dataset", "each dataset rule must be a mapping")
        dataset_rules.append(_dataset_rule(reader, spec))
    columns, frame_checks = compiled.columns, compiled.frame_checks
    schema = pa.DataFrameSchema(columns["error"], checks=frame_checks["error"], name=asset, strict=False)
    warn_schema = None
    if columns["warn"] or frame_checks["warn"]:
        warn_schema = pa.DataFrameSchema(columns["warn"], checks=frame_checks["warn"], name=f"{asset} (warn)")
    pii = _pii_policy(reader, document["pii"]) if isinstance(document.get("pii"), dict) else None
    quality = _quality(reader, reader.get(document, "quality", dict)) if "quality" in document else {}
    return RuleSet(
        asset,
        path,
        schema,
        compiled.row_rules,
        dataset_rules,
        pii,
        quality,
        warn_schema,
        compiled.coerce,
        compiled.length_bounds,
    )


def default_rules_dir() -> Path:
    """`$REFINERY_RULES_DIR`, or the `rules/` folder that ships with Refinery."""
    return Path(os.environ.get(RULES_DIR_ENV) or Path(__file__).parent).resolve()


def load_rule_book(directory: Path | None = None) -> RuleBook:
    """Compile every `*.yaml` file of a folder; two files for one asset is an error."""
    directory = directory or default_rules_dir()
    if not directory.is_dir():
        raise RuleError(f"{directory}: rules folder not found")
    rule_sets, digest = {}, hashlib.sha256()
    for path in sorted(directory.glob("*.yaml")):
        rule_set = compile_rule_file(path)
        if rule_set.asset in rule_sets:
            raise RuleError(f"{path}: asset {rule_set.asset!r} already has rules in {rule_sets[rule_set.asset].path}")
        rule_sets[rule_set.asset] = rule_set
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return RuleBook(directory, rule_sets, digest.hexdigest()[:16])


@lru_cache(maxsize=4)
def default_rule_book(kind: str = "classification") -> RuleBook:
    """The rule book of `default_rules_dir()` for a dataset kind (a generation dataset's: its `generation/`
    folder), compiled once per process (when the code location loads); an unknown kind is refused by name."""
    if kind not in KIND_RULES:
        raise RuleError(f"no rules for datasets of kind {kind!r}; Refinery has rules for {', '.join(KIND_RULES)}")
    return load_rule_book(default_rules_dir() / KIND_RULES[kind]) if KIND_RULES[kind] else load_rule_book()
