"""Who may call the service: a constant-time bearer-token check, and loopback-only unauthenticated metrics."""

from __future__ import annotations

import hmac
import ipaddress
import os

from service.requests import RequestError

TOKEN_VARIABLE = "REFINERY_API_TOKEN"


def is_loopback(host: str | None) -> bool:
    """Whether an address (or `localhost`) is on this machine's loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


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
