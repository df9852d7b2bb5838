"""The CDR issuer: every ended session gets its CDR once it is due, from one replica.

A session's CDR is due a moment (``cdr_settle_s``) after its end arrived, so that
samples published just before the end on another topic still count as the
session's and not as late data. Replicas share the work: each takes due sessions
``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite has one writer), and a session whose
CDR exists is never issued again. The ``csms.cdrs`` events go through the outbox
(``inbox.ProcessedEvent``): stored with the CDR, published after the commit, and
published again after a crash.
"""

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing.cdrs import service
from csms_billing.cdrs.events import cdr_event
from csms_billing.cdrs.models import CdrRecord
from csms_billing.inbox import ProcessedEvent
from csms_billing.sessions.models import BilledSession
from csms_billing.settings import BillingSettings
from csms_core.bus import Bus
from csms_core.db import session_factory, transaction, utc_now
from csms_core.topics import BY_NAME, CDRS

logger = logging.getLogger(__name__)

BATCH = 100
IDLE_S = 1.0  # how long to sleep with nothing due (a wake-up cuts it short)
IDLE_STEP_S = 0.05


def outbox_row(event_id: str, records: list[CdrRecord]) -> ProcessedEvent:
    """The outbox entry that publishes ``records``' events once its transaction commits."""
    events = [{"topic": CDRS, "event": cdr_event(r).model_dump(mode="json")} for r in records]
    return ProcessedEvent(event_id=event_id, outbox=events, completed=not events)


class CdrIssuer:
    def __init__(self, settings: BillingSettings, bus: Bus, engine: AsyncEngine) -> None:
        self._settings = settings
        self._bus = bus
        self._factory = session_factory(engine)
        self._postgres = engine.dialect.name == "postgresql"
        self._wake = asyncio.Event()

    def session_ended(self) -> None:
        """A session ended: its CDR falls due soon."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                while await self.issue_due() == BATCH:
                    pass
                await self.publish_pending()
            except Exception as exc:  # noqa: BLE001 - a database outage: tried again
                logger.warning("CDRs not issued yet: %r", exc)
            await self._idle(stopping)
            if self._wake.is_set():  # a session ended: its CDR is due after the settle
                self._wake.clear()
                await asyncio.sleep(self._settings.cdr_settle_s)

    async def _idle(self, stopping: asyncio.Event) -> None:
        """Until a session ends, ``IDLE_S`` passes (another replica may have ended one) or
        the service stops."""
        for _ in range(int(IDLE_S / IDLE_STEP_S)):
            if stopping.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_STEP_S)
                return

    async def issue_due(self) -> int:
        """Issue the CDRs due now; how many sessions got one."""
        records: list[CdrRecord] = []
        async with transaction(self._factory) as session:
            for billed in await self._due(session):
                issued = await service.issue(session, billed, self._settings, utc_now())
                if issued:
                    session.add(outbox_row(f"cdr-issue.{issued[0].cdr_id}", issued))
                    records += issued
                billed.cdr_due_at = None
                session.add(billed)
        if records:
            await self.publish_pending()
        return len(records)

    async def _due(self, session: AsyncSession) -> list[BilledSession]:
        query = (
            select(BilledSession)
            .where(
                col(BilledSession.cdr_due_at) <= utc_now(),
                col(BilledSession.cdr_id).is_(None),
            )
            .order_by(col(BilledSession.cdr_due_at))
            .limit(BATCH)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        return list(await session.exec(query))

    async def publish_pending(self) -> None:
        """Publish the outbox entries of CDRs not published yet (after a crash, too): one row
        at a time, locked while it is published (``SKIP LOCKED`` on PostgreSQL), so two
        replicas never publish one CDR twice."""
        while True:
            async with transaction(self._factory) as session:
                query = (
                    select(ProcessedEvent)
                    .where(
                        col(ProcessedEvent.completed).is_(False),
                        col(ProcessedEvent.event_id).startswith("cdr-issue."),
                    )
                    .limit(1)
                )
                if self._postgres:
                    query = query.with_for_update(skip_locked=True)
                row = (await session.exec(query)).first()
                if row is None:
                    return
                for item in row.outbox or []:
                    topic = BY_NAME[item["topic"]]
                    await self._bus.publish(topic, topic.parse_object(item["event"]))
                row.completed = True
                session.add(row)
