"""HTTP sources against a real JSON API on 127.0.0.1: pagination, retries, auth, versions by content."""

import json

import pytest

from assets.readers.arrivals import http_tick
from assets.readers.declared import HttpSource, Pagination
from assets.readers.http import HttpSourceError, fetch_records
from assets.readers.mapping import RecordMapping
from assets.storage.version_manifest import read_version_manifest
from tests.servers import TicketApi

RECORDS = [{"id": i, "body": f"ticket number {i}", "queue": "vpn_access"} for i in range(1, 8)]


def _source(url: str, **fields) -> HttpSource:
    fields.setdefault("backoff_seconds", 0.01)
    return HttpSource(name="portal", url=url, mapping=RecordMapping(text_column="body", label_column="queue"), **fields)


@pytest.mark.parametrize(
    ("path", "records_path", "pagination"),
    [
        ("/page", "data", Pagination(kind="page", page_size=3)),
        ("/offset", "items", Pagination(kind="offset", page_size=2)),
        ("/cursor", "result.tickets", Pagination(kind="cursor", cursor_param="cursor", next_cursor_path="next")),
    ],
    ids=["page", "offset", "cursor"],
)
def test_every_pagination_style_returns_every_record_once_in_order(path, records_path, pagination) -> None:
    with TicketApi(RECORDS) as api:
        source = _source(api.url + path, records_path=records_path, pagination=pagination)
        assert list(fetch_records(source)) == RECORDS


def test_429_and_5xx_are_retried_with_backoff_then_succeed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_TOKEN", "t0ken")
    with TicketApi(RECORDS, token="t0ken") as api:
        api.failures = [429, 503, 502]
        source = _source(
            api.url + "/page",
            records_path="data",
            pagination=Pagination(kind="page", page_size=10),
            token_env="PORTAL_TOKEN",
        )
        assert list(fetch_records(source)) == RECORDS
        assert len(api.requests) == 4


def test_retries_give_up_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with TicketApi(RECORDS) as api:
        api.failures = [500] * 10
        source = _source(api.url + "/page", records_path="data", max_retries=2)
        with pytest.raises(HttpSourceError, match=r"answered 500 Internal Server Error"):
            list(fetch_records(source))
        assert len(api.requests) == 3


def test_a_4xx_is_not_retried_and_names_the_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_TOKEN", "wrong")
    with TicketApi(RECORDS, token="right") as api:
        source = _source(api.url + "/page", records_path="data", token_env="PORTAL_TOKEN")
        with pytest.raises(HttpSourceError, match=r"answered 401 Unauthorized: .*wrong bearer token"):
            list(fetch_records(source))
        assert len(api.requests) == 1
    with TicketApi(RECORDS) as api, pytest.raises(HttpSourceError, match=r"answered 404 Not Found"):
        list(fetch_records(_source(api.url + "/nope")))


def test_an_unset_token_variable_is_named() -> None:
    with pytest.raises(ValueError, match="environment variable PORTAL_TOKEN_UNSET is not set"):
        list(fetch_records(_source("http://127.0.0.1:9/x", token_env="PORTAL_TOKEN_UNSET")))


def test_same_content_never_yields_two_versions_and_new_content_does(tmp_path) -> None:
    with TicketApi(RECORDS) as api:
        source = _source(api.url + "/page", records_path="data", pagination=Pagination(kind="page", page_size=5))
        first = http_tick(source, tmp_path, set())
        assert first is not None and first.startswith("portal-")
        folder = tmp_path / first
        assert [json.loads(line) for line in (folder / "records.ndjson").read_text().splitlines()] == RECORDS
        assert read_version_manifest(folder)["kind"] == "http" and (folder / "_SUCCESS").exists()
        assert http_tick(source, tmp_path, {first}) is None
        api.records = [*RECORDS, {"id": 8, "body": "new one", "queue": "printer_issue"}]
        second = http_tick(source, tmp_path, {first})
        assert second not in (None, first)


def test_a_redirect_is_followed_on_the_same_origin_and_refused_to_another(monkeypatch) -> None:
    monkeypatch.setenv("PORTAL_TOKEN", "t0ken")
    with TicketApi(RECORDS, token="t0ken") as api, TicketApi([{"id": 99, "body": "planted", "queue": "x"}]) as other:
        source = _source(
            api.url + "/moved", records_path="data", pagination=Pagination(page_size=10), token_env="PORTAL_TOKEN"
        )
        assert list(fetch_records(source)) == RECORDS  # /moved -> /page on the same server, the token kept
        api.redirect_to = other.url + "/page"
        with pytest.raises(HttpSourceError, match=r"redirects to http://127\.0\.0\.1:\d+, another origin"):
            list(fetch_records(source))
        assert other.requests == []
        allowed = _source(
            api.url + "/moved", records_path="data", token_env="PORTAL_TOKEN", redirect_hosts=("127.0.0.1",)
        )
        assert [record["id"] for record in fetch_records(allowed)] == [99]  # a declared host is followed
        assert "Bearer" not in str(other.headers_seen)  # the token never left its own origin


def test_a_page_past_max_page_bytes_is_refused_naming_the_limit() -> None:
    with TicketApi(RECORDS) as api:
        api.big_bytes = 200_000
        source = _source(api.url + "/big", records_path="data", max_page_bytes=100_000)
        with pytest.raises(HttpSourceError, match=r"more than max_page_bytes 100000"):
            list(fetch_records(source))


def test_a_gzipped_page_is_read_and_a_gzip_bomb_is_refused_at_the_limit() -> None:
    import resource

    with TicketApi(RECORDS) as api:
        assert list(fetch_records(_source(api.url + "/gzipped", records_path="data"))) == RECORDS
        api.big_bytes = 400_000_000  # 400 MB of spaces, about 400 KB gzipped
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with pytest.raises(HttpSourceError, match=r"passes max_page_bytes \(1000000 bytes\)"):
            list(fetch_records(_source(api.url + "/gzipped", records_path="data", max_page_bytes=1_000_000)))
        assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 200  # MiB, never 400 MB


def test_a_page_dripping_one_byte_at_a_time_is_refused_at_its_deadline() -> None:
    import time

    with TicketApi(RECORDS) as api:
        source = _source(api.url + "/drip", records_path="data", timeout_seconds=0.5, max_retries=0)
        started = time.monotonic()
        with pytest.raises(HttpSourceError, match=r"did not arrive within 2 s"):
            list(fetch_records(source))
        assert time.monotonic() - started < 6  # each read was in time: only the page's own deadline stops it
