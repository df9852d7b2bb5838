"""Relaying the audit trail to ``csms.audit``: one service (sessions) runs it.

Entries are published in the order they were written, each at least once (the event id
is the entry's: consumers de-duplicate), then marked published. Several replicas share
the work without publishing one entry twice at once (``FOR UPDATE SKIP LOCKED``).
"""

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.audit.store import AuditEntry, unpublished
from csms_core import topics
from csms_core.bus import Bus, Outgoing, PublishError
from csms_core.db import utc_now

logger = logging.getLogger(__name__)

BATCH = 500
PRUNE_EVERY_S = 3600.0


class AuditRelay:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        bus: Bus,
        *,
        interval_s: float = 1.0,
        retention: timedelta = timedelta(days=365),
    ) -> None:
        self._factory = factory
        self._bus = bus
        self._interval_s = interval_s
        self._retention = retention

    async def run(self, stopping: asyncio.Event) -> None:
        """Publish what is new every ``interval_s``; prune past the retention hourly."""
        since_prune = PRUNE_EVERY_S
        while not stopping.is_set():
            try:
                while await self.publish_pending() == BATCH:
                    pass
                if since_prune >= PRUNE_EVERY_S:
                    await self.prune()
                    since_prune = 0.0
            except Exception:
                logger.exception("audit relay round failed")
            try:
                await asyncio.wait_for(stopping.wait(), self._interval_s)
            except TimeoutError:
                since_prune += self._interval_s

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished entries; how many there were."""
        async with self._factory() as session, session.begin():
            entries = await unpublished(session, BATCH)
            if not entries:
                return 0
            try:
                await self._bus.publish_many([Outgoing(topics.AUDIT, e.event()) for e in entries])
            except PublishError:
                logger.warning("csms.audit unavailable: %d entries wait", len(entries))
                return 0
            published_at = utc_now()
            for entry in entries:
                entry.published_at = published_at
                session.add(entry)
            return len(entries)

    async def prune(self) -> None:
        async with self._factory() as session, session.begin():
            await session.exec(
                delete(AuditEntry).where(col(AuditEntry.at) < utc_now() - self._retention)
            )
