"""Rule expressions: SQL over a row's columns, parsed and allow-listed as a syntax tree before Polars sees it.

A rules file may come from a shared store. Polars SQL can read files and URLs (`read_csv`, subqueries) and build
huge strings (`lpad`), so an expression is parsed with sqlglot (PostgreSQL's grammar, the one Polars SQL follows,
dollar-quoted strings included), every node of the tree must be on the allow-list below, and Polars compiles
the SQL regenerated from that tree, never the text as written: what runs is exactly what was checked.
"""

from __future__ import annotations

import itertools
from typing import ClassVar

import polars as pl
import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.generator import Generator
from sqlglot.tokens import TokenType

from recipe.regex import PatternError, check_pattern

MAX_EXPRESSION_CHARS = 2000
MAX_CONCATENATIONS = 8  # each `||` (or `+`, which Polars also applies to texts) can double a text's length
MAX_NODES = 500
# The scalar functions a rule may call, by the names a rule writes; none builds a text longer than its input.
SQL_FUNCTIONS = frozenset(
    {
        "abs",
        "cast",
        "ceil",
        "ceiling",
        "char_length",
        "character_length",
        "coalesce",
        "ends_with",
        "floor",
        "greatest",
        "initcap",
        "least",
        "left",
        "length",
        "lower",
        "ltrim",
        "nullif",
        "octet_length",
        "regexp_like",
        "right",
        "round",
        "rtrim",
        "sign",
        "starts_with",
        "strpos",
        "substr",
        "substring",
        "trim",
        "upper",
    }
)
ANONYMOUS_FUNCTIONS = frozenset({"octet_length"})  # allowed names sqlglot has no node type for
# The syntax a rule may use: columns, literals, comparisons, boolean logic, arithmetic, CASE, CAST, the functions.
ALLOWED_NODES = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.RawString,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Tuple,
    exp.And,
    exp.Or,
    exp.Not,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Neg,
    exp.DPipe,
    exp.Case,
    exp.If,
    exp.Cast,
    exp.DataType,
    exp.Abs,
    exp.Ceil,
    exp.Coalesce,
    exp.EndsWith,
    exp.Floor,
    exp.Greatest,
    exp.Initcap,
    exp.Least,
    exp.Left,
    exp.Length,
    exp.Lower,
    exp.Nullif,
    exp.RegexpILike,
    exp.RegexpLike,
    exp.Right,
    exp.Round,
    exp.Sign,
    exp.StartsWith,
    exp.StrPosition,
    exp.Substring,
    exp.Trim,
    exp.Upper,
    exp.Anonymous,
)
CAST_TYPES = frozenset(
    {
        exp.DataType.Type.TEXT,
        exp.DataType.Type.VARCHAR,
        exp.DataType.Type.CHAR,
        exp.DataType.Type.INT,
        exp.DataType.Type.BIGINT,
        exp.DataType.Type.SMALLINT,
        exp.DataType.Type.DOUBLE,
        exp.DataType.Type.FLOAT,
        exp.DataType.Type.DECIMAL,
        exp.DataType.Type.BOOLEAN,
    }
)
NOT_AN_EXPRESSION = "must be an expression over the row's columns: no queries, comments or quoted names"


class ExpressionError(ValueError):
    """A rule expression refused: the reason, for the rules file's error."""


class PolarsSQL(Postgres):
    """PostgreSQL's grammar for reading; written back in the function forms Polars SQL knows."""

    class Generator(Generator):
        TRANSFORMS: ClassVar[dict] = {
            **Generator.TRANSFORMS,
            exp.StrPosition: lambda self, node: self.func("STRPOS", node.this, node.args.get("substr")),
        }


def compile_expression(text: str) -> pl.Expr:
    """A boolean Polars expression from a rule's SQL, or ExpressionError saying what is refused."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"holds {len(text)} characters; an expression may hold {MAX_EXPRESSION_CHARS}")
    refuse_unlisted_calls(text)
    try:
        tree = sqlglot.parse_one(text, read=PolarsSQL)
    except ParseError as error:
        first = error.errors[0] if error.errors else {"description": str(error), "col": "?"}
        raise ExpressionError(f"not a valid SQL expression: {first['description']} at column {first['col']}") from None
    except (SqlglotError, RecursionError) as error:
        raise ExpressionError(f"not a valid SQL expression: {error}") from None
    check_tree(tree)
    try:
        return pl.sql_expr(tree.sql(dialect=PolarsSQL))
    except Exception as error:  # Polars raises several types for bad SQL
        raise ExpressionError(f"not a valid SQL expression: {error}") from error


def refuse_unlisted_calls(text: str) -> None:
    """Refuse a call, by the name it is written with, of any function off the list (keywords before a parenthesis
    are left to the syntax tree's check)."""
    try:
        tokens = PolarsSQL().tokenize(text)
    except SqlglotError as error:
        raise ExpressionError(f"not a valid SQL expression: {error}") from None
    called = {
        token.text.lower()
        for token, following in itertools.pairwise(tokens)
        if following.token_type is TokenType.L_PAREN and token.token_type is TokenType.VAR
    }
    refused = sorted(called - SQL_FUNCTIONS)
    if refused:
        raise ExpressionError(f"calls {', '.join(refused)}: a rule may call only {', '.join(sorted(SQL_FUNCTIONS))}")


def check_regex_argument(pattern: exp.Expression) -> None:
    """A regex must be a literal that compiles in Polars' engine now: one built from the data would be compiled
    for every row, and could fail on any of them."""
    if not (isinstance(pattern, exp.RawString) or (isinstance(pattern, exp.Literal) and pattern.is_string)):
        raise ExpressionError(f"matches against {pattern.sql()}: a regular expression must be a string literal")
    try:
        check_pattern(pattern.name)
    except PatternError as error:
        raise ExpressionError(str(error)) from None


def check_tree(tree: exp.Expression) -> None:
    """Every node on the allow-list, few enough of them, and few concatenations."""
    nodes = list(tree.walk())
    if len(nodes) > MAX_NODES:
        raise ExpressionError(f"has {len(nodes)} parts; an expression may have {MAX_NODES}")
    for node in nodes:
        check_node(node)
    concatenations = sum(isinstance(node, exp.DPipe | exp.Add) for node in nodes)
    if concatenations > MAX_CONCATENATIONS:
        raise ExpressionError(f"concatenates or adds more than {MAX_CONCATENATIONS} times")


def check_node(node: exp.Expression) -> None:
    """One node on the allow-list: unqualified, unquoted columns, listed functions and types, no comments."""
    if node.comments or not isinstance(node, ALLOWED_NODES):
        raise ExpressionError(f"{NOT_AN_EXPRESSION} (found {node.key})")
    if isinstance(node, exp.Identifier) and node.quoted:
        raise ExpressionError(f"{NOT_AN_EXPRESSION} (found the quoted name {node.name!r})")
    if isinstance(node, exp.Column) and node.table:
        raise ExpressionError(f"{NOT_AN_EXPRESSION} (found the qualified name {node.sql()!r})")
    if isinstance(node, exp.Anonymous) and node.name.lower() not in ANONYMOUS_FUNCTIONS:
        raise ExpressionError(f"calls {node.name.lower()}: a rule may call only {', '.join(sorted(SQL_FUNCTIONS))}")
    if isinstance(node, exp.DataType) and node.this not in CAST_TYPES:
        raise ExpressionError(f"casts to {node.sql()}: a rule may cast to text, integer, float or boolean types")
    if isinstance(node, exp.In) and node.args.get("query"):
        raise ExpressionError(f"{NOT_AN_EXPRESSION} (found a subquery)")
    if isinstance(node, exp.RegexpLike | exp.RegexpILike):
        check_regex_argument(node.expression)
