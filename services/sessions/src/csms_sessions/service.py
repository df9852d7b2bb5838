"""The sessions service: migrations, then the consumer of station events until stopped."""

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from csms_api.access import migrate_access
from csms_api.audit import AuditRelay
from csms_core.bus import Bus
from csms_core.calls import Announcement
from csms_core.db import session_factory, transaction
from csms_core.identity import IdentityStore, migrate_identity
from csms_core.router import CommandClient, Router
from csms_core.service import batch_limits, consume_and_run
from csms_sessions.consumer import TOPICS, InboundConsumer
from csms_sessions.context import calls
from csms_sessions.db import migrate_sessions, utc_now
from csms_sessions.inbox import ProcessedEvent
from csms_sessions.local_lists.sync import LocalListSync
from csms_sessions.monitoring.service import prune_events
from csms_sessions.settings import SessionsSettings
from csms_sessions.transactions.resolution import SessionResolution

logger = logging.getLogger(__name__)

# A replay comes from offsets not yet committed, so minutes old at most; a week is ample.
PROCESSED_EVENT_RETENTION = timedelta(days=7)
PRUNE_EVERY_S = 3600.0


class SessionsService:
    """Everything the sessions service needs; the caller opens and closes the clients."""

    def __init__(
        self,
        settings: SessionsSettings,
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
        self.identities = IdentityStore(self.factory)
        self.local_lists = LocalListSync(settings, self.factory, router, commands)
        self.resolution = SessionResolution(settings, self.factory, commands, bus)
        # The audit trail every service writes, on csms.audit (this service serves it).
        self.audit_relay = AuditRelay(
            self.factory, bus, retention=timedelta(days=settings.audit_retention_days)
        )
        self.ready = asyncio.Event()

    async def migrate(self) -> None:
        await migrate_identity(self.engine)
        await migrate_access(self.engine)
        await migrate_sessions(self.engine)

    async def run(self, *, ready: asyncio.Event | None = None, stopping: asyncio.Event) -> None:
        """Migrate, then consume ``ocpp.inbound`` and ``ocpp.connections`` until ``stopping``."""
        await self.migrate()
        consumer = InboundConsumer(self.settings, self.bus, self.commands, self.engine)
        answers = Announcement(self.router, calls.declaration())
        await answers.announce()  # before ready: gateways route our CALLs to us from now
        await consume_and_run(
            "sessions",
            bus=self.bus,
            topic_names=TOPICS,
            group=self.settings.consumer_group,
            handler=consumer,
            engine=self.engine,
            concurrency=self.settings.consumer_concurrency,
            # Its next transaction reads nothing that its answers and events going out
            # change: a lane need not wait for them (the offsets do).
            limits=replace(batch_limits(self.settings, self.engine), send_behind=True),
            stopping=stopping,
            background={
                "sessions completions": consumer.run_completions(stopping),
                "sessions pruning": self._prune(stopping),
                "local lists": self.local_lists.run(self.bus, stopping=stopping),
                "sessions resolution": self.resolution.run(stopping),
                "sessions answers": answers.run(stopping),
                "audit relay": self.audit_relay.run(stopping),
            },
            ready=[self.ready, *([ready] if ready is not None else [])],
        )

    async def _prune(self, stopping: asyncio.Event) -> None:
        """Hourly: the inbox past its replay window, station events past their retention."""
        while not stopping.is_set():
            async with transaction(self.factory) as session:
                await session.exec(
                    delete(ProcessedEvent).where(
                        col(ProcessedEvent.completed),
                        col(ProcessedEvent.processed_at) < utc_now() - PROCESSED_EVENT_RETENTION,
                    )
                )
                retention = timedelta(days=self.settings.station_event_retention_days)
                await prune_events(session, utc_now() - retention)
            try:
                await asyncio.wait_for(stopping.wait(), PRUNE_EVERY_S)
            except TimeoutError:
                continue
