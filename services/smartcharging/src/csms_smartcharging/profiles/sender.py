"""Sending limits to stations through the reply channel, decreases before increases.

Every call's outcome is kept: ``Accepted`` means the station applies it; anything
else (Rejected, a CALLERROR, a timeout, offline) makes the next allocation count
that session at its maximum (``planner.UNRELIABLE_OUTCOMES``).
"""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from csms_core.router import (
    Build,
    CommandClient,
    CommandOutcome,
    CommandResult,
    InvalidCommand,
    StationOffline,
)
from csms_ocpp import OcppVersion
from csms_smartcharging.charging.planner import ProfileChange
from csms_smartcharging.profiles import wire

logger = logging.getLogger(__name__)

profiles_sent = Counter(
    "csms_smartcharging_profiles_total", "SetChargingProfile calls by outcome", ["outcome"]
)


@dataclass(frozen=True, slots=True)
class Sent:
    change: ProfileChange
    outcome: str  # the station's status (Accepted/Rejected) or the CommandOutcome

    @property
    def accepted(self) -> bool:
        return self.outcome == "Accepted"


def outcome_of(result: CommandResult) -> str:
    if result.outcome is CommandOutcome.RESULT:
        return str((result.payload or {}).get("status", "invalid_response"))
    return result.outcome.value


class ProfileSender:
    def __init__(self, commands: CommandClient, timeout_s: float, parallel: int) -> None:
        self._commands = commands
        self._timeout_s = timeout_s
        self._slots = asyncio.Semaphore(parallel)

    async def send_all(self, changes: Sequence[ProfileChange]) -> list[Sent]:
        """Decreases first and all confirmed (or failed) before any increase goes out."""
        decreases = [change for change in changes if change.decrease]
        increases = [change for change in changes if not change.decrease]
        sent = list(await asyncio.gather(*(self.send(change) for change in decreases)))
        sent += await asyncio.gather(*(self.send(change) for change in increases))
        return sent

    async def send(self, change: ProfileChange) -> Sent:
        def build(version: OcppVersion) -> tuple[str, wire.JsonObject]:
            return "SetChargingProfile", wire.set_charging_profile(
                version,
                evse_id=change.evse_id,
                purpose=wire.Purpose.TX,
                limit_a=change.limit_a,
                phases=change.phases,
                transaction_id=change.transaction_id,
            )

        outcome = await self.call(change.station_id, build)
        profiles_sent.labels(outcome).inc()
        if outcome != "Accepted":
            logger.warning(
                "station %s evse %d: limit %.1f A not applied: %s",
                change.station_id,
                change.evse_id,
                change.limit_a,
                outcome,
            )
        return Sent(change, outcome)

    async def call(self, station_id: str, build: Build) -> str:
        """Send ``build(version)`` (one route lookup: the live connection's version); the
        station's status or our outcome."""
        async with self._slots:
            try:
                result = await self._commands.call(station_id, build, self._timeout_s)
            except StationOffline:
                return CommandOutcome.OFFLINE.value
            except InvalidCommand:
                logger.exception("own call to %s breaks its schema", station_id)
                return "invalid"
        return outcome_of(result)
