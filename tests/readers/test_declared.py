"""Sources declared in YAML: validated with file, line and key; no credentials in the file."""

from pathlib import Path

import pytest

from assets.readers.declared import HttpSource, SourceDeclarationError, SqlSource, load_sources

VALID = """\
sources:
  - name: helpdesk
    kind: sql
    uri: sqlite:///tickets.db
    query: SELECT id, body, queue, updated_at FROM tickets
    watermark_column: updated_at
    mapping: {text_column: body, label_column: queue, id_column: id}
  - name: portal
    kind: http
    url: http://127.0.0.1:9/tickets
    records_path: data
    token_env: PORTAL_TOKEN
    pagination: {kind: page, page_size: 50}
"""


def test_valid_declarations_load_with_their_mappings(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(VALID)
    sources = load_sources(tmp_path)
    sql, http = sources["helpdesk"], sources["portal"]
    assert isinstance(sql, SqlSource) and sql.mapping.mapped == {"text": "body", "label": "queue", "source_id": "id"}
    assert isinstance(http, HttpSource) and (http.pagination.kind, http.pagination.page_size) == ("page", 50)


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("sqlite:///tickets.db", "postgresql://u:hunter2@127.0.0.1/db", r"s\.yaml:4: key 'uri': holds a password"),
        ("watermark_column: updated_at", "watermark_column: updated_at; DROP", r"s\.yaml:6: key 'watermark_column'"),
        ("kind: sql", "kind: ftp", r"s\.yaml:3: key 'kind': must be sql or http"),
        ("    records_path: data", "    record_path: data", r"s\.yaml:11: key 'record_path': unknown key"),
        ("{kind: page, page_size: 50}", "{kind: pages}", r"s\.yaml:13: key 'kind': must be one of none, page"),
        ("token_env: PORTAL_TOKEN", "token_env: abc123token", r"s\.yaml:12: key 'token_env': must name an environment"),
        ("id_column: id}", "id_colum: id}", r"s\.yaml: key 'mapping': unknown key 'id_colum'"),
        ("name: portal", "name: Portal Tickets", r"s\.yaml:8: key 'name': must be 1-31 lower-case"),
        ("sqlite:///tickets.db", "postgresql://u@127.0.0.1/db?password=x", r"s\.yaml:4: key 'uri': holds a password"),
        ("http://127.0.0.1:9/tickets", "http://u:p@127.0.0.1:9/t", r"s\.yaml:10: key 'url': holds a credential"),
        ("http://127.0.0.1:9/tickets", "http://127.0.0.1:9/t?api_key=x", r"s\.yaml:10: key 'url': holds a credential"),
        ("    records_path: data", "    params: {access_token: x}", r"s\.yaml:11: key 'params': holds a credential"),
    ],
)
def test_a_bad_declaration_names_file_line_and_key(tmp_path: Path, replace: str, by: str, message: str) -> None:
    assert replace in VALID
    (tmp_path / "s.yaml").write_text(VALID.replace(replace, by))
    with pytest.raises(SourceDeclarationError, match=message):
        load_sources(tmp_path)


def test_a_name_declared_twice_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yaml").write_text(VALID)
    with pytest.raises(SourceDeclarationError, match="declared twice"):
        load_sources(tmp_path)


def test_credential_names_are_whole_words_of_a_parameter_name() -> None:
    from assets.readers.declared import _secret_name

    for name in ("api_key", "apiKey", "X-Api-Key", "access-token", "clientSecret", "password", "token", "signature"):
        assert _secret_name(name), name
    for name in ("author", "max_tokens", "page_token", "oauth_version", "sort_key", "keyword", "per_page"):
        assert not _secret_name(name), name
