"""Calls to stations: the payload built for the station's OCPP version, then sent.

``StationCalls.call(station_id, build)`` is the platform's one command path
(``CommandClient.call``: one route lookup, ``build(version)`` for that
connection's version, ``Untranslatable`` when it has no equivalent there, the
official schema checked) with this service's timeout.
"""

from csms_core.router import (
    Build,
    CommandClient,
    CommandOutcome,
    CommandResult,
    InvalidCommand,
    Router,
    StationOffline,
)
from csms_ocpp import OcppVersion


class InvalidCall(ValueError):
    """Our own call would break its schema: a bug or a bad REST value, never sent."""


class StationCalls:
    def __init__(self, router: Router, commands: CommandClient, timeout_s: float) -> None:
        self._router = router
        self._commands = commands
        self._timeout_s = timeout_s

    async def version(self, station_id: str) -> OcppVersion:
        """The OCPP version of the station's live connection; StationOffline without one."""
        route = await self._router.lookup(station_id)
        if route is None:
            raise StationOffline(station_id)
        return OcppVersion.from_number(route.ocpp_version)

    async def call(
        self, station_id: str, build: Build, timeout_s: float | None = None
    ) -> CommandResult:
        try:
            return await self._commands.call(station_id, build, timeout_s or self._timeout_s)
        except InvalidCommand as exc:
            raise InvalidCall(f"{exc.action}: {exc.description}") from exc


def accepted(result: CommandResult, *statuses: str) -> bool:
    """The station answered with a status among ``statuses`` (``Accepted`` by default)."""
    wanted = statuses or ("Accepted",)
    return (
        result.outcome is CommandOutcome.RESULT and (result.payload or {}).get("status") in wanted
    )


def describe(result: CommandResult) -> str:
    """One line for a log or a REST body: what came back."""
    if result.outcome is CommandOutcome.RESULT:
        return f"{result.action} {(result.payload or {}).get('status', 'answered')}"
    reason = f"{result.error_code or ''} {result.error_description}".strip()
    return f"{result.action} {result.outcome.value}" + (f": {reason}" if reason else "")
