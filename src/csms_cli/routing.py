"""One REST base URL: which service serves which ``/api/v1`` path.

``API_SERVICES`` is the routing table, the one place a service declares the path
prefixes it serves. The compose proxy (``deploy/nginx``), the Kubernetes proxy
(``deploy/k8s``) and the merged OpenAPI document (``docs/openapi.json``, ``csms
openapi``) are generated from it, and ``tests/test_api_routing.py`` checks it
against the services' own OpenAPI documents.

A prefix is a path template: ``/api/v1/sites`` or
``/api/v1/stations/{station_id}/charging-profiles``, where ``{name}`` stands for
one path segment. A request belongs to the service whose prefix matches the
most leading segments of its path (the longest match), so one service may serve
``/api/v1/stations`` while another serves a sub-resource of every station.

A few paths are served outside ``/api/v1``, without a bearer token, to callers that
have none: a payment provider's signed webhook, drivers' receipts, the firmware
images and log uploads stations fetch and send with a credential in the URL. A
service names them as ``public`` paths (``PublicPath``); the proxies route them like
the others, and they never lie under ``/api`` or on the proxy's own paths.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from csms_billing.app import create_app as create_billing_app
from csms_firmware.app import create_app as create_firmware_app
from csms_security.app import create_app as create_security_app
from csms_sessions.app import create_app as create_sessions_app
from csms_smartcharging.app import create_app as create_smartcharging_app

API_BASE = "/api/v1"
# What the proxies answer themselves, or keep for the API: no public path lies there.
RESERVED = ("api", "healthz", "readyz", "metrics", "openapi.json", "docs")
_PARAM = re.compile(r"^\{[A-Za-z_][A-Za-z0-9_]*\}$")
_LITERAL = re.compile(r"^[A-Za-z0-9._~-]+$")


@dataclass(frozen=True)
class PublicPath:
    """A path prefix a service serves outside ``/api/v1`` without a bearer token (its
    routes authenticate the caller otherwise: a signature, a credential in the URL).

    ``streams``: requests carry files the service limits itself (a station's log
    upload), so the proxy passes bodies of any size through as they come.
    """

    prefix: str
    streams: bool = False


@dataclass(frozen=True)
class ApiService:
    """A service that serves part of the REST API, and the path prefixes it owns.

    ``name`` is its ``csms`` sub-command and the name of its compose services and
    Kubernetes Deployment; ``create_app`` builds its FastAPI app (here only to read
    the routes, so it gets a placeholder instead of a running service). ``public``:
    what it serves outside ``/api/v1`` (``PublicPath``).
    """

    name: str
    create_app: Callable[[Any], FastAPI]
    prefixes: tuple[str, ...]
    public: tuple[PublicPath, ...] = ()

    def app(self) -> FastAPI:
        """The service's app, for its routes and OpenAPI document; no route is called."""
        return self.create_app(object())


# The routing table. A new service adds one entry; a new top-level resource of an
# existing service adds its prefix here (docs/operators.md, "One REST base URL").
API_SERVICES: tuple[ApiService, ...] = (
    ApiService(
        "sessions",
        create_sessions_app,
        (
            "/api/v1/stations",
            "/api/v1/id-tokens",
            "/api/v1/sessions",
            "/api/v1/api-keys",
            "/api/v1/audit",
        ),
    ),
    ApiService(
        "smartcharging",
        create_smartcharging_app,
        (
            "/api/v1/sites",
            "/api/v1/stations/{station_id}/charging-limits",
            "/api/v1/stations/{station_id}/charging-profiles",
            "/api/v1/stations/{station_id}/composite-schedule",
        ),
    ),
    ApiService(
        "security",
        create_security_app,
        (
            "/api/v1/certificates",
            "/api/v1/security-events",
            "/api/v1/stations/{station_id}/certificates",
            "/api/v1/stations/{station_id}/security-events",
            "/api/v1/stations/{station_id}/security-profile",
        ),
    ),
    ApiService(
        "firmware",
        create_firmware_app,
        ("/api/v1/firmware",),
        # Stations download images and upload logs with the credential in the URL.
        public=(PublicPath("/firmware/files"), PublicPath("/firmware/uploads", streams=True)),
    ),
    ApiService(
        "billing",
        create_billing_app,
        (
            "/api/v1/tariffs",
            "/api/v1/cdrs",
            "/api/v1/costs",
            "/api/v1/payments",
            "/api/v1/prepaid-accounts",
            "/api/v1/stations/{station_id}/tariffs",
        ),
        # The payment provider's signed webhook; drivers' receipts (their id is the key).
        public=(PublicPath("/payments/webhook"), PublicPath("/receipts")),
    ),
)


def segments(path: str) -> tuple[str, ...]:
    """The segments of a path or path template (``/a/{b}/c`` -> ``("a", "{b}", "c")``)."""
    return tuple(path.strip("/").split("/")) if path.strip("/") else ()


def is_param(segment: str) -> bool:
    return bool(_PARAM.match(segment))


@dataclass(frozen=True)
class Route:
    """One prefix of the table and the service it belongs to (``public``: outside
    ``/api/v1``, no bearer token; ``streams``: bodies of any size pass through)."""

    prefix: str
    service: str
    public: bool = False
    streams: bool = False

    @property
    def segments(self) -> tuple[str, ...]:
        return segments(self.prefix)

    def matches(self, path: str) -> bool:
        """Whether a concrete path (no templates) starts with this prefix, segment by segment."""
        wanted, given = self.segments, segments(path)
        return len(given) >= len(wanted) and all(
            is_param(mine) or mine == theirs for mine, theirs in zip(wanted, given, strict=False)
        )

    def regex(self) -> str:
        """The prefix as an anchored regular expression over a request path."""
        # Literal segments hold only [A-Za-z0-9._~-] (checked): only "." needs escaping.
        parts = ("[^/]+" if is_param(s) else s.replace(".", r"\.") for s in self.segments)
        return "^/" + "/".join(parts) + "(?:/|$)"


class RoutingError(ValueError):
    """The routing table is malformed or ambiguous."""


class RouteTable:
    """The prefixes of every REST service; a path's owner is its longest matching prefix."""

    def __init__(self, services: Iterable[ApiService]) -> None:
        self.services = tuple(services)
        self.routes = tuple(
            Route(prefix, service.name) for service in self.services for prefix in service.prefixes
        ) + tuple(
            Route(path.prefix, service.name, public=True, streams=path.streams)
            for service in self.services
            for path in service.public
        )
        self._check()

    def _check(self) -> None:
        names = [service.name for service in self.services]
        if len(names) != len(set(names)):
            raise RoutingError(f"a service is listed twice: {names}")
        for route in self.routes:
            _check_prefix(route)
        for index, route in enumerate(self.routes):
            for other in self.routes[index + 1 :]:
                if _ambiguous(route, other):
                    raise RoutingError(
                        f"{route.prefix} ({route.service}) and {other.prefix} ({other.service})"
                        " can match the same path at the same depth"
                    )

    def owner(self, path: str) -> str | None:
        """The service that serves a concrete request path, or None if nobody does."""
        matching = [route for route in self.routes if route.matches(path)]
        if not matching:
            return None
        return max(matching, key=lambda route: len(route.segments)).service

    @property
    def public(self) -> tuple[Route, ...]:
        """The prefixes served outside ``/api/v1`` without a bearer token."""
        return tuple(route for route in self.routes if route.public)

    def in_match_order(self) -> list[Route]:
        """The routes, longest first: the first one that matches a path is its owner."""
        return sorted(self.routes, key=lambda route: (-len(route.segments), route.prefix))


def _check_prefix(route: Route) -> None:
    if route.public:
        _check_public(route)
    elif not route.prefix.startswith(API_BASE + "/"):
        raise RoutingError(f"{route.prefix} ({route.service}): not under {API_BASE}/")
    for segment in route.segments:
        if not (is_param(segment) or _LITERAL.match(segment)):
            raise RoutingError(f"{route.prefix} ({route.service}): bad segment {segment!r}")
    if is_param(route.segments[-1]):
        raise RoutingError(f"{route.prefix} ({route.service}): ends with a parameter")


def _check_public(route: Route) -> None:
    """A public prefix: literal segments (an Ingress routes it as a plain Prefix path),
    outside ``/api`` and the proxy's own paths."""
    if not route.prefix.startswith("/") or not route.segments:
        raise RoutingError(f"{route.prefix} ({route.service}): not an absolute path")
    if route.segments[0] in RESERVED:
        raise RoutingError(f"{route.prefix} ({route.service}): a public path under a reserved one")
    if any(is_param(segment) for segment in route.segments):
        raise RoutingError(f"{route.prefix} ({route.service}): a public prefix has no parameter")


def _ambiguous(one: Route, other: Route) -> bool:
    """Two prefixes of equal depth that some path matches both (or the same prefix twice)."""
    if len(one.segments) != len(other.segments):
        return False
    return all(
        is_param(mine) or is_param(theirs) or mine == theirs
        for mine, theirs in zip(one.segments, other.segments, strict=True)
    )


def route_table() -> RouteTable:
    """The table of ``API_SERVICES``, checked."""
    return RouteTable(API_SERVICES)
