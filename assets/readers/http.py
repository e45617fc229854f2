"""HTTP sources: JSON records over page, offset or cursor pagination, with retries and a bearer token."""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Iterator

import httpx

from assets.readers.declared import HttpSource

RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_REDIRECTS = 5
PAGE_DEADLINE_READS = 4  # a page's body must arrive within this many read timeouts (timeout_seconds) in all


class HttpSourceError(RuntimeError):
    """An API answered with an error that retrying cannot fix, or kept failing; the message says which."""


def _dig(document: object, path: str) -> object:
    for part in [p for p in path.split(".") if p]:
        if not isinstance(document, dict) or part not in document:
            return None
        document = document[part]
    return document


def _retry_after(response: httpx.Response, fallback: float) -> float:
    try:
        return min(float(response.headers.get("Retry-After", fallback)), 60.0)
    except ValueError:
        return fallback


def same_origin(url: httpx.URL, other: httpx.URL) -> bool:
    """Whether two URLs share scheme, host and port."""
    return (url.scheme, url.host, url.port) == (other.scheme, other.host, other.port)


def redirect_target(source: HttpSource, response: httpx.Response) -> httpx.URL:
    """Where a redirect leads, refused unless it stays on the source's origin or goes to a declared host."""
    target = response.url.join(response.headers.get("location", ""))
    home = httpx.URL(source.url)
    if same_origin(target, home) or (target.scheme == home.scheme and target.host in source.redirect_hosts):
        return target
    raise HttpSourceError(
        f"GET {response.url} redirects to {target.scheme}://{target.host}:{target.port or ''}, another origin; "
        "list its host under redirect_hosts to follow it"
    )


def read_body(response: httpx.Response, limit: int, deadline_s: float) -> bytes:
    """The response body, decompressed here with a bound (gzip or deflate, one layer), refused once it passes
    `limit` bytes or `deadline_s` seconds: httpx's own decoding would inflate a whole network chunk, stacked
    encodings unbounded, and its timeout is per read, so a server dripping bytes would hold the poll for ever."""
    started = time.monotonic()
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "deflate"):
        raise HttpSourceError(
            f"GET {response.url}: Content-Encoding {encoding!r} is not read (identity, gzip, deflate)"
        )
    declared = response.headers.get("content-length", "")
    if encoding == "identity" and declared.isdigit() and int(declared) > limit:
        raise HttpSourceError(f"GET {response.url}: the body holds {declared} bytes, more than max_page_bytes {limit}")
    inflate = None if encoding == "identity" else zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else 0)
    chunks, size = [], 0
    for raw in response.iter_raw():
        if time.monotonic() - started > deadline_s:
            raise HttpSourceError(f"GET {response.url}: the body did not arrive within {deadline_s:g} s")
        pending = raw
        while pending:
            if inflate is None:
                chunk, pending = pending, b""
            else:
                chunk = inflate.decompress(pending, limit + 1 - size)
                pending = inflate.unconsumed_tail
            size += len(chunk)
            if size > limit:
                raise HttpSourceError(f"GET {response.url}: the body passes max_page_bytes ({limit} bytes)")
            chunks.append(chunk)
    return b"".join(chunks)


def bounded_get(client: httpx.Client, source: HttpSource, params: dict[str, object]) -> tuple[httpx.Response, bytes]:
    """One GET with its redirects followed by hand (same origin or declared hosts; the token only on the
    source's origin) and its body bounded."""
    url, query, home = httpx.URL(source.url), params, httpx.URL(source.url)
    for _ in range(MAX_REDIRECTS + 1):
        request = client.build_request("GET", url, params=query)
        if not same_origin(url, home):
            request.headers.pop("Authorization", None)
        response = client.send(request, stream=True)
        try:
            if response.is_redirect:
                url, query = redirect_target(source, response), None
                continue
            return response, read_body(response, source.max_page_bytes, source.timeout_seconds * PAGE_DEADLINE_READS)
        finally:
            response.close()
    raise HttpSourceError(f"GET {source.url}: more than {MAX_REDIRECTS} redirects")


def get_json(client: httpx.Client, source: HttpSource, params: dict[str, object]) -> object:
    """One GET, retried with exponential backoff on 429, 5xx and connection errors."""
    for attempt in range(source.max_retries + 1):
        delay = source.backoff_seconds * 2**attempt
        try:
            response, body = bounded_get(client, source, params)
        except httpx.TransportError as error:
            if attempt == source.max_retries:
                raise HttpSourceError(f"GET {source.url}: {error} (after {attempt + 1} attempts)") from error
            time.sleep(delay)
            continue
        if response.status_code in RETRY_STATUSES and attempt < source.max_retries:
            time.sleep(_retry_after(response, delay))
            continue
        if response.status_code >= 400:
            snippet = body[:200].decode("utf-8", "replace")
            raise HttpSourceError(
                f"GET {response.url} answered {response.status_code} {response.reason_phrase}: {snippet}"
            )
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as error:
            raise HttpSourceError(f"GET {response.url}: the response is not JSON (or nested too deep)") from error
    raise AssertionError("unreachable")


def _page_params(source: HttpSource, page: int, offset: int, cursor: object) -> dict[str, object]:
    """The query parameters of one page request: the source's own plus its paging position."""
    paging = source.pagination
    params: dict[str, object] = dict(source.params)
    if paging.kind == "page":
        params.update({paging.page_param: page, paging.size_param: paging.page_size})
    elif paging.kind == "offset":
        params.update({paging.offset_param: offset, paging.limit_param: paging.page_size})
    elif paging.kind == "cursor" and cursor is not None:
        params[paging.cursor_param] = cursor
    return params


def _page_records(source: HttpSource, document: object) -> list:
    """The records of one page, where `records_path` says they are."""
    records = _dig(document, source.records_path) if source.records_path else document
    if not isinstance(records, list):
        raise HttpSourceError(f"GET {source.url}: no list of records at {source.records_path or 'the top level'!r}")
    return records


def fetch_records(source: HttpSource) -> Iterator[dict]:
    """Every record of the API, page after page, in the API's order."""
    headers = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate"}
    token = source.token()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    paging = source.pagination
    with httpx.Client(headers=headers, timeout=source.timeout_seconds, follow_redirects=False) as client:
        cursor, page, offset = None, paging.start_page, 0
        for _ in range(paging.max_pages):
            document = get_json(client, source, _page_params(source, page, offset, cursor))
            records = _page_records(source, document)
            yield from records
            if paging.kind == "none":
                return
            if paging.kind == "cursor":
                cursor = _dig(document, paging.next_cursor_path)
                if cursor in (None, ""):
                    return
            elif len(records) < paging.page_size:
                return
            page, offset = page + 1, offset + len(records)
        raise HttpSourceError(f"GET {source.url}: more than {paging.max_pages} pages; raise pagination.max_pages")


def records_digest(records: list[object]) -> str:
    """A content hash of records, independent of key order."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()
