"""Sending commands to stations: one path for every message the service sends.

``StationCommands.call(station_id, build)`` is the platform's one command path
(``CommandClient.call``: one route lookup, ``build(version)`` for that connection's
version, the official schema checked: a payload of ours that breaks it is a bug, never
sent), with this service's timeout and limit of commands in flight.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from csms_core.router import (
    CommandClient,
    CommandOutcome,
    CommandResult,
    InvalidCommand,
    Router,
    StationOffline,
)
from csms_firmware.wire import Message
from csms_ocpp import OcppVersion

logger = logging.getLogger(__name__)

Build = Callable[[OcppVersion], Message]


class InvalidOwnPayload(ValueError):
    """A message we built breaks its schema."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What became of one command."""

    version: OcppVersion
    action: str
    result: CommandResult

    @property
    def answered(self) -> bool:
        return self.result.outcome is CommandOutcome.RESULT

    @property
    def status(self) -> str | None:
        """The ``status`` of the answer (1.6 UpdateFirmware has none: an empty answer)."""
        if not self.answered:
            return None
        status = (self.result.payload or {}).get("status")
        return status if isinstance(status, str) else None

    @property
    def failure(self) -> str:
        result = self.result
        if result.outcome is CommandOutcome.ERROR:
            return f"CALLERROR {result.error_code}: {result.error_description}".strip()
        return f"{result.outcome.value}: {result.error_description}".strip(": ")


class StationCommands:
    def __init__(
        self, router: Router, client: CommandClient, timeout_s: float, parallelism: int
    ) -> None:
        self._router = router
        self._client = client
        self._timeout_s = timeout_s
        self._slots = asyncio.Semaphore(parallelism)

    async def version_of(self, station_id: str) -> OcppVersion | None:
        route = await self._router.lookup(station_id)
        return None if route is None else OcppVersion.from_number(route.ocpp_version)

    async def call(self, station_id: str, build: Build, timeout_s: float | None = None) -> Answer:
        """Send ``build(version)``; StationOffline if no gateway holds the station."""
        async with self._slots:
            try:
                result = await self._client.call(station_id, build, timeout_s or self._timeout_s)
            except InvalidCommand as exc:
                raise InvalidOwnPayload(f"{exc} for {station_id}") from exc
        if result.outcome is CommandOutcome.OFFLINE:
            raise StationOffline(station_id)
        version = OcppVersion.from_number(result.ocpp_version or "1.6")
        return Answer(version, result.action, result)
