"""Consumption of the sessions service's domain events: billing's timeline, then its CDRs;
and of the few station CALLs billing learns from (``inbound``).

``csms.sessions`` opens, feeds and ends billing's sessions; ``csms.meter-values``
brings their samples. An ended session's CDR falls due a moment later
(``cdrs.issuer``); a sample that arrives for a session whose CDR exists is late
data: the CDR is credited and corrected if the cost changes. Each event is
applied once (``inbox``); the CDR events it causes (``csms.cdrs``) are stored
with it and published after the commit.
"""

import logging
from datetime import timedelta

from prometheus_client import Counter
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing import inbound
from csms_billing.cdrs import service as cdrs
from csms_billing.cdrs.events import cdr_event
from csms_billing.cdrs.issuer import CdrIssuer
from csms_billing.inbox import ProcessedEvent
from csms_billing.sessions import events, service
from csms_billing.sessions.models import BilledSession, SessionState
from csms_billing.settings import BillingSettings
from csms_core.bus import Bus, Delivery
from csms_core.db import session_factory, transaction, utc_now
from csms_core.envelope import Envelope
from csms_core.events import CdrIssued
from csms_core.topics import BY_NAME, CDRS, METER_VALUES, OCPP_INBOUND, SESSIONS

logger = logging.getLogger(__name__)

# Meter values first: the in-process bus hands a batch over topic by topic, and a
# session.ended must not overtake the samples published just before it.
TOPICS = (METER_VALUES, SESSIONS, OCPP_INBOUND)

events_handled = Counter(
    "csms_billing_events_total", "Events the billing service handled", ["topic", "type"]
)


class TimelineConsumer:
    """The ``run_consumer`` handler of the billing service."""

    def __init__(
        self, settings: BillingSettings, bus: Bus, engine: AsyncEngine, issuer: CdrIssuer
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._factory = session_factory(engine)
        self._issuer = issuer

    async def __call__(self, delivery: Delivery) -> None:
        envelope = delivery.envelope
        if delivery.topic == OCPP_INBOUND and not inbound.wanted(envelope):
            return  # the fleet's every CALL passes here: most are none of billing's
        async with transaction(self._factory) as session:
            record = await session.get(ProcessedEvent, envelope.id)
            if record is None:
                caused = await self._apply(session, envelope)
                record = ProcessedEvent(
                    event_id=envelope.id,
                    outbox=[{"topic": CDRS, "event": e.model_dump(mode="json")} for e in caused],
                    completed=not caused,
                )
                session.add(record)
        events_handled.labels(delivery.topic, envelope.type).inc()
        if not record.completed:
            await self._deliver(record)

    async def _apply(self, session: AsyncSession, envelope: Envelope) -> list[CdrIssued]:
        if envelope.type == inbound.CALL:
            await inbound.handle(session, self._settings, envelope)
        elif envelope.type == "session.started":
            opened = await service.open_session(session, events.opened(envelope))
            if opened.cost_due_at is None and opened.tariff_id is not None:
                interval = timedelta(seconds=self._settings.cost_update_interval_s)
                opened.cost_due_at = utc_now() + interval  # costs.updates: 2.x only
        elif envelope.type == "session.updated":
            session_id, samples = events.progress(envelope)
            billed = await session.get(BilledSession, session_id)
            await service.record_samples(session, session_id, billed, samples)
        elif envelope.type in ("session.ended", "session.finalized"):
            return await self._ended(session, envelope)
        elif envelope.type == "meter.values":
            return await self._samples(session, envelope)
        return []

    async def _ended(self, session: AsyncSession, envelope: Envelope) -> list[CdrIssued]:
        session_id, closed, final = events.closed(envelope)
        billed = await session.get(BilledSession, session_id)
        if billed is None:
            logger.warning("session %s ended before billing heard it start", session_id)
            return []
        service.close_session(billed, closed)
        if final and billed.cdr_id is None:  # OCPI mod_cdrs: no CDR without a known start
            billed.cdr_due_at = utc_now() + timedelta(seconds=self._settings.cdr_settle_s)
            self._issuer.session_ended()
        session.add(billed)
        return []

    async def _samples(self, session: AsyncSession, envelope: Envelope) -> list[CdrIssued]:
        session_id, samples, _late = events.meter_samples(envelope)
        if session_id is None or not samples:
            return []
        # Kept even before billing hears the session start (another topic, read in another
        # order): they are the session's all the same.
        billed = await session.get(BilledSession, session_id)
        if not await service.record_samples(session, session_id, billed, samples):
            return []
        if billed is None:
            return []
        if billed.state != SessionState.ENDED or billed.cdr_id is None:
            return []
        corrected = await cdrs.correct(session, billed, self._settings, utc_now())
        return [cdr_event(record) for record in corrected]

    async def _deliver(self, record: ProcessedEvent) -> None:
        for item in record.outbox or []:
            topic = BY_NAME[item["topic"]]
            await self._bus.publish(topic, topic.parse_object(item["event"]))
        async with transaction(self._factory) as session:
            await session.exec(
                update(ProcessedEvent)
                .where(col(ProcessedEvent.event_id) == record.event_id)
                .values(completed=True)
            )
