"""Auditing every state-changing REST call: an ASGI middleware of every service's app.

After the response is sent, a POST, PUT, PATCH or DELETE under ``/api/v1`` is recorded,
in one transaction with the commands it sent (``csms_api.audit.log.deferred``), with who
called (the authenticated principal, or ``anonymous`` for a refused call), the route, the
station in its path, the status and the client address. Never the body, a
header or a query string: they may hold secrets. Calls nobody authenticated for are
recorded at most ``ANONYMOUS_PER_WINDOW`` per client address and minute (the next one
recorded says how many were left out): a stranger must not be able to fill the table.
"""

import logging
import time
from collections import OrderedDict

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from csms_api.audit.log import AuditLog, Deferred, actor_kind, deferred
from csms_api.audit.store import AuditEntry
from csms_api.auth import PRINCIPAL_KEY, resolve_authenticator
from csms_core.actor import acting

logger = logging.getLogger(__name__)

CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/api/v1/"
_LOG_KEY = "csms_audit_log"
ANONYMOUS_PER_WINDOW = 20
ANONYMOUS_WINDOW_S = 60.0
_REMEMBERED = 10_000


class AnonymousThrottle:
    """How many refused anonymous calls of a client address to leave out of the trail."""

    def __init__(
        self, per_window: int = ANONYMOUS_PER_WINDOW, window_s: float = ANONYMOUS_WINDOW_S
    ) -> None:
        self._per_window = per_window
        self._window_s = window_s
        # address -> (window start, recorded in the window, left out since the last record)
        self._seen: OrderedDict[str, tuple[float, int, int]] = OrderedDict()

    def admit(self, address: str, now: float | None = None) -> int | None:
        """None to leave this call out; else how many were left out before it."""
        now = time.monotonic() if now is None else now
        start, recorded, left_out = self._seen.pop(address, (now, 0, 0))
        if now - start >= self._window_s:
            start, recorded = now, 0
        if recorded >= self._per_window:
            self._seen[address] = (start, recorded, left_out + 1)
            return None
        self._seen[address] = (start, recorded + 1, 0)
        if len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        return left_out


class AuditMiddleware:
    """Records each state-changing ``/api/v1`` call of ``app`` as done by ``source``, in
    the database of the app's authenticator."""

    def __init__(self, app: ASGIApp, source: str) -> None:
        self.app = app
        self.source = source
        self._anonymous = AnonymousThrottle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with acting():
            if scope["method"] in CHANGING and scope["path"].startswith(API_PREFIX):
                await self._audited(scope, receive, send)
            else:
                await self.app(scope, receive, send)

    async def _audited(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 500  # what the client gets if the app fails before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with deferred() as commands:
            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                commands.open = False
                await self._record(scope, status, commands)

    async def _record(self, scope: Scope, status: int, commands: Deferred) -> None:
        """The call's entry after the commands it sent, in one transaction."""
        entries = list(commands.entries)
        entry = self._entry(scope, status)
        left_out = (
            self._anonymous.admit(entry.client or "") if entry.actor_kind == "anonymous" else 0
        )
        if left_out:
            entry.detail = f"{left_out} more refused anonymous calls left out before it"
        if left_out is not None:
            entries.append(entry)
        audit = self._log(scope)
        if audit is not None:
            await audit.record_many(entries)
        elif entries:  # fail loud, never silent: an app without an authenticator is a bug
            logger.error("no audit log for %s", [e.model_dump(mode="json") for e in entries])

    def _log(self, scope: Scope) -> AuditLog | None:
        app = scope.get("app")
        audit = getattr(getattr(app, "state", None), _LOG_KEY, None)
        if isinstance(audit, AuditLog) or app is None:
            return audit
        authenticator = resolve_authenticator(app)
        if authenticator is None:
            return None
        audit = AuditLog(authenticator.factory, self.source)
        setattr(app.state, _LOG_KEY, audit)
        return audit

    def _entry(self, scope: Scope, status: int) -> AuditEntry:
        principal = scope.get("state", {}).get(PRINCIPAL_KEY)
        actor = f"{principal.kind}:{principal.subject}" if principal is not None else "anonymous"
        params = scope.get("path_params", {})
        route = scope.get("route")
        template = route_template(scope["path"], params, getattr(route, "path", None))
        station_id = params.get("station_id")
        client = scope.get("client")
        return AuditEntry(
            kind="rest",
            actor=actor,
            actor_kind=actor_kind(actor),
            action=f"{scope['method']} {template}"[:300],
            path=scope["path"][:1000],
            station_id=station_id[:48] if isinstance(station_id, str) else None,
            outcome=str(status),
            source=service_of(route) or self.source,
            client=str(client[0])[:64] if client else None,
        )


def service_of(route: object) -> str | None:
    """The service whose code serves ``route`` (``csms_firmware.api`` -> ``firmware``): in
    ``csms up`` one app serves every service's routes."""
    module = getattr(getattr(route, "endpoint", None), "__module__", "") or ""
    package = module.partition(".")[0]
    return (
        package.removeprefix("csms_")
        if package.startswith("csms_") and package != "csms_api"
        else None
    )


def route_template(path: str, params: dict[str, object], route_path: str | None = None) -> str:
    """The route of a path (``/api/v1/stations/CP-1`` -> ``/api/v1/stations/{station_id}``):
    the matched route's path behind the prefix it was included with, else each segment that
    is a path parameter's value named as the parameter."""
    segments = path.split("/")
    if route_path is not None:
        tail = route_path.split("/")[1:]
        if 0 < len(tail) < len(segments):
            return "/".join(segments[: len(segments) - len(tail)] + tail)
    for name, value in params.items():
        if isinstance(value, str | int) and str(value) in segments:
            segments[segments.index(str(value))] = f"{{{name}}}"
    return "/".join(segments)
