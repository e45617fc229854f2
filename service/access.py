"""Who may call the service: a constant-time bearer-token check, and loopback-only unauthenticated metrics."""

from __future__ import annotations

import hmac
import ipaddress
import os

from service.requests import RequestError

TOKEN_VARIABLE = "REFINERY_API_TOKEN"
HOSTS_VARIABLE = "REFINERY_ALLOWED_HOSTS"  # comma-separated names a client may call the service by; "*": any
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")


def is_loopback(host: str | None) -> bool:
    """Whether an address (or `localhost`) is on this machine's loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def allowed_hosts(bound: str | None = None) -> frozenset[str]:
    """The names besides loopback a client may call the service by: the address it serves on, and the
    deployer's REFINERY_ALLOWED_HOSTS."""
    named = {name.strip().lower() for name in os.environ.get(HOSTS_VARIABLE, "").split(",") if name.strip()}
    if bound is not None and bound not in WILDCARD_ADDRESSES:
        named.add(bound.strip("[]").lower())
    return frozenset(named)


def host_name(header: str) -> str:
    """The name in a Host header, without its port, brackets or trailing dot, in lower case."""
    header = header.strip().lower()
    if header.startswith("["):  # [::1]:8080
        return header[1 : header.find("]")] if "]" in header else header
    name = header.rsplit(":", 1)[0] if header.count(":") == 1 else header
    return name.rstrip(".")


def require_known_host(header: str | None, allowed: frozenset[str]) -> None:
    """Refuse (421) a request whose Host is neither loopback nor allowed: a page on another site whose name
    was rebound to this machine's address must not reach the service (DNS rebinding)."""
    if header is None or "*" in allowed:
        return
    name = host_name(header)
    if not (is_loopback(name) or name in allowed):
        raise RequestError(f"the service is not called {name!r} here; a deployer allows names in {HOSTS_VARIABLE}", 421)


def has_token(authorization: str | None, token: str) -> bool:
    """Whether an Authorization header carries the token: `Bearer <token>`, the scheme in any case."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def require_token(authorization: str | None, token: str | None) -> None:
    """Refuse (401) a request without the token, when the service has one."""
    if token and not has_token(authorization, token):
        raise RequestError(
            f"missing or wrong bearer token (set by {TOKEN_VARIABLE})", 401, {"WWW-Authenticate": "Bearer"}
        )


def require_metrics_access(client: str | None, authorization: str | None, token: str | None) -> None:
    """Metrics need no token from loopback; from anywhere else they need the token, and without one they are refused."""
    if is_loopback(client):
        return
    if not token:
        raise RequestError("metrics are served to loopback clients only while the service has no token", 403)
    require_token(authorization, token)


class InsecureHostError(RuntimeError):
    """Serving a non-loopback address without a token, without saying so."""


def check_host(host: str, insecure: bool = False) -> None:
    """Refuse to serve a non-loopback address without a token unless `insecure` says that is meant."""
    if not os.environ.get(TOKEN_VARIABLE) and not is_loopback(host) and not insecure:
        raise InsecureHostError(
            f"refusing to serve on {host} without a token: set {TOKEN_VARIABLE}, or pass --insecure to serve "
            "anyone who can reach this address"
        )
