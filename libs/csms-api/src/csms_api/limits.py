"""Bounded requests for every CSMS app: a body size limit (413) and a per-client rate
limit (429 with ``Retry-After``), as one ASGI middleware.

- **Body size.** A route whose body FastAPI parses (a declared body model) gets at most
  ``CSMS_API_MAX_BODY_BYTES``: a larger ``Content-Length`` is refused before a byte is
  read, a chunked body as soon as it passes the limit, so a 100 MB body never sits in
  memory. A route that reads its body as a stream itself (firmware images, log uploads)
  enforces its own limit; ``body_limit(n)`` gives any route a limit of its own.
- **Rate.** Each client address (behind a proxy: the one the proxy reports, see
  ``CSMS_API_TRUSTED_PROXIES``) has a token bucket of ``CSMS_API_RATE_BURST`` requests
  refilled at ``CSMS_API_RATE_PER_S``; an empty bucket answers 429 with the seconds until
  the next token in ``Retry-After``. Per process: N replicas behind a proxy allow N times
  the rate in total. Health checks are never limited.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIB = 1024 * 1024
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz"})
_BODY_LIMIT_ATTRIBUTE = "csms_max_body_bytes"
_INSTALLED_KEY = "csms_request_limits"

F = TypeVar("F", bound=Callable[..., Any])


class RequestLimits(BaseSettings):
    """Limits of every REST app (env prefix ``CSMS_API_``)."""

    model_config = SettingsConfigDict(env_prefix="CSMS_API_", extra="ignore")

    max_body_bytes: int = Field(default=MIB, ge=1024)
    rate_per_s: float = Field(default=200.0, gt=0)
    rate_burst: int = Field(default=400, ge=1)
    # Clients remembered at once; the least recently seen are forgotten beyond this.
    rate_clients: int = Field(default=100_000, ge=100)
    # Peers whose X-Forwarded-For names the client (a reverse proxy), comma-separated.
    trusted_proxies: str = "127.0.0.1"
    # Connections and requests one process serves at once (uvicorn answers 503 beyond).
    max_concurrent_requests: int = Field(default=2000, ge=10)


def body_limit(max_bytes: int) -> Callable[[F], F]:
    """Give one route a body limit of its own (decorate the endpoint, under ``@router``'s)."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, _BODY_LIMIT_ATTRIBUTE, max_bytes)
        return endpoint

    return mark


class BodyTooLarge(HTTPException):
    """413: FastAPI lets an ``HTTPException`` raised while reading a body through."""

    kind = "body-too-large"

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")


class TokenBuckets:
    """One token bucket per client, the least recently seen forgotten past ``capacity``."""

    def __init__(self, rate_per_s: float, burst: int, capacity: int) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._capacity = capacity
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float | None = None) -> float:
        """Take a token: 0.0 if there was one, else the seconds until there is."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(client, (self._burst, now))
        tokens = min(self._burst, tokens + max(0.0, now - last) * self._rate)
        if tokens >= 1.0:
            tokens -= 1.0
            wait = 0.0
        else:
            wait = (1.0 - tokens) / self._rate
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self._capacity:
            self._buckets.popitem(last=False)
        return wait


class LimitsMiddleware:
    """The body size and rate limits of one app (see the module's docstring)."""

    def __init__(self, app: ASGIApp, limits: RequestLimits | None = None) -> None:
        self.app = app
        self.limits = limits if limits is not None else RequestLimits()
        self.buckets = TokenBuckets(
            self.limits.rate_per_s, self.limits.rate_burst, self.limits.rate_clients
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.buckets.take(client[0] if client else "unknown")
        if wait > 0:
            await _too_many_requests(scope, send, wait)
            return
        await self.app(scope, _bounded(scope, receive, self.limits.max_body_bytes), send)


def _route_limit(scope: Scope, default: int) -> int | None:
    """The body limit of the route serving ``scope`` (known once routing is done); None
    for a route that reads its body as a stream and bounds it itself."""
    own = getattr(scope.get("endpoint"), _BODY_LIMIT_ATTRIBUTE, None)
    if isinstance(own, int):
        return own
    route = scope.get("route")
    if route is not None and getattr(route, "body_field", None) is None:
        return None
    return default


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _bounded(scope: Scope, receive: Receive, default: int) -> Receive:
    """``receive`` that raises ``BodyTooLarge`` once the body passes the route's limit."""
    state: dict[str, int | None] = {}

    async def bounded_receive() -> Message:
        if "limit" not in state:
            state["limit"] = limit = _route_limit(scope, default)
            state["read"] = 0
            declared = _declared_length(scope)
            if limit is not None and declared is not None and declared > limit:
                raise BodyTooLarge(limit)
        message = await receive()
        limit = state["limit"]
        if limit is not None and message["type"] == "http.request":
            read = (state["read"] or 0) + len(message.get("body", b""))
            state["read"] = read
            if read > limit:
                raise BodyTooLarge(limit)
        return message

    return bounded_receive


async def _too_many_requests(scope: Scope, send: Send, wait_s: float) -> None:
    retry_after = max(1, math.ceil(wait_s))
    body = orjson.dumps(
        {
            "type": "urn:csms:problem:rate-limited",
            "title": "Rate limited",
            "status": 429,
            "detail": f"too many requests from this client; retry in {retry_after} s",
            "instance": scope["path"],
        }
    )
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_request_limits(app: Starlette, limits: RequestLimits | None = None) -> None:
    """Bound ``app``'s requests (once, however often called)."""
    if getattr(app.state, _INSTALLED_KEY, False):
        return
    setattr(app.state, _INSTALLED_KEY, True)
    app.add_middleware(LimitsMiddleware, limits=limits)
