"""The smart charging service: migrations, the consumer, and the allocation loop until stopped."""

import asyncio
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from csms_api.access import migrate_access
from csms_core.bus import Bus
from csms_core.calls import Announcement
from csms_core.db import session_factory, transaction, utc_now
from csms_core.identity import migrate_identity
from csms_core.router import CommandClient, CommandResult, Router
from csms_core.service import batch_limits, consume_and_run
from csms_smartcharging.charging.allocator import Allocator
from csms_smartcharging.charging.leadership import Leadership
from csms_smartcharging.charging.models import ChargingSession, LoadSample, ProcessedEvent
from csms_smartcharging.consumer import TOPICS, SmartChargingConsumer
from csms_smartcharging.context import calls
from csms_smartcharging.db import migrate_smartcharging
from csms_smartcharging.profiles import wire
from csms_smartcharging.profiles.sender import ProfileSender
from csms_smartcharging.settings import SmartChargingSettings

logger = logging.getLogger(__name__)

RETENTION = timedelta(days=7)  # processed event ids and load samples
PRUNE_EVERY_S = 3600.0


class SmartChargingService:
    """Everything the smart charging service needs; the caller opens and closes the clients."""

    def __init__(
        self,
        settings: SmartChargingSettings,
        *,
        bus: Bus,
        router: Router,
        commands: CommandClient,
        engine: AsyncEngine,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.router = router
        self.commands = commands
        self.engine = engine
        self.factory = session_factory(engine)
        self.sender = ProfileSender(
            commands, settings.profile_timeout_s, settings.max_parallel_commands
        )
        self.leadership = Leadership(engine)
        self.allocator = Allocator(settings, bus, self.sender, engine, router, self.leadership)
        self.ready = asyncio.Event()

    async def migrate(self) -> None:
        # The station directory (identity) is written here; API keys (access) are read.
        await migrate_identity(self.engine)
        await migrate_access(self.engine)
        await migrate_smartcharging(self.engine)

    async def run(self, *, ready: asyncio.Event | None = None, stopping: asyncio.Event) -> None:
        """Migrate, then consume and allocate until ``stopping``."""
        await self.migrate()
        consumer = SmartChargingConsumer(self.settings, self.commands, self.allocator)
        answers = Announcement(self.router, calls.declaration())
        await answers.announce()  # before ready: gateways route our CALLs to us from now
        await consume_and_run(
            "smartcharging",
            bus=self.bus,
            topic_names=TOPICS,
            group=self.settings.consumer_group,
            handler=consumer,
            engine=self.engine,
            concurrency=self.settings.consumer_concurrency,
            limits=batch_limits(self.settings, self.engine),
            stopping=stopping,
            background={
                "smartcharging allocator": self.allocator.run(stopping),
                "smartcharging pruning": self._prune(stopping),
                "smartcharging answers": answers.run(stopping),
            },
            ready=[self.ready, *([ready] if ready is not None else [])],
        )

    def limits_changed(self, site_id: str, reason: str = "limit_changed") -> None:
        """Something a REST call changed: re-allocate the site now."""
        self.allocator.topology_changed(site_id)
        self.allocator.mark_dirty(site_id, reason)

    def station_changed(self, station_id: str, site_id: str | None) -> None:
        """A station was assigned, re-rated or taken off its site (REST): its station-wide
        profiles again (or ours cleared), and its site re-allocated."""
        self.allocator.station_changed(station_id, site_id)
        if site_id is not None:
            self.allocator.mark_dirty(site_id, "station_changed")

    async def station_call(
        self, station_id: str, action: str, build: Any, timeout_s: float | None = None
    ) -> CommandResult:
        """Send ``build(version)`` to the station in its version; StationOffline if unreachable."""
        return await self.commands.call(
            station_id,
            lambda version: (action, build(version)),
            timeout_s or self.settings.profile_timeout_s,
        )

    async def composite_schedule(
        self, station_id: str, evse_id: int, duration_s: int
    ) -> CommandResult:
        return await self.station_call(
            station_id,
            "GetCompositeSchedule",
            lambda v: wire.get_composite_schedule(v, evse_id=evse_id, duration_s=duration_s),
        )

    async def request_profiles(self, station_id: str, request_id: int) -> CommandResult:
        return await self.station_call(
            station_id,
            "GetChargingProfiles",
            lambda v: wire.get_charging_profiles(v, request_id=request_id),
        )

    async def _prune(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            cutoff = utc_now() - RETENTION
            async with transaction(self.factory) as session:
                await session.exec(
                    delete(ProcessedEvent).where(col(ProcessedEvent.processed_at) < cutoff)
                )
                await session.exec(delete(LoadSample).where(col(LoadSample.at) < cutoff))
                # Stand-ins of transactions whose session never came (ignored after their TTL).
                await session.exec(
                    delete(ChargingSession).where(
                        col(ChargingSession.provisional), col(ChargingSession.started_at) < cutoff
                    )
                )
            try:
                await asyncio.wait_for(stopping.wait(), PRUNE_EVERY_S)
            except TimeoutError:
                continue
