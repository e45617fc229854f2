"""Sources declared in YAML (`sources/*.yaml`): SQL tables with watermarks and paginated HTTP APIs.

Loaded and validated when the code location loads; errors name the file, line and key.
Credentials never appear in these files: only the names of the environment variables that hold them.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from assets.readers.mapping import MappingError, RecordMapping
from assets.storage.home import PROJECT_ROOT
from rules.yaml_reader import YamlError, YamlReader

SOURCES_DIR_ENV = "REFINERY_SOURCES_DIR"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,30}$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
PAGINATION_KINDS = ("none", "page", "offset", "cursor")


class SourceDeclarationError(YamlError):
    """A sources file that does not validate."""


@dataclass(frozen=True)
class Pagination:
    """How an API splits its records over requests."""

    kind: str = "none"
    page_param: str = "page"
    size_param: str = "per_page"
    start_page: int = 1
    offset_param: str = "offset"
    limit_param: str = "limit"
    page_size: int = 100
    cursor_param: str = "cursor"
    next_cursor_path: str = "next_cursor"
    max_pages: int = 10_000


@dataclass(frozen=True)
class SqlSource:
    """Rows of a SQL query; each new range of `watermark_column` becomes a dataset version."""

    name: str
    uri: str
    query: str
    mapping: RecordMapping
    watermark_column: str | None = None
    password_env: str | None = None
    interval_seconds: int = 300
    batch_size: int = 50_000
    kind: str = field(default="sql", init=False)


@dataclass(frozen=True)
class HttpSource:
    """Records from a JSON API; a poll whose content changed becomes a dataset version."""

    name: str
    url: str
    mapping: RecordMapping
    records_path: str = ""
    pagination: Pagination = Pagination()
    token_env: str | None = None
    params: tuple[tuple[str, str], ...] = ()
    interval_seconds: int = 600
    max_retries: int = 5
    backoff_seconds: float = 0.5
    timeout_seconds: float = 30.0
    redirect_hosts: tuple[str, ...] = ()  # hosts besides the URL's own that a redirect may lead to
    max_page_bytes: int = 32 * 1024 * 1024  # one page's body, decompressed; a larger one is refused
    kind: str = field(default="http", init=False)

    def token(self) -> str | None:
        """The bearer token from its environment variable (an error names the variable when unset)."""
        if self.token_env is None:
            return None
        value = os.environ.get(self.token_env)
        if not value:
            raise SourceDeclarationError(f"source {self.name!r}: environment variable {self.token_env} is not set")
        return value


Source = SqlSource | HttpSource


def _mapping(reader: YamlReader, spec: dict) -> RecordMapping:
    values = {k: v for k, v in reader.get(spec, "mapping", dict, default={}).items() if k != "__lines__"}
    try:
        return RecordMapping.from_mapping(values, f"{reader.path}: key 'mapping'")
    except MappingError as error:
        raise SourceDeclarationError(str(error)) from error


# Words that make a parameter name a credential, matched as whole words of the name (`api_key`, `access-token`,
# `clientSecret` split at case changes); `author`, `max_tokens` or `page_token` are not credentials.
SECRET_WORDS = frozenset({"password", "passwd", "pwd", "secret", "apikey", "signature", "sig", "credential"})
SECRET_PAIRS = frozenset(
    {
        ("api", "key"),
        ("access", "key"),
        ("access", "token"),
        ("auth", "token"),
        ("bearer", "token"),
        ("id", "token"),
        ("refresh", "token"),
        ("private", "key"),
    }
)


def _secret_name(name: str) -> bool:
    """Whether a URL parameter's name says it carries a credential (`api_key`, `access_token`, `password`)."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower().replace("-", "_").split("_")
    words = [word for word in words if word]
    return (
        any(word in SECRET_WORDS for word in words)
        or any(pair in SECRET_PAIRS for pair in itertools.pairwise(words))
        or words in (["token"], ["key"], ["auth"])
    )


def _env_name(reader: YamlReader, spec: dict, key: str) -> str | None:
    name = reader.get(spec, key, str, default=None)
    if name is not None and not ENV_NAME.match(name):
        raise reader.fail(spec, key, f"must name an environment variable (UPPER_CASE), got {name!r}")
    return name


def _sql_source(reader: YamlReader, spec: dict, name: str) -> SqlSource:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    reader.keys(
        spec,
        (
            "name",
            "kind",
            "uri",
            "query",
            "watermark_column",
            "password_env",
            "mapping",
            "interval_seconds",
            "batch_size",
        ),
        f"sql source {name!r}",
    )
    uri = reader.get(spec, "uri", str)
    try:
        url = make_url(uri)
    except ArgumentError as error:
        raise reader.fail(spec, "uri", f"not a database URI: {error}") from error
    if url.password is not None or any(_secret_name(name) for name in url.query):
        raise reader.fail(spec, "uri", "holds a password; put it in an environment variable named by password_env")
    watermark = reader.get(spec, "watermark_column", str, default=None)
    if watermark is not None and not IDENTIFIER.match(watermark):
        raise reader.fail(spec, "watermark_column", f"must be a plain column name, got {watermark!r}")
    return SqlSource(
        name=name,
        uri=uri,
        query=reader.get(spec, "query", str).strip().rstrip(";"),
        mapping=_mapping(reader, spec),
        watermark_column=watermark,
        password_env=_env_name(reader, spec, "password_env"),
        interval_seconds=reader.get(spec, "interval_seconds", int, default=300),
        batch_size=reader.get(spec, "batch_size", int, default=50_000),
    )


def _pagination(reader: YamlReader, spec: dict) -> Pagination:
    node = reader.get(spec, "pagination", dict, default={})
    allowed = tuple(Pagination.__dataclass_fields__)
    reader.keys(node, allowed, "pagination")
    values = {}
    for key, default in Pagination().__dict__.items():
        if key in node:
            values[key] = reader.get(node, key, type(default))
    if values.get("kind", "none") not in PAGINATION_KINDS:
        raise reader.fail(node, "kind", f"must be one of {', '.join(PAGINATION_KINDS)}")
    return Pagination(**values)


def _http_source(reader: YamlReader, spec: dict, name: str) -> HttpSource:
    reader.keys(
        spec,
        (
            "name",
            "kind",
            "url",
            "records_path",
            "pagination",
            "token_env",
            "params",
            "mapping",
            "interval_seconds",
            "max_retries",
            "backoff_seconds",
            "timeout_seconds",
            "redirect_hosts",
            "max_page_bytes",
        ),
        f"http source {name!r}",
    )
    url = reader.get(spec, "url", str)
    if not url.startswith(("http://", "https://")):
        raise reader.fail(spec, "url", f"must start with http:// or https://, got {url!r}")
    parts = urlsplit(url)
    if parts.username or parts.password or any(_secret_name(name) for name, _ in parse_qsl(parts.query)):
        raise reader.fail(
            spec, "url", "holds a credential; put the token in an environment variable named by token_env"
        )
    params = reader.get(spec, "params", dict, default={})
    if any(_secret_name(str(name)) for name in params if name != "__lines__"):
        raise reader.fail(
            spec, "params", "holds a credential; put the token in an environment variable named by token_env"
        )
    return HttpSource(
        name=name,
        url=url,
        mapping=_mapping(reader, spec),
        records_path=reader.get(spec, "records_path", str, default=""),
        pagination=_pagination(reader, spec),
        token_env=_env_name(reader, spec, "token_env"),
        params=tuple((str(k), str(v)) for k, v in params.items() if k != "__lines__"),
        interval_seconds=reader.get(spec, "interval_seconds", int, default=600),
        max_retries=reader.get(spec, "max_retries", int, default=5),
        backoff_seconds=float(reader.get(spec, "backoff_seconds", (int, float), default=0.5)),
        timeout_seconds=float(reader.get(spec, "timeout_seconds", (int, float), default=30.0)),
        redirect_hosts=tuple(str(host).lower() for host in reader.get(spec, "redirect_hosts", list, default=[])),
        max_page_bytes=reader.get(spec, "max_page_bytes", int, default=HttpSource.max_page_bytes),
    )


def load_sources_file(path: Path) -> list[Source]:
    """The sources declared in one file: a mapping with a `sources:` list."""
    reader = YamlReader(path, SourceDeclarationError)
    document = reader.load()
    if not isinstance(document, dict):
        raise SourceDeclarationError(f"{path}: expected a mapping with a `sources` list")
    reader.keys(document, ("sources",), "sources file")
    declared = []
    for spec in reader.get(document, "sources", list):
        if not isinstance(spec, dict):
            raise reader.fail(document, "sources", "each source must be a mapping")
        name = reader.get(spec, "name", str)
        if not NAME_PATTERN.match(name):
            raise reader.fail(spec, "name", f"must be 1-31 lower-case letters, digits, '_' or '-', got {name!r}")
        kind = reader.get(spec, "kind", str)
        if kind == "sql":
            declared.append(_sql_source(reader, spec, name))
        elif kind == "http":
            declared.append(_http_source(reader, spec, name))
        else:
            raise reader.fail(spec, "kind", f"must be sql or http, got {kind!r} (files arrive through landing/)")
    return declared


def default_sources_dir() -> Path:
    """`$REFINERY_SOURCES_DIR`, or the `sources/` folder beside the project."""
    return Path(os.environ.get(SOURCES_DIR_ENV) or PROJECT_ROOT / "sources")


def load_sources(directory: Path | None = None) -> dict[str, Source]:
    """Every source declared in a folder's `*.yaml` files, by name; a name used twice is an error."""
    directory = directory or default_sources_dir()
    sources: dict[str, Source] = {}
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        for source in load_sources_file(path):
            if source.name in sources:
                raise SourceDeclarationError(f"{path}: source name {source.name!r} is declared twice")
            sources[source.name] = source
    return sources
