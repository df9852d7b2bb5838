"""Consumption of the sessions service's domain events: billing's timeline, then its CDRs;
and of the few station CALLs billing learns from (``inbound``).

``csms.sessions`` opens, feeds and ends billing's sessions; ``csms.meter-values``
brings their samples. Each record is read with its topic's model
(``csms_core.events``). An ended session's CDR falls due a moment later
(``cdrs.issuer``), once its figures are final. A CDR is never changed: only new
final figures of the sessions service (``session.finalized``: its start arrived
after its end) credit it and issue a corrected one; samples the sessions service
marks late are kept and never priced (docs/billing.md "Late data"). Each event is
applied once (``inbox``); the CDR events it causes (``csms.cdrs``) are stored with
it and published after the commit.
"""

import logging
from datetime import timedelta
from typing import Any

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
from csms_core.envelope import Event
from csms_core.events import (
    CdrIssued,
    MeterValues,
    OcppCall,
    SessionEnded,
    SessionFinalized,
    SessionStarted,
    SessionUpdated,
)
from csms_core.topics import BY_NAME, CDRS, METER_VALUES, OCPP_INBOUND, SESSIONS

logger = logging.getLogger(__name__)

# Meter values first: the in-process bus hands a batch over topic by topic, and a
# session.ended must not overtake the samples published just before it.
TOPICS = (METER_VALUES, SESSIONS, OCPP_INBOUND)

events_handled = Counter(
    "csms_billing_events_total", "Events the billing service handled", ["topic", "type"]
)
samples_kept_out = Counter(
    "csms_billing_samples_not_priced_total",
    "Samples billing keeps but does not price: sent after the session's end (late, as the "
    "sessions service says) or read after its CDR (counted by a correction only)",
    ["reason"],
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
        if delivery.topic == OCPP_INBOUND and not inbound.wanted(delivery.envelope):
            return  # the fleet's every CALL passes here: most are none of billing's
        event = BY_NAME[delivery.topic].decode(delivery)
        async with transaction(self._factory) as session:
            record = await session.get(ProcessedEvent, event.id)
            if record is None:
                caused = await self._apply(session, event)
                record = ProcessedEvent(
                    event_id=event.id,
                    outbox=[{"topic": CDRS, "event": e.model_dump(mode="json")} for e in caused],
                    completed=not caused,
                )
                session.add(record)
        events_handled.labels(delivery.topic, event.type).inc()
        if not record.completed:
            await self._deliver(record)

    async def _apply(self, session: AsyncSession, event: Event[Any]) -> list[CdrIssued]:
        if isinstance(event, OcppCall):
            await inbound.handle(session, self._settings, event)
        elif isinstance(event, SessionStarted):
            opened = await service.open_session(session, events.opened(event))
            self._cost_updates_due(opened)
        elif isinstance(event, SessionUpdated):
            billed = await session.get(BilledSession, event.data.session_id)
            await service.record_samples(
                session, event.data.session_id, billed, events.progress(event)
            )
        elif isinstance(event, SessionEnded | SessionFinalized):
            return await self._ended(session, event)
        elif isinstance(event, MeterValues):
            await self._samples(session, event)
        return []  # session.flagged and session.late_data change no price

    def _cost_updates_due(self, billed: BilledSession) -> None:
        if billed.cost_due_at is None and billed.tariff_id is not None:
            interval = timedelta(seconds=self._settings.cost_update_interval_s)
            billed.cost_due_at = utc_now() + interval  # costs.updates: 2.x only

    async def _ended(
        self, session: AsyncSession, event: SessionEnded | SessionFinalized
    ) -> list[CdrIssued]:
        billed = await session.get(BilledSession, event.data.session_id)
        if billed is None:  # its session.started not read (or lost): the end tells enough
            billed = await service.open_session(session, events.opened_at_end(event))
        if billed.state == SessionState.ENDED and not isinstance(event, SessionFinalized):
            return []  # the end is the sessions service's first: published once, replayed
        changed = await service.settle(session, billed, events.figures(event))
        if not billed.final:
            return []  # OCPI mod_cdrs: no CDR without a known start (session.finalized)
        if billed.cdr_id is None:
            if billed.cdr_due_at is None:
                billed.cdr_due_at = utc_now() + timedelta(seconds=self._settings.cdr_settle_s)
                self._issuer.session_ended()
            return []
        if not changed:
            return []
        corrected = await cdrs.correct(session, billed, self._settings, utc_now())
        return [cdr_event(record) for record in corrected]

    async def _samples(self, session: AsyncSession, event: MeterValues) -> None:
        session_id, late = event.data.session_id, event.data.late
        samples = events.meter_samples(event)
        if session_id is None or not samples:
            return
        # Kept even before billing hears the session start (another topic, read in another
        # order): they are the session's all the same.
        billed = await session.get(BilledSession, session_id)
        new = await service.record_samples(session, session_id, billed, samples, late=late)
        if new and late:
            samples_kept_out.labels("late").inc(new)
        elif new and billed is not None and billed.cdr_id is not None:
            samples_kept_out.labels("after_cdr").inc(new)

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
