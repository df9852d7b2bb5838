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
it and published after the commit. Records are applied in batches
(``csms_core.bus.batching``): a partition's records of one poll in one transaction.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing import inbound
from csms_billing.cdrs import service as cdrs
from csms_billing.cdrs.events import cdr_event
from csms_billing.cdrs.issuer import CdrIssuer
from csms_billing.inbox import ProcessedEvent
from csms_billing.sessions import events, service
from csms_billing.sessions.models import BilledSession, SessionState
from csms_billing.settings import BillingSettings
from csms_core.bus import Bus, Delivery, Outgoing
from csms_core.db import among, insert_rows, mark_completed, session_factory, utc_now
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
from csms_core.router import CallAnswer, CommandClient
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


@dataclass
class TimelineBatch:
    """One transaction's worth of billing's records: their inbox rows, loaded at once, and
    what the records applied now owe after the commit."""

    session: AsyncSession
    processed: dict[str, ProcessedEvent]  # the inbox's rows of the batch's events
    applied: list[dict[str, Any]] = field(default_factory=list)  # new inbox rows
    owed: list[ProcessedEvent] = field(default_factory=list)  # events to publish
    # Answers to station CALLs billing decides, and the gateway each goes to.
    answers: list[tuple[CallAnswer, str]] = field(default_factory=list)

    @classmethod
    async def load(cls, session: AsyncSession, deliveries: Sequence[Delivery]) -> "TimelineBatch":
        ids = [delivery.envelope.id for delivery in deliveries]
        rows = await session.exec(
            select(ProcessedEvent).where(among(session, col(ProcessedEvent.event_id), ids))
        )
        return cls(session, {row.event_id: row for row in rows})

    def seen(self, event_id: str) -> bool:
        """Applied before (a replay: owed again if it did not deliver) or in this batch."""
        record = self.processed.get(event_id)
        owed_already = any(owed.event_id == event_id for owed in self.owed)
        if record is not None and not record.completed and not owed_already:
            self.owed.append(record)
        return record is not None

    def record(self, event_id: str, caused: Sequence[CdrIssued]) -> None:
        outbox = [{"topic": CDRS, "event": e.model_dump(mode="json")} for e in caused]
        row = ProcessedEvent(event_id=event_id, outbox=outbox, completed=not caused)
        self.processed[event_id] = row
        self.applied.append(row.model_dump())
        if caused:
            self.owed.append(row)


class TimelineConsumer:
    """The billing service's handler on the batched consumer (``csms_core.bus.batching``):
    a batch's records in one transaction, its inbox rows written in one statement."""

    def __init__(
        self,
        settings: BillingSettings,
        bus: Bus,
        engine: AsyncEngine,
        issuer: CdrIssuer,
        commands: CommandClient,
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._commands = commands
        self._factory = session_factory(engine)
        self._issuer = issuer

    async def begin(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> TimelineBatch:
        return await TimelineBatch.load(session, deliveries)

    async def apply(self, batch: TimelineBatch, delivery: Delivery) -> bool:
        """One record's effects, once (billing answers no station: never waited for)."""
        if delivery.topic == OCPP_INBOUND and not inbound.wanted(delivery.envelope):
            return False  # the fleet's every CALL passes here: most are none of billing's
        event = BY_NAME[delivery.topic].decode(delivery)
        waits = False
        if not batch.seen(event.id):
            if isinstance(event, OcppCall):
                answer = await inbound.handle(batch.session, self._settings, event)
                if answer is not None:
                    batch.answers.append((answer, event.data.gateway_id))
                    waits = True
                batch.record(event.id, [])
            else:
                batch.record(event.id, await self._apply(batch.session, event))
        events_handled.labels(delivery.topic, event.type).inc()
        return waits

    async def finish(self, batch: TimelineBatch) -> None:
        await insert_rows(batch.session, ProcessedEvent, batch.applied)

    async def deliver(self, batch: TimelineBatch) -> None:
        """The answers stations wait for first; then the committed records' CDR events, in
        order, and their inbox rows completed. (An answer is not kept in the inbox: a record
        read again after a crash gets none, and the station the gateway's fallback.)"""
        for answer, gateway_id in batch.answers:
            await self._commands.answer(answer, gateway_id)
        if not batch.owed:
            return
        records = [
            Outgoing(BY_NAME[item["topic"]], BY_NAME[item["topic"]].parse_object(item["event"]))
            for row in batch.owed
            for item in row.outbox or []
        ]
        await self._bus.publish_many(records)
        await mark_completed(self._factory, ProcessedEvent, [row.event_id for row in batch.owed])

    async def _apply(self, session: AsyncSession, event: Event[Any]) -> list[CdrIssued]:
        if isinstance(event, SessionStarted):
            opened = await service.open_session(session, events.opened(event))
            self._cost_updates_due(opened)
        elif isinstance(event, SessionUpdated):
            billed = await session.get(BilledSession, event.data.session_id)
            await service.record_samples(
                session, event.data.session_id, billed, events.progress(event)
            )
            driver = events.driver(event)
            if billed is not None and driver is not None:
                await service.identify(session, billed, *driver)
                self._cost_updates_due(billed)
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
